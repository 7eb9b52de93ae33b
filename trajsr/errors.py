"""The one exception type users see for bad input."""


class TrajsrError(ValueError):
    """Bad input: the message names the problem (file, frame, atom count, unit).

    The CLI prints it as one line and exits with status 2.
    """


class Cancelled(Exception):
    """A computation stopped on request: its caller is already on its way out (an error, Ctrl-C, SIGTERM) and
    wants the thread back (see :func:`trajsr.interpolation.streaming.upsample`)."""
