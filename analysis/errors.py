"""The one exception type of the project.

Every layer (exact theory, Monte Carlo engines, the Python API, the language-model
loop) raises :class:`CollapseError` for bad input, with a one-line message that names
the parameter and its valid range.  It is a :class:`ValueError`, so code that
catches ``ValueError`` keeps working; the ``collapse`` command prints it as
``collapse: error: <message>`` and exits with status 2, without a traceback.

Examples
--------
>>> from collapse.analysis.errors import CollapseError
>>> issubclass(CollapseError, ValueError)
True
"""

from __future__ import annotations


class CollapseError(ValueError):
    """Bad input: the message names the parameter and its valid range.

    Examples
    --------
    >>> import collapse
    >>> try:
    ...     collapse.Gaussian(dim=0)
    ... except collapse.CollapseError as error:
    ...     print(error)
    dim must be an integer >= 1 (got 0)
    """
