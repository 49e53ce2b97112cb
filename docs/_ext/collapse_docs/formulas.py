"""Formulas of the theory pages, produced at build time from the ``collapse.analysis`` code.

Each entry of :data:`FORMULAS` returns a :class:`FormulaBlock`: equations whose
right-hand sides are sympy expressions returned by ``collapse.analysis`` functions, printed
with :func:`collapse_docs.latex.tex`.  The left-hand sides are notation, written
here once.

Some steps of a derivation are *stated* on a page rather than returned by a single
``collapse.analysis`` function (for example the three scalar recursions, which the code runs
numerically).  Those are built here as sympy expressions, printed from the same
objects, and *verified* against the ``collapse.analysis`` code when the page is built: any
disagreement is returned in :attr:`FormulaBlock.problems`, which the Sphinx
directive turns into a build warning (an error under ``-W``).  So neither kind of
formula can drift from the code.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Iterable

import mpmath
import sympy as sp

from collapse.analysis import gaussian_symbolic as gs
from collapse.analysis import kde as kde_theory
from collapse.analysis.gaussian import pool_coefficients
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    COV_DET_RATIO,
    COV_TRACE_RATIO,
    LOG_COV_DET_RATIO,
    MLE,
    REPLACE,
    TEST_NLL,
    UNBIASED,
    WORKFLOWS,
)
from collapse_docs.latex import tex

n, d, t = gs.n, gs.d, gs.t
POOLED = (ACCUMULATE, ACCUMULATE_SUBSAMPLE)
COVARIANCES = (MLE, UNBIASED)
#: How the two covariance estimators are named on the pages.
COVARIANCE_LABEL = {MLE: r"\text{MLE (divisor } m)", UNBIASED: r"\text{divisor } m-1"}


#: Widest line of a displayed formula, in "visible characters" (:func:`visible_width`):
#: about 60 fit the text column of the site (736 px, measured in Chromium).
LINE_WIDTH = 56


def visible_width(latex: str) -> int:
    """A rough width of rendered LaTeX: symbols left after dropping commands and braces,
    a fraction counting as its wider part."""
    def frac(match: re.Match) -> str:
        return "x" * max(visible_width(match.group(1)), visible_width(match.group(2)))

    flat = latex
    for _ in range(4):  # innermost fractions first
        flat = re.sub(r"\\frac\{([^{}]*)\}\{([^{}]*)\}", frac, flat)
    flat = re.sub(r"\\(left|right|mathbb|mathrm|operatorname|text|quad|qquad|,|!|\s)", "", flat)
    flat = re.sub(r"\\[a-zA-Z]+", "x", flat)
    return len(re.sub(r"[{}^_ &]", "", flat))


def _split_sum(expr: Any, first_width: int) -> list[str]:
    """The terms of a long sum as lines of at most :data:`LINE_WIDTH` less ``first_width``
    (the left-hand column of the aligned block), each but the first with its sign."""
    lines: list[str] = []
    current = ""
    for k, term in enumerate(expr.as_ordered_terms()):
        if k == 0:
            piece = tex(term)
        elif term.could_extract_minus_sign():
            piece = " - " + tex(-term)
        else:
            piece = " + " + tex(term)
        budget = max(LINE_WIDTH - first_width - (4 if lines else 0), 24)
        if current and visible_width(current + piece) > budget:
            lines.append(current)
            current = piece
        else:
            current += piece
    lines.append(current)
    return lines


def _split_product(expr: Any, first_width: int) -> list[str] | None:
    """A long quotient of products as lines of fractions of paired factors (numerator
    factor ``k`` over denominator factor ``k``), joined by ``\\cdot``; ``None`` when
    ``expr`` has fewer than two factors on either side."""
    numerator, denominator = sp.fraction(sp.factor_terms(expr))
    tops, bottoms = list(sp.Mul.make_args(numerator)), list(sp.Mul.make_args(denominator))
    if len(tops) < 2 and len(bottoms) < 2:
        return None
    size = max(len(tops), len(bottoms))
    tops += [sp.Integer(1)] * (size - len(tops))
    bottoms += [sp.Integer(1)] * (size - len(bottoms))
    pieces = [tex(a) if b == 1 else rf"\frac{{{tex(a)}}}{{{tex(b)}}}" for a, b in zip(tops, bottoms)]
    lines: list[str] = []
    current = ""
    for piece in pieces:
        joined = f"{current} \\cdot {piece}" if current else piece
        if current and visible_width(joined) > max(LINE_WIDTH - first_width - 4, 24):
            lines.append(current)
            current = r"\cdot " + piece
        else:
            current = joined
    lines.append(current)
    return lines


@dataclass(frozen=True)
class Equation:
    """One displayed equation ``lhs = rhs`` (``rhs`` a sympy expression or LaTeX)."""

    lhs: str
    rhs: Any
    note: str = ""

    def latex(self, align: bool = False) -> str:
        eq = "&=" if align else "="
        note = rf"\qquad {self.note}" if self.note else ""
        return f"{self.lhs} {eq} {tex(self.rhs)}{note}"

    def wide(self) -> bool:
        """Whether one line would be wider than :data:`LINE_WIDTH`."""
        return visible_width(self.latex()) > LINE_WIDTH

    def aligned_lines(self, width: int | None = None) -> str:
        """The equation as lines of an ``aligned`` block whose left column is ``width``
        wide (default: this left-hand side's): a long sum broken between its terms, a
        note on a line of its own."""
        rhs = tex(self.rhs)
        width = visible_width(self.lhs) if width is None else width
        parts = None
        if isinstance(self.rhs, sp.Add) and visible_width(rhs) > LINE_WIDTH - width:
            parts = _split_sum(self.rhs, width)
        elif isinstance(self.rhs, sp.Expr) and visible_width(rhs) > 2 * LINE_WIDTH:
            parts = _split_product(self.rhs, width)  # a quotient too wide to read
        if parts:
            body = rf"{self.lhs} &= {parts[0]}" + "".join(
                rf" \\ &\quad {part}" for part in parts[1:])
        else:
            body = rf"{self.lhs} &= {rhs}"
        if self.note:  # in the left column, so that it does not add to the right one
            body += rf" \\ {self.note} &"
        return body


@dataclass(frozen=True)
class FormulaBlock:
    """Equations of one displayed block, the code they come from, and check failures."""

    equations: tuple[Equation, ...]
    sources: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())

    def latex(self) -> str:
        """The block as one LaTeX display (``aligned`` when it has several equations)."""
        # aligned, the block is as wide as its widest left side plus its widest right side
        width = max(visible_width(eq.lhs) for eq in self.equations)
        right = max(visible_width(eq.latex()) - visible_width(eq.lhs) for eq in self.equations)
        if width + right <= LINE_WIDTH:
            if len(self.equations) == 1:
                return self.equations[0].latex()
            body = r" \\ ".join(eq.latex(align=True) for eq in self.equations)
        else:
            body = r" \\ ".join(eq.aligned_lines(width) for eq in self.equations)
        return rf"\begin{{aligned}} {body} \end{{aligned}}"


def _is_zero(expr: Any) -> bool:
    return sp.simplify(sp.cancel(sp.sympify(expr))) == 0


def _label(workflow: str, covariance: str | None = None) -> str:
    text = workflow if covariance is None else f"{workflow}, {'MLE' if covariance == MLE else 'm-1'}"
    return rf"\text{{{text}}}"


# --------------------------------------------------------------------------- notation

A_RATIO = r"a_t = \frac{\mathbb{E}\,\|\hat\mu_t - \mu_0\|^2}{\operatorname{tr}\Sigma_0}"
B_RATIO = r"b_t = \frac{\mathbb{E}\operatorname{tr}\hat\Sigma_t}{\operatorname{tr}\Sigma_0}"
REPLACE_LHS = {
    gs.MEAN_ERROR_RATIO: A_RATIO,
    COV_TRACE_RATIO: B_RATIO,
    COV_DET_RATIO: r"\mathbb{E}\,\frac{\det\hat\Sigma_t}{\det\Sigma_0}",
    LOG_COV_DET_RATIO: r"\mathbb{E}\log\frac{\det\hat\Sigma_t}{\det\Sigma_0}",
    gs.INV_COV_TRACE: r"\mathbb{E}\operatorname{tr}(\hat\Sigma_t^{-1}\Sigma_0)",
    gs.MAHALANOBIS_MEAN: r"q_t = \mathbb{E}\,(\hat\mu_t-\mu_0)^\top\hat\Sigma_t^{-1}(\hat\mu_t-\mu_0)",
    TEST_NLL: r"\mathbb{E}\,\mathrm{NLL}_t",
}


# --------------------------------------------------------------------------- Gaussian: replace


@functools.lru_cache(maxsize=None)
def _replace_forms(covariance: str) -> dict[str, sp.Expr]:
    return gs.replace_closed_forms(covariance)


def wishart() -> FormulaBlock:
    """Textbook moments of ``W ~ Wishart_d(m, I)`` used in the replace derivation."""
    m = sp.Symbol("m", positive=True)
    w = gs.wishart_moments(m, d)
    return FormulaBlock(
        (
            Equation(r"\tfrac{1}{d}\,\mathbb{E}\operatorname{tr}W", w["trace"]),
            Equation(r"\mathbb{E}\det W", w["det"], r"\text{(falling factorial } (m)_d = m(m-1)\cdots(m-d+1))"),
            Equation(r"\mathbb{E}\log\det W", w["log_det"]),
            Equation(r"\mathbb{E}\,W^{-1}", sp.Mul(w["inverse"], sp.Symbol("I"), evaluate=False),
                     r"(m > d+1)"),
        ),
        ("analysis.gaussian_symbolic.wishart_moments",),
    )


def _replace_block(covariance: str, keys: Iterable[str]) -> FormulaBlock:
    forms = _replace_forms(covariance)
    notes = {gs.INV_COV_TRACE: r"(n > d+2)", gs.MAHALANOBIS_MEAN: r"(n > d+2)",
             LOG_COV_DET_RATIO: r"(n > d)"}
    return FormulaBlock(
        tuple(Equation(REPLACE_LHS[k], forms[k], notes.get(k, "")) for k in keys),
        ("analysis.gaussian_symbolic.replace_closed_forms",),
    )


_REPLACE_MAIN = (gs.MEAN_ERROR_RATIO, COV_TRACE_RATIO, COV_DET_RATIO, LOG_COV_DET_RATIO,
                 gs.INV_COV_TRACE, gs.MAHALANOBIS_MEAN)


def replace_mle() -> FormulaBlock:
    return _replace_block(MLE, _REPLACE_MAIN)


def replace_unbiased() -> FormulaBlock:
    return _replace_block(UNBIASED, _REPLACE_MAIN)


def replace_nll_mle() -> FormulaBlock:
    block = _replace_block(MLE, (TEST_NLL,))
    return FormulaBlock(tuple(Equation(e.lhs, e.rhs, r"\text{nats}, \ (n > d+2)")
                              for e in block.equations), block.sources)


# --------------------------------------------------------------------------- Gaussian: pooled

def pool_coefficient_rows() -> list[tuple[str, str, Any, Any]]:
    """``(workflow, covariance, g_t, h_t)`` for the pooled workflows, from the code."""
    rows = []
    for workflow in POOLED:
        for covariance in COVARIANCES:
            g, h = pool_coefficients(workflow, n, t, covariance, sp.Integer(1))
            rows.append((workflow, covariance, sp.factor(sp.cancel(g)), sp.factor(sp.cancel(h))))
    return rows


# Symbols of the stated recursion (their LaTeX names are the notation of the page).
_A, _Q, _T = sp.symbols("A_t Q_t T_t")
_a, _b, _p, _g, _h = sp.symbols("a_t b_t p_t g_t h_t")


@dataclass(frozen=True)
class StatedRecursion:
    """The scalar recursions as stated on the Gaussian theory page (sympy expressions).

    ``p = (T + Q - A/t)/t``, ``a = A/t^2 + h p``, ``b = g p`` and the updates of
    ``A``, ``Q``, ``T``; ``replace_a``/``replace_b`` are replace's one-step maps with
    ``c = (n-1)/nu``.  A test substitutes a deliberately wrong recursion here and
    checks that :func:`recursion_problems` rejects it.
    """

    pool_trace: sp.Expr = (_T + _Q - _A / t) / t
    mean_error: sp.Expr = _A / t**2 + _h * _p
    trace: sp.Expr = _g * _p
    next_A: sp.Expr = _A * (1 + 2 / t) + _a + _b / n
    next_Q: sp.Expr = _Q + _a + _b / n
    next_T: sp.Expr = _T + (n - 1) / n * _b
    initial: tuple[sp.Expr, sp.Expr, sp.Expr] = (1 / n, 1 / n, (n - 1) / n)
    replace_a: sp.Expr = _a + _b / n
    replace_b: sp.Expr = sp.Symbol("c") * _b


STATED = StatedRecursion()


def run_stated_recursion(rec: StatedRecursion, workflow: str, covariance: str,
                         iterations: int) -> list[tuple[sp.Expr, sp.Expr]]:
    """``(a_t, b_t)`` for ``t = 1..iterations`` from the *stated* recursion, in ``Q(n)``."""
    out = []
    if workflow == REPLACE:
        c = (n - 1) / (n if covariance == MLE else n - 1)
        a, b = 1 / n, c
        for _ in range(iterations):
            out.append((sp.cancel(a), sp.cancel(b)))
            a, b = (rec.replace_a.subs({_a: a, _b: b, sp.Symbol("c"): c}),
                    rec.replace_b.subs({_b: b, sp.Symbol("c"): c}))
        return out
    big_a, big_q, big_t = rec.initial
    for step in range(1, iterations + 1):
        g, h = pool_coefficients(workflow, n, step, covariance, sp.Integer(1))
        state = {_A: big_a, _Q: big_q, _T: big_t, t: step}
        p = rec.pool_trace.subs(state)
        a = sp.cancel(rec.mean_error.subs(state).subs({_h: h, _p: p}))
        b = sp.cancel(rec.trace.subs({_g: g, _p: p}))
        out.append((a, b))
        values = {**state, _a: a, _b: b}
        big_a = sp.cancel(rec.next_A.subs(values))
        big_q = sp.cancel(rec.next_Q.subs(values))
        big_t = sp.cancel(rec.next_T.subs(values))
    return out


def recursion_problems(rec: StatedRecursion = STATED, iterations: int = 4) -> list[str]:
    """Disagreements between the stated recursion and :func:`collapse.analysis.gaussian_symbolic.symbolic_moments`."""
    problems = []
    for workflow in WORKFLOWS:
        for covariance in COVARIANCES:
            stated = run_stated_recursion(rec, workflow, covariance, iterations)
            for step, (a, b) in enumerate(stated, start=1):
                a_code, b_code = gs.symbolic_moments(workflow, step, covariance)
                if not (_is_zero(a - a_code) and _is_zero(b - b_code)):
                    problems.append(f"stated recursion disagrees with analysis for {workflow}, "
                                    f"{covariance}, t={step}: a={a} vs {a_code}, b={b} vs {b_code}")
    return problems


def recursion() -> FormulaBlock:
    """The stated pooled recursion, checked against the code for ``t <= 4``."""
    rec = STATED
    eqs = (
        Equation("p_t", rec.pool_trace),
        Equation("a_t", rec.mean_error),
        Equation("b_t", rec.trace),
        Equation("A_{t+1}", rec.next_A),
        Equation("Q_{t+1}", rec.next_Q),
        Equation("T_{t+1}", rec.next_T),
        Equation("(A_1, Q_1, T_1)", sp.Tuple(*rec.initial)),
    )
    return FormulaBlock(eqs, ("analysis.gaussian.moment_ratio_recursion",
                              "analysis.gaussian.pool_coefficients"),
                        tuple(recursion_problems(rec)))


def replace_recursion() -> FormulaBlock:
    rec = STATED
    return FormulaBlock(
        (Equation("a_{t+1}", rec.replace_a), Equation("b_{t+1}", rec.replace_b),
         Equation("(a_1, b_1)", sp.Tuple(1 / n, sp.Symbol("c")),
                  r"c = \tfrac{n-1}{\nu},\ \nu \in \{n, n-1\}")),
        ("analysis.gaussian.moment_ratio_recursion",),
        tuple(p for p in recursion_problems(rec) if REPLACE in p),
    )


def small_t_rows(covariance: str = MLE, iterations: int = 3) -> list[tuple[int, str, Any, Any]]:
    """``(t, workflow, a_t, b_t)`` as factored rational functions of ``n``."""
    rows = []
    for step in range(1, iterations + 1):
        for workflow in WORKFLOWS:
            a, b = gs.symbolic_moments(workflow, step, covariance)
            rows.append((step, workflow, a, b))
    return rows


def mle_identity(iterations: int = 6) -> FormulaBlock:
    """``a_t + b_t`` for the MLE, simplified from the exact recursion of the code."""
    values = set()
    problems = []
    for workflow in WORKFLOWS:
        for step in range(1, iterations + 1):
            a, b = gs.symbolic_moments(workflow, step, MLE)
            total = sp.factor(sp.cancel(a + b))
            values.add(total)
    if len(values) != 1:
        problems.append(f"a_t + b_t is not the same for every workflow and t: {sorted(map(str, values))}")
    value = next(iter(values))
    return FormulaBlock(
        (Equation("a_t + b_t", value,
                  rf"\text{{(MLE; all three workflows, }} t = 1,\dots,{iterations}\text{{, symbolic in }} n)"),),
        ("analysis.gaussian_symbolic.symbolic_moments",), tuple(problems))


def pool_ratio() -> FormulaBlock:
    eqs = tuple(Equation(rf"R(t)\ \ [{_label(w, c)}]", gs.pool_trace_ratio(w, c))
                for w in POOLED for c in COVARIANCES)
    return FormulaBlock(eqs, ("analysis.gaussian_symbolic.pool_trace_ratio",))


def trace_closed_forms() -> FormulaBlock:
    eqs = tuple(Equation(rf"b_t\ \ [{_label(w, MLE)}]", gs.trace_ratio_closed_form(w, MLE))
                for w in POOLED)
    return FormulaBlock(eqs, ("analysis.gaussian_symbolic.trace_ratio_closed_form",))


@functools.lru_cache(maxsize=None)
def _limits(workflow: str, covariance: str) -> dict[str, sp.Expr]:
    return gs.limits(workflow, covariance)


def limits_block(covariance: str) -> FormulaBlock:
    eqs = []
    for workflow in WORKFLOWS:
        lim = _limits(workflow, covariance)
        eqs.append(Equation(rf"\lim_{{t\to\infty}} a_t\ \ [{_label(workflow)}]", lim[gs.MEAN_ERROR_RATIO]))
        eqs.append(Equation(rf"\lim_{{t\to\infty}} b_t\ \ [{_label(workflow)}]", lim[COV_TRACE_RATIO]))
    return FormulaBlock(tuple(eqs), ("analysis.gaussian_symbolic.limits",))


def limits_mle() -> FormulaBlock:
    return limits_block(MLE)


def limits_unbiased() -> FormulaBlock:
    return limits_block(UNBIASED)


_k = sp.Symbol("k", positive=True, integer=True)
#: The infinite product stated for the accumulate (MLE) trace limit.
EULER_FACTOR = 1 - 1 / (n * _k**2)


def euler_problems(factor: sp.Expr = EULER_FACTOR) -> list[str]:
    """Check ``b_t = prod_{k<=t} factor`` (exactly, t <= 5) and its limit (numerically)."""
    problems = []
    for step in range(1, 6):
        _, b = gs.symbolic_moments(ACCUMULATE, step, MLE)
        partial = sp.prod([factor.subs(_k, k) for k in range(1, step + 1)])
        if not _is_zero(b - partial):
            problems.append(f"b_{step} (accumulate, MLE) = {b} is not the stated product {partial}")
    limit = _limits(ACCUMULATE, MLE)[COV_TRACE_RATIO]
    ctx = mpmath.MPContext()
    ctx.dps = 30
    for n_value in (2, 10, 100):
        f = sp.lambdify(_k, factor.subs(n, n_value), modules=ctx)
        product = ctx.nprod(f, [1, ctx.inf])
        closed = sp.N(limit.subs(n, n_value), 30)
        if abs(float(product - ctx.mpf(str(closed)))) > 1e-12:
            problems.append(f"at n={n_value} the product {product} differs from the limit {closed}")
    return problems


def accumulate_trace_limit() -> FormulaBlock:
    product = sp.Product(EULER_FACTOR, (_k, 1, sp.oo))
    limit = _limits(ACCUMULATE, MLE)[COV_TRACE_RATIO]
    return FormulaBlock(
        (Equation(r"\lim_{t\to\infty} b_t", product),
         Equation("", limit, r"\text{(accumulate, MLE)}")),
        ("analysis.gaussian_symbolic.limits", "analysis.gaussian_symbolic.symbolic_moments"),
        tuple(euler_problems()),
    )


def known_covariance() -> FormulaBlock:
    finite = gs.accumulate_known_covariance_mean_error(t)
    limit = gs.accumulate_known_covariance_mean_error(sp.oo)
    lhs = r"\frac{\mathbb{E}\,\|\hat\mu_t-\mu_0\|^2}{\operatorname{tr}\Sigma_0}"
    return FormulaBlock(
        (Equation(lhs, finite, r"\text{(accumulate, } \Sigma_0 \text{ known)}"),
         Equation(r"\lim_{t\to\infty}" + lhs, limit)),
        ("analysis.gaussian_symbolic.accumulate_known_covariance_mean_error",),
    )


def subsample_growth() -> FormulaBlock:
    const, beta = gs.pool_trace_asymptotics(ACCUMULATE_SUBSAMPLE, UNBIASED)
    return FormulaBlock(
        (Equation(r"\beta", beta), Equation("C", const)),
        ("analysis.gaussian_symbolic.pool_trace_asymptotics",),
        () if sp.simplify(beta) != 0 else ("accumulate-subsample (m-1) no longer diverges",),
    )


# --------------------------------------------------------------------------- KDE

_z = sp.Symbol("z")


def kde_pgf() -> FormulaBlock:
    return FormulaBlock(
        (Equation(r"\mathbb{E}\,z^{K}\ \ [\text{replace}]", kde_theory.lineage_pgf_symbolic(REPLACE, t, _z)),
         Equation(r"\mathbb{E}\,z^{K}\ \ [\text{accumulate, accumulate-subsample}]",
                  kde_theory.lineage_pgf_symbolic(ACCUMULATE, t, _z),
                  r"\text{(rising factorial } z^{(t)} = z(z+1)\cdots(z+t-1))")),
        ("analysis.kde_lineage.lineage_pgf_symbolic",),
        tuple(_pgf_problems()),
    )


def _pgf_problems() -> list[str]:
    """Both pooled workflows share the law; the pgf's coefficients are the law (t <= 6)."""
    problems = []
    if kde_theory.lineage_pgf_symbolic(ACCUMULATE, t, _z) != kde_theory.lineage_pgf_symbolic(
            ACCUMULATE_SUBSAMPLE, t, _z):
        problems.append("accumulate and accumulate-subsample lineage pgfs differ")
    for step in range(1, 7):
        pgf = sp.expand(sp.expand_func(kde_theory.lineage_pgf_symbolic(ACCUMULATE, step, _z)))
        law = kde_theory.lineage_law(ACCUMULATE, step)
        for k in range(0, step + 1):
            coefficient = pgf.coeff(_z, k)
            if coefficient != sp.Rational(law.get(k, Fraction(0)).numerator,
                                          law.get(k, Fraction(0)).denominator):
                problems.append(f"pgf coefficient of z^{k} at t={step} is {coefficient}, law says {law.get(k)}")
    return problems


def kde_moments() -> FormulaBlock:
    eqs = []
    for workflow, label in ((REPLACE, r"\text{replace}"),
                            (ACCUMULATE, r"\text{accumulate, accumulate-subsample}")):
        eqs.append(Equation(rf"\mathbb{{E}}K\ \ [{label}]", kde_theory.lineage_mean_symbolic(workflow, t)))
        eqs.append(Equation(rf"\operatorname{{Var}}K\ \ [{label}]",
                            kde_theory.lineage_variance_symbolic(workflow, t)))
    return FormulaBlock(tuple(eqs), ("analysis.kde_lineage.lineage_mean_symbolic",
                                     "analysis.kde_lineage.lineage_variance_symbolic"))


def lineage_law_rows(iterations: int = 5) -> tuple[list[str], list[list[Any]], list[str]]:
    """Table of ``P(K = k)`` (pooled workflows) for ``t = 1..iterations``; two routes compared."""
    header = ["t"] + [f"k = {k}" for k in range(1, iterations + 1)] + [sp.Symbol(r"\mathbb{E}K")]
    rows, problems = [], []
    for step in range(1, iterations + 1):
        law = kde_theory.lineage_law_symbolic(ACCUMULATE, step)
        recurrence = kde_theory.lineage_law(ACCUMULATE, step)
        for k, p in law.items():
            if p != sp.Rational(recurrence[k].numerator, recurrence[k].denominator):
                problems.append(f"sympy Stirling numbers and the recurrence disagree at t={step}, k={k}")
        mean = sum(k * p for k, p in law.items())
        if mean != kde_theory.lineage_mean_symbolic(ACCUMULATE, step):
            problems.append(f"E K at t={step} is {mean}, not H_t")
        rows.append([str(step)] + [law.get(k, sp.Integer(0)) for k in range(1, iterations + 1)] + [mean])
    return header, rows, problems


def pair_law_rows(step: int = 3) -> tuple[list[str], list[list[Any]], list[str]]:
    """Table of the pair law ``P(coalesced, S)`` at iteration ``step`` for every workflow."""
    laws = {w: kde_theory.pair_law_symbolic(w, step, kde_theory.N_SYMBOL) for w in WORKFLOWS}
    keys = sorted({key for law in laws.values() for key in law})
    header = ["coalesced", "S"] + list(WORKFLOWS)
    rows = [["yes" if c else "no", str(s)] + [laws[w].get((c, s), sp.Integer(0)) for w in WORKFLOWS]
            for c, s in keys]
    problems = [f"pair law of {w} at t={step} sums to {sp.simplify(sum(law.values()))}"
                for w, law in laws.items() if not _is_zero(sum(law.values()) - 1)]
    return header, rows, problems


#: Symbols of the KDE formulas (``n`` there is a positive real, not gs.n).
n_kde, h_sym, s0_sym = kde_theory.N_SYMBOL, kde_theory.H_SYMBOL, kde_theory.SIGMA0_SYMBOL


def _overlap(variance: sp.Expr, dim: int = 1) -> sp.Expr:
    """``G(v) = (2 pi v)^(-dim/2)``: the overlap of two Gaussians at zero separation."""
    return (2 * sp.pi * variance) ** sp.Rational(-dim, 2)


def classical_mise(dim: int = 1) -> sp.Expr:
    """The textbook MISE of one Gaussian KDE of ``n`` iid ``N(0, sigma0^2)`` points (t = 1)."""
    return (_overlap(2 * h_sym**2, dim) / n_kde + (1 - 1 / n_kde) * _overlap(2 * s0_sym**2 + 2 * h_sym**2, dim)
            - 2 * _overlap(2 * s0_sym**2 + h_sym**2, dim) + _overlap(2 * s0_sym**2, dim))


def mise_first() -> FormulaBlock:
    stated = classical_mise()
    problems = [f"symbolic_mise({w!r}, 1) differs from the textbook MISE"
                for w in WORKFLOWS if not _is_zero(kde_theory.symbolic_mise(w, 1, 1) - stated)]
    return FormulaBlock((Equation(r"\mathrm{MISE}_1", stated, r"(d = 1)"),),
                        ("analysis.kde.symbolic_mise",), tuple(problems))


def mise_second() -> FormulaBlock:
    eqs = tuple(Equation(rf"\mathrm{{MISE}}_2\ \ [{_label(w)}]", kde_theory.symbolic_mise(w, 2, 1))
                for w in WORKFLOWS)
    return FormulaBlock(eqs, ("analysis.kde.symbolic_mise",))


def harmonic_problems(expansion: sp.Expr | None = None) -> list[str]:
    """Check the stated expansion of ``H_t`` numerically: the error must be ``O(t^-4)``."""
    expansion = HARMONIC_EXPANSION if expansion is None else expansion
    problems = []
    for step in (10, 100, 1000):
        exact = sp.harmonic(step)
        error = abs(sp.N(exact - expansion.subs(t, step), 40))
        if error > sp.Rational(1, 100) / step**4:
            problems.append(f"H_t expansion off by {error} at t={step}")
    return problems


HARMONIC_EXPANSION = sp.log(t) + sp.EulerGamma + 1 / (2 * t) - 1 / (12 * t**2)


def blur() -> FormulaBlock:
    blur_replace = kde_theory.lineage_mean_symbolic(REPLACE, t) * h_sym**2
    blur_pooled = kde_theory.lineage_mean_symbolic(ACCUMULATE, t) * h_sym**2
    return FormulaBlock(
        (Equation(r"h^2\,\mathbb{E}K\ \ [\text{replace}]", blur_replace),
         Equation(r"h^2\,\mathbb{E}K\ \ [\text{accumulate, accumulate-subsample}]", blur_pooled),
         Equation(r"H_t", HARMONIC_EXPANSION, r"+\ O(t^{-4})")),
        ("analysis.kde_lineage.lineage_mean_symbolic",),
        tuple(harmonic_problems()),
    )


# --------------------------------------------------------------------------- compare


#: Skewness of a log-normal variable with log-variance ``s2``, as stated on the compare page.
_s2 = sp.Symbol("s^2", positive=True)
LOGNORMAL_SKEW = (sp.exp(_s2) + 2) * sp.sqrt(sp.exp(_s2) - 1)


def lognormal_problems(formula: sp.Expr = LOGNORMAL_SKEW) -> list[str]:
    """The stated formula must match scipy's log-normal skewness and the code's."""
    import numpy as np
    from scipy import stats

    from collapse.simulate.stats import _lognormal_skew

    problems = []
    for s2 in (0.01, 0.5, 2.0):
        stated = float(formula.subs(_s2, s2))
        reference = float(stats.lognorm(s=s2 ** 0.5).stats(moments="s"))
        code = float(_lognormal_skew(np.array([s2]))[0])
        if not (abs(stated - reference) <= 1e-9 * reference and abs(stated - code) <= 1e-9 * reference):
            problems.append(f"log-normal skewness at s2={s2}: stated {stated}, scipy {reference}, "
                            f"simulate.stats {code}")
    return problems


def lognormal_skew() -> FormulaBlock:
    return FormulaBlock((Equation(r"\operatorname{skew}_{\mathrm{LN}}(s^2)", LOGNORMAL_SKEW),),
                        ("simulate.stats.summarize",), tuple(lognormal_problems()))


# --------------------------------------------------------------------------- workflow rules


def rules_limits() -> FormulaBlock:
    """``t -> infinity`` limits of rules with a window, in ``n`` (and ``K``), MLE."""
    from collapse.analysis.gaussian_rules import rule_limits, window_limits

    eqs = []
    for spec, label in (("fresh", r"\texttt{fresh}"),
                        ("real=original,synthetic=latest",
                         r"\texttt{real=original,synthetic=latest}")):
        a, b = rule_limits(spec)
        eqs.append(Equation(rf"\lim_{{t\to\infty}} a_t\ \ [{label}]", a))
        eqs.append(Equation(rf"\lim_{{t\to\infty}} b_t\ \ [{label}]", b))
    for real in ("original", "fresh"):
        (a, _), _k_symbol = window_limits(real)
        label = rf"\texttt{{real={real},synthetic=window:}}K"
        eqs.append(Equation(rf"\lim_{{t\to\infty}} a_t\ \ [{label}]", a))
    return FormulaBlock(tuple(eqs), ("analysis.gaussian_rules.rule_limits",
                                     "analysis.gaussian_rules.window_limits"))


def rules_fresh_small_t() -> FormulaBlock:
    """``a_t`` of ``fresh`` for ``t = 2, 3`` as rational functions of ``n`` (MLE)."""
    from collapse.analysis.gaussian_rules import rule_symbolic_moments

    eqs = tuple(Equation(rf"a_{t_}\ \ [\texttt{{fresh}}]", rule_symbolic_moments("fresh", t_)[0])
                for t_ in (2, 3))
    return FormulaBlock(eqs, ("analysis.gaussian_rules.rule_symbolic_moments",))


def value_mean_error() -> FormulaBlock:
    """The Gaussian student's mean error (MLE generator) and the crossover, from the code."""
    from collapse.analysis.value import gaussian_crossover, gaussian_value_formulas

    a, _, (big_n, n_r, n_s) = gaussian_value_formulas(MLE)
    eqs = (Equation(r"\frac{E\|\hat\mu_{\mathrm{student}} - \mu_0\|^2}{\operatorname{tr}\Sigma_0}",
                    a),
           Equation(r"\left.\frac{\partial a}{\partial n_s}\right|_{n_s = 0}",
                    sp.factor(sp.diff(a, n_s).subs(n_s, 0))),
           Equation(r"n_r^{\ast}", gaussian_crossover()))
    return FormulaBlock(eqs, ("analysis.value.gaussian_value_formulas",
                              "analysis.value.gaussian_crossover"))


# --------------------------------------------------------------------------- regression

#: ``E test_mse_t``: the excess test error of model ``t`` (notation of the regression page).
REGRESSION_LHS = r"\mathbb{E}\,\|\hat w_t - w\|^2"
REGRESSION_CHECK = {"d": 10, "n": 100, "sigma2": 1.0, "iterations": 8}


def regression_problems(workflows: Iterable[str] = (REPLACE, ACCUMULATE, "fresh"),
                        formula: Callable[[str], sp.Expr] | None = None) -> list[str]:
    """The page's closed forms evaluated at ``d = 10, n = 100`` against the numbers of
    :func:`collapse.analysis.regression.regression_theory` (50-digit recursion)."""
    from collapse.analysis import regression_symbolic as rs
    from collapse.analysis.regression import regression_theory

    formula = formula or (lambda w: rs.regression_formula("test_mse", w))
    c = REGRESSION_CHECK
    problems = []
    for workflow in workflows:
        values, _ = regression_theory(workflow, dim=c["d"], n=c["n"], sigma2=c["sigma2"],
                                      iterations=c["iterations"])
        expr = formula(workflow).subs({rs.d: c["d"], rs.n: c["n"], rs.sigma2: 1})
        for step, value in enumerate(values["test_mse"], start=1):
            exact = float(sp.N(expr.subs(rs.t, step).doit(), 30))
            if abs(exact - value) > 1e-12 * abs(value):
                problems.append(f"{workflow}: closed form {exact} and code {value} differ at t={step}")
    return problems


def regression_closed_forms() -> FormulaBlock:
    from collapse.analysis import regression_symbolic as rs

    eqs = tuple(Equation(rf"{REGRESSION_LHS}\ \ [\text{{{w}}}]", rs.regression_formula("test_mse", w))
                for w in (REPLACE, ACCUMULATE, "fresh"))
    return FormulaBlock(eqs, ("analysis.regression_symbolic.regression_formula",
                              "analysis.regression.regression_theory"),
                        tuple(regression_problems()))


def regression_conditional() -> FormulaBlock:
    from collapse.analysis import regression_symbolic as rs

    eqs = tuple(Equation(rf"\mathbb{{E}}\left[\|\hat w_t - w\|^2 \mid X\right]\ \ [\text{{{w}}}]",
                         rs.regression_formula("test_mse", w, given_design=True))
                for w in (REPLACE, ACCUMULATE))
    return FormulaBlock(eqs, ("analysis.regression_symbolic.regression_formula",))


def regression_limits() -> FormulaBlock:
    from collapse.analysis import regression_symbolic as rs

    eqs = tuple(Equation(rf"\lim_{{t\to\infty}} {REGRESSION_LHS}\ \ [\text{{{w}}}]",
                         rs.regression_limit("test_mse", w))
                for w in (REPLACE, ACCUMULATE, "fresh"))
    return FormulaBlock(eqs, ("analysis.regression_symbolic.regression_limit",))


# --------------------------------------------------------------------------- discrete

_s = sp.Symbol("s", positive=True, integer=True)
#: The accumulate product as stated on the discrete page, checked against the code.
DISCRETE_FACTOR = 1 - 1 / (n * _s**2)
DISCRETE_LHS = r"\mathbb{E}\,H_t"


def discrete_problems(factor: sp.Expr = DISCRETE_FACTOR, steps: int = 5) -> list[str]:
    """``H0 prod_{s<=t} factor`` against
    :func:`collapse.analysis.discrete_symbolic.discrete_formula` (accumulate, exactly for
    ``t <= steps``) and against the exact numbers of
    :func:`collapse.analysis.discrete.gini_ratios` at ``n = 10``."""
    from collapse.analysis import discrete_symbolic as ds
    from collapse.analysis.discrete import gini_ratios
    from collapse.analysis.workflows import Workflow

    problems = []
    code = ds.discrete_formula("gini_diversity", ACCUMULATE)
    ratios = gini_ratios(Workflow.parse(ACCUMULATE), 10, steps)
    for step in range(1, steps + 1):
        stated = ds.H0 * sp.prod([factor.subs(_s, k) for k in range(1, step + 1)])
        # the code's Gamma form at n = 10, 30 digits (sympy does not cancel sin(pi/sqrt n))
        gap = sp.N(((code - stated) / ds.H0).subs({n: 10, t: step}), 30)
        if abs(gap) > 1e-25:
            problems.append(f"accumulate: stated product and code differ at t={step}")
        value = sp.Rational(ratios[step - 1].numerator, ratios[step - 1].denominator)
        if sp.simplify((stated / ds.H0).subs(n, 10) - value) != 0:
            problems.append(f"accumulate: stated product and gini_ratios differ at t={step}")
    return problems


def discrete_closed_forms() -> FormulaBlock:
    from collapse.analysis import discrete_symbolic as ds

    return FormulaBlock(
        (Equation(rf"{DISCRETE_LHS}\ \ [\text{{replace}}]", ds.discrete_formula("gini_diversity", REPLACE)),
         Equation(rf"{DISCRETE_LHS}\ \ [\text{{accumulate}}]",
                  ds.H0 * sp.Product(DISCRETE_FACTOR, (_s, 1, t))),
         Equation("", ds.discrete_formula("gini_diversity", ACCUMULATE))),
        ("analysis.discrete_symbolic.discrete_formula", "analysis.discrete.gini_ratios"),
        tuple(discrete_problems()))


def discrete_limits() -> FormulaBlock:
    from collapse.analysis import discrete_symbolic as ds

    eqs = tuple(Equation(rf"\lim_{{t\to\infty}} {DISCRETE_LHS}\ \ [\text{{{w}}}]",
                         ds.discrete_limit("gini_diversity", w))
                for w in (REPLACE, ACCUMULATE, "fresh"))
    return FormulaBlock(eqs, ("analysis.discrete_symbolic.discrete_limit",))


#: Every displayed formula block, by the name the pages use.
FORMULAS: dict[str, Callable[[], FormulaBlock]] = {
    "gaussian-wishart": wishart,
    "gaussian-replace-mle": replace_mle,
    "gaussian-replace-unbiased": replace_unbiased,
    "gaussian-replace-nll": replace_nll_mle,
    "gaussian-replace-recursion": replace_recursion,
    "gaussian-recursion": recursion,
    "gaussian-mle-identity": mle_identity,
    "gaussian-pool-ratio": pool_ratio,
    "gaussian-trace-closed-form": trace_closed_forms,
    "gaussian-limits-mle": limits_mle,
    "gaussian-limits-unbiased": limits_unbiased,
    "gaussian-accumulate-trace-limit": accumulate_trace_limit,
    "gaussian-known-covariance": known_covariance,
    "gaussian-subsample-growth": subsample_growth,
    "kde-pgf": kde_pgf,
    "kde-moments": kde_moments,
    "kde-blur": blur,
    "kde-mise-first": mise_first,
    "kde-mise-second": mise_second,
    "compare-lognormal-skew": lognormal_skew,
    "rules-limits": rules_limits,
    "rules-fresh-small-t": rules_fresh_small_t,
    "value-mean-error": value_mean_error,
    "regression-closed-forms": regression_closed_forms,
    "regression-conditional": regression_conditional,
    "regression-limits": regression_limits,
    "discrete-closed-forms": discrete_closed_forms,
    "discrete-limits": discrete_limits,
}


@functools.lru_cache(maxsize=None)
def render(name: str) -> FormulaBlock:
    """The block called ``name`` (cached for the duration of one build)."""
    try:
        builder = FORMULAS[name]
    except KeyError:
        raise KeyError(f"unknown formula {name!r}; known: {', '.join(sorted(FORMULAS))}") from None
    return builder()
