"""Training workflows as rules: which data model ``t`` is fitted on.

Model-fitting iteration ``t = 1, 2, ...``; ``n`` points are drawn from every model and
model 1 is always fitted on the ``n`` real points alone.  For ``t >= 2`` a workflow is a
rule that builds the training set ``D_t`` from *batches*: the real batch (the ``n``
real points, batch 0), fresh real batches (``n`` new real points drawn for model
``t``), and the synthetic batch ``S_j`` of ``n`` points that each model ``j < t`` drew.

A rule has four keys, written as a comma-separated ``key=value`` spec:

``real``
    ``original`` (default): the first real batch is kept; ``fresh``: a new real batch
    of ``n`` points is drawn for every model and only the newest is used; ``none``:
    no real data after model 1.
``synthetic``
    ``all`` (default): every synthetic batch so far, ``S_1 .. S_{t-1}``; ``latest``:
    ``S_{t-1}`` only; ``window:K``: the ``K`` newest, ``S_{max(1, t-K)} .. S_{t-1}``.
``size``
    ``all`` (default): the union of those batches; ``n`` or an integer ``m``: a uniformly
    random subset of that many points, without replacement, drawn afresh for every model.
``real-fraction``
    a number ``lambda`` in ``[0, 1]``, only with an integer ``size``: a stratified
    subsample of ``round(lambda m)`` real points and ``m - round(lambda m)`` synthetic
    points, each drawn without replacement from its own part of the pool (rounding
    half up).

Presets (names that stay): ``replace`` = ``real=none,synthetic=latest``; ``accumulate`` =
``real=original,synthetic=all``; ``accumulate-subsample`` =
``real=original,synthetic=all,size=n``; ``fresh`` = ``real=fresh,synthetic=latest``
(the self-consuming loop with fresh data).  ``all`` means the paper's three.  A rule
equal to a preset is labelled by the preset's name, so a preset and its spelled-out
spec give identical output.

Examples
--------
>>> Workflow.parse("replace").spec
'real=none,synthetic=latest'
>>> Workflow.parse("real=original,synthetic=all,size=n").label
'accumulate-subsample'
>>> Workflow.parse("real=original,synthetic=window:3").training_size(n=10, t=5)
40
>>> [w.label for w in parse_workflows("all")]
['replace', 'accumulate', 'accumulate-subsample']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Union

from collapse.analysis.errors import CollapseError
from collapse.analysis.vocabulary import (
    ACCUMULATE,
    ACCUMULATE_SUBSAMPLE,
    ALL,
    FRESH,
    REPLACE,
    WORKFLOWS,
)

ORIGINAL = "original"
#: ``real=`` values.
REAL_CHOICES: tuple[str, ...] = (ORIGINAL, "fresh", "none")
#: Spec keys, in canonical order.
KEYS: tuple[str, ...] = ("real", "synthetic", "size", "real-fraction")


@dataclass(frozen=True)
class Workflow:
    """A rule for the training set ``D_t`` of model ``t >= 2`` (see the module docstring).

    Parameters
    ----------
    real : {"original", "fresh", "none"}
        Which real data ``D_t`` holds.
    window : int or None
        Synthetic batches kept: ``None`` for all of them, ``K >= 1`` for the ``K``
        newest (``1`` is ``synthetic=latest``).
    size : None, "n" or int
        ``None`` keeps the whole union; ``"n"`` or an integer ``m >= 1`` draws a
        uniformly random subset of that many points without replacement.
    real_fraction : float or None
        With an integer ``size``, the fraction ``lambda`` of real points of a
        stratified subsample.

    Examples
    --------
    >>> Workflow(real="fresh", window=1).label
    'fresh'
    >>> str(Workflow(window=3, size=50))
    'real=original,synthetic=window:3,size=50'
    """

    real: str = ORIGINAL
    window: int | None = None
    size: int | str | None = None
    real_fraction: float | None = None

    def __post_init__(self) -> None:
        if self.real not in REAL_CHOICES:
            raise CollapseError(f"workflow key real must be one of {', '.join(REAL_CHOICES)} "
                                f"(got {self.real!r})")
        if self.window is not None:
            if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
                raise CollapseError(f"workflow key synthetic: window:K needs an integer K >= 1 "
                                    f"(got {self.window!r})")
        if self.size is not None and self.size != "n":
            if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
                raise CollapseError(f"workflow key size must be all, n or an integer >= 1 "
                                    f"(got {self.size!r})")
        if self.real_fraction is not None:
            lam = self.real_fraction
            if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam <= 1:
                raise CollapseError(f"workflow key real-fraction must be a number in [0, 1] "
                                    f"(got {lam!r})")
            object.__setattr__(self, "real_fraction", float(lam))
            if self.size is None:
                raise CollapseError("workflow key real-fraction needs an integer size "
                                    "(e.g. size=50,real-fraction=0.2)")
            if self.real == "none" and self.real_fraction > 0:
                raise CollapseError("workflow key real-fraction must be 0 with real=none "
                                    "(there are no real points to draw)")

    # -- names ----------------------------------------------------------------------
    @property
    def synthetic(self) -> str:
        """The ``synthetic=`` value: ``all``, ``latest`` or ``window:K``."""
        if self.window is None:
            return "all"
        return "latest" if self.window == 1 else f"window:{self.window}"

    @property
    def spec(self) -> str:
        """The canonical spec string (keys in order, defaults of size left out)."""
        parts = [f"real={self.real}", f"synthetic={self.synthetic}"]
        if self.size is not None:
            parts.append(f"size={self.size}")
        if self.real_fraction is not None:
            parts.append(f"real-fraction={self.real_fraction:g}")
        return ",".join(parts)

    @property
    def name(self) -> str | None:
        """The preset's name if this rule is a preset, else ``None``."""
        for name, rule in PRESETS.items():
            if rule == self:
                return name
        return None

    @property
    def label(self) -> str:
        """What tables call this rule: the preset's name, or the canonical spec."""
        return self.name or self.spec

    def __str__(self) -> str:
        return self.label

    # -- parsing --------------------------------------------------------------------
    @classmethod
    def parse(cls, text: str) -> "Workflow":
        """A preset name or a ``key=value,...`` spec (see the module docstring).

        Raises
        ------
        CollapseError
            Naming the bad key or value.
        """
        if not isinstance(text, str):
            raise CollapseError(f"workflow must be a preset name or a spec string (got {text!r})")
        text = text.strip()
        if text in PRESETS:
            return PRESETS[text]
        if "=" not in text:
            valid = ", ".join(tuple(PRESETS) + (ALL,))
            raise CollapseError(f"unknown workflow {text!r}; choose from {valid}, or write a "
                                f"spec such as real=original,synthetic=window:3")
        fields: dict[str, str] = {}
        for part in text.split(","):
            key, sep, value = part.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key:
                raise CollapseError(f"workflow spec: expected key=value, got {part.strip()!r}")
            if key not in KEYS:
                raise CollapseError(f"workflow spec: unknown key {key!r}; keys are "
                                    f"{', '.join(KEYS)}")
            if key in fields:
                raise CollapseError(f"workflow spec: key {key} given twice")
            fields[key] = value
        return cls(real=fields.get("real", ORIGINAL),
                   window=_parse_synthetic(fields.get("synthetic", "all")),
                   size=_parse_size(fields.get("size", "all")),
                   real_fraction=_parse_fraction(fields.get("real-fraction")))

    # -- the rule, given n ----------------------------------------------------------
    def synthetic_batches(self, t: int) -> range:
        """Indices ``j`` of the synthetic batches ``S_j`` in ``D_t`` (empty at ``t = 1``)."""
        if t <= 1:
            return range(0)
        first = 1 if self.window is None else max(1, t - self.window)
        return range(first, t)

    def real_count(self, n: int, t: int) -> int:
        """Real points in the pool of model ``t`` (before any subsample)."""
        if t <= 1:
            return n
        return 0 if self.real == "none" else n

    def pool_size(self, n: int, t: int) -> int:
        """Points in the union of the batches of ``D_t`` (before any subsample)."""
        return self.real_count(n, t) + n * len(self.synthetic_batches(t))

    def subsample_size(self, n: int) -> int | None:
        """``m`` of ``size=m`` (``n`` for ``size=n``), or ``None`` for the whole union."""
        if self.size is None:
            return None
        return n if self.size == "n" else int(self.size)

    def stratified_counts(self, n: int) -> tuple[int, int] | None:
        """``(real, synthetic)`` points of a stratified subsample, or ``None``."""
        m = self.subsample_size(n)
        if m is None or self.real_fraction is None:
            return None
        real = math.floor(self.real_fraction * m + 0.5)
        return real, m - real

    def training_size(self, n: int, t: int) -> int:
        """``|D_t|``: ``n`` at ``t = 1``, then the subsample size or the pool size."""
        if t <= 1:
            return n
        m = self.subsample_size(n)
        return self.pool_size(n, t) if m is None else m

    def subsamples(self, t: int) -> bool:
        """Whether ``D_t`` is a random subset of its pool (rather than the whole union)."""
        return t >= 2 and self.size is not None

    def check(self, n: int) -> "Workflow":
        """Raise :class:`CollapseError` if the rule is impossible with ``n`` points per batch.

        The pool only grows with ``t``, so it is smallest at ``t = 2``: a subsample
        larger than that pool, or a stratum larger than its part, is impossible.
        """
        m = self.subsample_size(n)
        if m is None:
            return self
        pool = self.pool_size(n, 2)
        if m > pool:
            raise CollapseError(f"workflow key size={self.size} asks for {m} points but the "
                                f"pool of model 2 holds only {pool} (n = {n})")
        counts = self.stratified_counts(n)
        if counts is not None:
            real, synthetic = counts
            if real > self.real_count(n, 2):
                raise CollapseError(f"workflow key real-fraction={self.real_fraction:g} asks "
                                    f"for {real} real points of {self.real_count(n, 2)}")
            if synthetic > n * len(self.synthetic_batches(2)):
                raise CollapseError(f"workflow key real-fraction={self.real_fraction:g} asks "
                                    f"for {synthetic} synthetic points but model 2 has only "
                                    f"{n * len(self.synthetic_batches(2))}")
        return self


