"""User-facing errors: the command line prints them as one line and exits non-zero."""


class GlacierError(Exception):
    """An error caused by input or environment that the user can fix.

    The message must say what is wrong and what to do, on one line.
    """


class DataError(GlacierError):
    """A data file is missing, foreign, truncated or malformed."""
