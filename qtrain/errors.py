"""qtrain's own exception for bad input. The command line turns it into one
`qtrain: error: <message>` line (exit status 2); anything else is a bug and
keeps its traceback."""

__all__ = ["UsageError"]


class UsageError(ValueError):
    """A value the user gave (a config key, an argument) cannot work; the
    message names the key and the bad value."""
