"""The one exception type for bad user input.

Raised anywhere below the command line with a one-line message that names the
parameter and its valid range; :func:`collapse.simulate.cli.main` prints it as
``collapse: error: <message>`` and exits with status 2, without a traceback.
"""


class UsageError(ValueError):
    """Bad user input: the message names the parameter and the valid range."""
