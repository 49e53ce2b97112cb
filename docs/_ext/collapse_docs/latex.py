"""LaTeX for the docs: sympy's printer with the project's notation.

Every formula on the theory pages passes through :func:`tex`, so notation is
decided once here: ``sigma2`` prints as :math:`\\sigma^2` (sympy would print
``sigma_2``), ``polygamma(0, x)`` as the digamma function :math:`\\psi(x)` and
``harmonic(t, m)`` as :math:`H_t^{(m)}`.
"""

from __future__ import annotations

from typing import Any

import sympy
from sympy.printing.latex import LatexPrinter


class CollapseLatexPrinter(LatexPrinter):
    """:class:`sympy.printing.latex.LatexPrinter` with the notation of the docs."""

    def _print_polygamma(self, expr: Any, exp: Any = None) -> str:
        order, arg = expr.args
        if order == 0:
            body = r"\psi\left(%s\right)" % self._print(arg)
        else:
            body = r"\psi^{(%s)}\left(%s\right)" % (self._print(order), self._print(arg))
        return body if exp is None else r"%s^{%s}" % (body, exp)

    def _print_harmonic(self, expr: Any, exp: Any = None) -> str:
        if len(expr.args) == 1 or expr.args[1] == 1:
            body = r"H_{%s}" % self._print(expr.args[0])
        else:
            body = r"H_{%s}^{(%s)}" % (self._print(expr.args[0]), self._print(expr.args[1]))
        return body if exp is None else r"\left(%s\right)^{%s}" % (body, exp)


def _symbol_names() -> dict[sympy.Symbol, str]:
    from collapse.analysis import gaussian_symbolic as gs

    return {gs.sigma2: r"\sigma^{2}"}


def tex(expr: Any) -> str:
    """LaTeX of a sympy expression (or anything sympify accepts) in the docs' notation."""
    if isinstance(expr, str):
        return expr
    printer = CollapseLatexPrinter({"symbol_names": _symbol_names()})
    return printer.doprint(sympy.sympify(expr))
