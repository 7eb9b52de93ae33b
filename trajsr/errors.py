"""The one exception type users see for bad input."""


class TrajsrError(ValueError):
    """Bad input: the message names the problem (file, frame, atom count, unit).

    The CLI prints it as one line and exits with status 2.
    """