def _parse_synthetic(value: str) -> int | None:
    if value == "all":
        return None
    if value == "latest":
        return 1
    if value.startswith("window:"):
        try:
            k = int(value[len("window:"):])
        except ValueError:
            k = None
        if k is not None and k >= 1:
            return k
        raise CollapseError(f"workflow key synthetic: window:K needs an integer K >= 1 "
                            f"(got {value!r})")
    raise CollapseError(f"workflow key synthetic must be all, latest or window:K (got {value!r})")


def _parse_size(value: str) -> int | str | None:
    if value == "all":
        return None
    if value == "n":
        return "n"
    try:
        m = int(value)
    except ValueError:
        m = 0
    if m >= 1:
        return m
    raise CollapseError(f"workflow key size must be all, n or an integer >= 1 (got {value!r})")


def _parse_fraction(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        lam = float(value)
    except ValueError:
        lam = math.nan
    if not 0 <= lam <= 1:
        raise CollapseError(f"workflow key real-fraction must be a number in [0, 1] "
                            f"(got {value!r})")
    return lam


#: The named rules.  ``fresh`` is not part of ``all`` (the paper's three).
PRESETS: dict[str, Workflow] = {
    REPLACE: Workflow(real="none", window=1),
    ACCUMULATE: Workflow(real=ORIGINAL),
    ACCUMULATE_SUBSAMPLE: Workflow(real=ORIGINAL, size="n"),
    FRESH: Workflow(real="fresh", window=1),
}

WorkflowLike = Union[str, Workflow, Iterable[Union[str, Workflow]]]


def parse_workflows(value: WorkflowLike) -> tuple[Workflow, ...]:
    """Normalise a ``workflow`` argument into a tuple of distinct rules, in order.

    Accepts ``"all"`` (the paper's three), a preset name, a comma-separated list of
    preset names, one spec (a string containing ``=``), a :class:`Workflow`, or a
    list of any of these.  A rule given twice (in any spelling) is kept once.

    Examples
    --------
    >>> [w.label for w in parse_workflows("replace,fresh")]
    ['replace', 'fresh']
    >>> [w.label for w in parse_workflows(["accumulate", "real=original,synthetic=all"])]
    ['accumulate']
    """
    items: list[Workflow] = []
    if isinstance(value, (str, Workflow)):
        value = [value]
    try:
        entries = list(value)  # type: ignore[arg-type]
    except TypeError:
        raise CollapseError(f"workflow must be a preset name, a spec, a Workflow or a list of "
                            f"them (got {value!r})") from None
    if not entries:
        raise CollapseError("workflow: give at least one workflow")
    for entry in entries:
        if isinstance(entry, Workflow):
            items.append(entry)
        elif isinstance(entry, str) and entry.strip() == ALL:
            items.extend(PRESETS[name] for name in WORKFLOWS)
        elif isinstance(entry, str) and "=" not in entry and "," in entry:
            for part in entry.split(","):
                if not part.strip():
                    raise CollapseError(f"workflow: empty name in {entry!r}")
                items.extend(parse_workflows(part))
        else:
            items.append(Workflow.parse(entry))  # type: ignore[arg-type]
    out: list[Workflow] = []
    for rule in items:
        if rule not in out:
            out.append(rule)
    return tuple(out)
