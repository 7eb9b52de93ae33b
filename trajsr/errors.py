"""The one exception type users see for bad input, and how a command is stopped."""
import contextlib
import sys


class TrajsrError(ValueError):
    """Bad input: the message names the problem (file, frame, atom count, unit).

    The CLI prints it as one line and exits with status 2.
    """


class Cancelled(Exception):
    """A computation stopped on request: its caller is already on its way out (an error, Ctrl-C, SIGTERM) and
    wants the thread back (see :func:`trajsr.interpolation.streaming.upsample`)."""


class Terminated(BaseException):
    """SIGTERM, turned into an exception so that partial output files are removed on the way out."""


#: a Ctrl-C or SIGTERM that landed where Python cannot raise it (a C library's garbage-collection callback,
#: a ``__del__``): Python would print "Exception ignored ..." with a traceback and carry on to the end
_swallowed: list = []


def _keep_swallowed_stop(unraisable) -> None:
    """``sys.unraisablehook`` while a command runs: a stop that could not be raised is kept for
    :func:`raise_if_stopped` (no traceback printed); any other unraisable exception is printed as usual."""
    if isinstance(unraisable.exc_value, (KeyboardInterrupt, Terminated)):
        _swallowed.append(unraisable.exc_value)
        return
    sys.__unraisablehook__(unraisable)


def raise_if_stopped() -> None:
    """Raise a Ctrl-C or SIGTERM that was swallowed (see :func:`stops_kept`); long loops call this
    between steps (the MD of ``datasets make``: tblite frees its objects through such callbacks)."""
    if _swallowed:
        raise _swallowed.pop()


@contextlib.contextmanager
def stops_kept():
    """For a command's run: a stop Python could not raise is kept (:func:`_keep_swallowed_stop` as
    ``sys.unraisablehook``) for :func:`raise_if_stopped`; afterwards the hook is restored and nothing kept
    outlives the command (a later one in the same process, a test's, starts clean)."""
    hook, sys.unraisablehook = sys.unraisablehook, _keep_swallowed_stop
    try:
        yield
    finally:
        sys.unraisablehook = hook
        _swallowed.clear()
