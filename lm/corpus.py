"""Documents of real human-written text, and the fixed seeded splits of them.

Default corpus (``--dataset python-docs``), available offline wherever Python is:

* the paragraphs of ``pydoc_data.topics`` (the reference-manual topics that
  ``help()`` shows: the Python Language Reference and Library Reference text),
* the paragraphs of the docstrings (of modules, classes and functions) in the
  top-level standard-library ``.py`` files (read with :mod:`ast`, never
  imported).

Both are written by the Python developers and distributed with CPython under
the Python Software Foundation License (PSF-2.0).  A paragraph is a
blank-line-separated block with its whitespace collapsed to single spaces; a
document is a paragraph of 80 to 600 characters at least 60% of whose
characters are letters (this drops grammar rules, tables and interactive
sessions that are mostly symbols), with exact duplicates removed.  On CPython
3.11 this gives about 3,960 documents and 774,000 characters (1,114
documents and 313,000 characters from ``pydoc_data.topics`` alone).  The corpus
depends on the Python version, so its SHA-256 fingerprint is part of every
run's configuration and of the base model's cache key.

Other sources (``--dataset``): a local ``.txt`` file (blank-line-separated
documents), a local ``.jsonl`` file (one JSON object per line, text in
``--text-field``, default ``text``), or a Hugging Face hub data set name loaded
with the ``datasets`` package (not required otherwise).  A hub record with
``prompt`` and ``response`` fields (e.g. ``nvidia/HelpSteer2``) is rendered as
``user: {prompt}\\nassistant: {response}`` as in the paper.

Splits (:func:`make_splits`): one seeded permutation of the documents cuts them
into three disjoint parts, a pretraining split (for the default base model),
a held-out evaluation set, and a pool; each replicate seed draws its real
training set of ``n`` documents from the pool without replacement
(:func:`real_training_indices`).  So the base model and the evaluation set are
shared by all seeds, while the real data vary between seeds as a replicate's
real sample does in the Gaussian and KDE settings.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from collapse.analysis.errors import CollapseError
from collapse.lm import seeding

DEFAULT_DATASET = "python-docs"
MIN_CHARS = 80
MAX_CHARS = 600
MIN_LETTER_FRACTION = 0.6

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


@dataclass(frozen=True)
class Corpus:
    """A named list of documents with where they came from."""

    name: str
    documents: tuple[str, ...]
    provenance: str
    #: prompt/response records rendered as chat: over-long examples are left out of the
    #: evaluation set and the pool (:func:`make_splits`), as the paper does
    chat: bool = False

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.documents)

    @property
    def n_chars(self) -> int:
        return sum(len(d) for d in self.documents)


@dataclass(frozen=True)
class Splits:
    """Disjoint index sets into a corpus's documents."""

    pretrain: tuple[int, ...]
    evaluation: tuple[int, ...]
    pool: tuple[int, ...]


def fingerprint(documents: Sequence[str]) -> str:
    """SHA-256 (hex) of the documents, each length-prefixed, in order."""
    digest = hashlib.sha256()
    for doc in documents:
        data = doc.encode("utf-8")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _is_prose(paragraph: str) -> bool:
    if not MIN_CHARS <= len(paragraph) <= MAX_CHARS:
        return False
    letters = sum(ch.isalpha() for ch in paragraph)
    return letters >= MIN_LETTER_FRACTION * len(paragraph)


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in _PARAGRAPH_BREAK.split(text)]


def _dedupe(docs: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out = []
    for doc in docs:
        if doc not in seen:
            seen.add(doc)
            out.append(doc)
    return tuple(out)


@functools.lru_cache(maxsize=1)
def default_corpus() -> Corpus:
    """The ``python-docs`` corpus described in the module docstring (built once per process)."""
    from pydoc_data.topics import topics

    docs: list[str] = []
    for key in sorted(topics):
        docs.extend(p for p in _paragraphs(topics[key]) if _is_prose(p))
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(stdlib.glob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, _DOCUMENTED):
                doc = ast.get_docstring(node)
                if doc:
                    docs.extend(p for p in _paragraphs(doc) if _is_prose(p))
    return Corpus(
        name=DEFAULT_DATASET,
        documents=_dedupe(docs),
        provenance=(
            "paragraphs of pydoc_data.topics and of standard-library docstrings "
            "(CPython documentation, PSF License)"
        ),
    )


def _utf8(path: Path) -> str:
    """The text of ``path``; :class:`CollapseError` naming ``--dataset`` if it is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CollapseError(f"--dataset: {path} is not UTF-8 text (invalid byte 0x{data[exc.start]:02x} "
                            f"at line {line}); convert it to UTF-8") from None


def _read_txt(path: Path) -> list[str]:
    return [p.strip() for p in _PARAGRAPH_BREAK.split(_utf8(path)) if p.strip()]


def is_chat(record: dict) -> bool:
    """Whether a record has the ``prompt`` and ``response`` string fields of HelpSteer2."""
    return isinstance(record.get("prompt"), str) and isinstance(record.get("response"), str)


def _read_jsonl(path: Path, text_field: str | None) -> tuple[list[str], bool]:
    """The documents of a JSON-lines file, and whether they were rendered as chat."""
    docs = []
    chat = None
    # JSON Lines separates records by "\n" alone; splitlines() would also cut a record at
    # a raw U+2028 or U+0085 inside one of its strings
    for number, line in enumerate(_utf8(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise CollapseError(f"--dataset: {path} line {number} is not JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise CollapseError(f"--dataset: {path} line {number} is not a JSON object")
        if chat is None:
            chat = text_field is None and is_chat(record)
        try:
            text = render_record(record, text_field, chat=chat)
        except CollapseError as exc:
            raise CollapseError(f"{exc} in {path} line {number}") from None
        if text.strip():
            docs.append(text.strip())
    return docs, bool(chat)


def render_record(record: dict, text_field: str | None, chat: bool | None = None) -> str:
    """The document text of one record (local JSON lines or hub).

    ``text_field`` given: that field.  Otherwise a record with ``prompt`` and
    ``response`` becomes ``"user: {prompt}\\nassistant: {response}"`` (the paper's
    HelpSteer2 rendering; the loop appends the end-of-text token to every document),
    else its ``text`` field.  ``chat`` forces (or forbids) the chat rendering, so that
    every record of one data set is rendered alike.

    Examples
    --------
    >>> render_record({"prompt": "Hi?", "response": "Hello.", "helpfulness": 3}, None)
    'user: Hi?\\nassistant: Hello.'
    """
    if text_field is not None:
        if text_field not in record:
            hint = ("; these records have prompt and response fields: leave out --text-field to "
                    "format them as 'user: ...\\nassistant: ...'" if is_chat(record) else "")
            raise CollapseError(
                f"--text-field: records have no field {text_field!r} (fields: {', '.join(sorted(record))}){hint}"
            )
        if not isinstance(record[text_field], str):
            raise CollapseError(f"--text-field: {text_field!r} is not a string")
        return record[text_field]
    if chat is None:
        chat = is_chat(record)
    if chat:
        if not is_chat(record):
            raise CollapseError("--dataset: a record lacks the string fields prompt and response that "
                                "the first record has")
        return f"user: {record['prompt']}\nassistant: {record['response']}"
    if isinstance(record.get("text"), str):
        return record["text"]
    raise CollapseError(
        f"--text-field: cannot tell which field holds the text (fields: {', '.join(sorted(record))}); "
        "name one with --text-field"
    )


def _looks_like_path(spec: str) -> bool:
    return (
        spec.startswith(("/", ".", "~"))
        or spec.endswith((".txt", ".jsonl", ".json"))
        or "\\" in spec
    )


def _load_hub(name: str, text_field: str | None) -> tuple[list[str], bool]:
    from collapse.lm import hub

    try:
        import datasets  # noqa: F401  (optional dependency)
    except ImportError:
        raise CollapseError(
            f"--dataset: {name!r} is not a local file, and hub data sets need the `datasets` "
            "package (pip install datasets); or pass a local .txt or .jsonl file"
        ) from None
    hub.require_hub(
        "--dataset", name,
        "pass a local .txt (blank-line separated documents) or .jsonl file instead",
    )
    try:
        data = datasets.load_dataset(name, split="train")
    except Exception as exc:  # any loader failure is a bad name or no access
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollapseError(f"--dataset: cannot load {name!r} from the hub: {first}") from None
    chat = text_field is None and len(data) > 0 and is_chat(data[0])
    return [d for d in (render_record(r, text_field, chat=chat).strip() for r in data) if d], chat


def load_corpus(spec: str | None = None, text_field: str | None = None) -> Corpus:
    """Resolve a ``--dataset`` value into a :class:`Corpus` (see module docstring).

    ``None`` or ``"python-docs"`` gives :func:`default_corpus`.  Exact duplicate
    documents are dropped so that the splits are disjoint in content too.
    """
    if spec is None or spec == DEFAULT_DATASET:
        if text_field is not None:
            raise CollapseError("--text-field: only applies to a .jsonl or hub --dataset")
        return default_corpus()
    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix == ".txt":
            if text_field is not None:
                raise CollapseError("--text-field: only applies to a .jsonl or hub --dataset")
            docs, chat = _read_txt(path), False
        elif path.suffix == ".jsonl":
            docs, chat = _read_jsonl(path, text_field)
        else:
            raise CollapseError(f"--dataset: {spec!r} must end in .txt or .jsonl")
        provenance = f"local file {path.resolve()}"
    elif path.exists():
        raise CollapseError(f"--dataset: {spec!r} is not a file")
    elif _looks_like_path(spec):
        raise CollapseError(f"--dataset: no such file {spec!r}")
    else:
        docs, chat = _load_hub(spec, text_field)
        provenance = f"Hugging Face hub data set {spec} (train split)"
    documents = _dedupe(docs)
    if not documents:
        raise CollapseError(f"--dataset: {spec!r} holds no documents")
    if chat:
        provenance += "; prompt/response records rendered as 'user: {prompt}\\nassistant: {response}'"
    return Corpus(name=spec, documents=documents, provenance=provenance, chat=chat)


def make_splits(n_docs: int, n_pretrain: int, n_eval: int, split_seed: int,
                keep: Callable[[int], bool] | None = None) -> Splits:
    """Cut ``range(n_docs)`` into disjoint pretraining, evaluation and pool sets.

    One permutation drawn from ``seeding.numpy_rng(split_seed, 0, "split")``;
    the first ``n_pretrain`` indices pretrain, the next ``n_eval`` evaluate,
    the rest form the pool.  ``keep`` given, only the documents after the
    pretraining part for which ``keep(index)`` is true are candidates for the
    evaluation set and the pool (over-long chat examples are left out this way).
    Each part is returned sorted.

    Examples
    --------
    >>> s = make_splits(10, 4, 2, split_seed=0)
    >>> len(s.pretrain), len(s.evaluation), len(s.pool)
    (4, 2, 4)
    """
    if n_pretrain < 0 or n_eval < 1:
        raise ValueError("need n_pretrain >= 0 and n_eval >= 1")
    if n_pretrain + n_eval >= n_docs:
        raise ValueError("no documents left for the pool")
    order = [int(i) for i in seeding.numpy_rng(split_seed, 0, seeding.SPLIT).permutation(n_docs)]
    rest = order[n_pretrain:] if keep is None else [i for i in order[n_pretrain:] if keep(i)]
    pretrain = tuple(sorted(order[:n_pretrain]))
    evaluation = tuple(sorted(rest[:n_eval]))
    pool = tuple(sorted(rest[n_eval:]))
    return Splits(pretrain, evaluation, pool)


def check_sizes(n_docs: int, n_pretrain: int, n_eval: int, n: int, dataset: str, n_option: str = "--n") -> None:
    """:class:`CollapseError` unless the corpus holds pretraining + evaluation + ``n`` documents."""
    need = n_pretrain + n_eval + n
    if need > n_docs:
        raise CollapseError(
            f"{n_option}: {dataset!r} has {n_docs} documents but the run needs {need} "
            f"(pretraining {n_pretrain} + --n-eval {n_eval} + {n_option} {n}); lower {n_option} or --n-eval"
            + (" (or use --model, which skips pretraining)" if n_pretrain else "")
        )


def real_training_indices(splits: Splits, n: int, seed: int) -> tuple[int, ...]:
    """The real training set of replicate ``seed``: ``n`` pool indices without replacement.

    Drawn from ``seeding.numpy_rng(seed, 0, "real")``, independent of the workflow.
    """
    if n > len(splits.pool):
        raise ValueError("n exceeds the pool")
    rng = seeding.numpy_rng(seed, 0, seeding.REAL)
    chosen = rng.choice(len(splits.pool), size=n, replace=False)
    return tuple(splits.pool[int(i)] for i in chosen)


def fresh_indices(splits: Splits, real: Sequence[int], n: int, seed: int, t: int) -> tuple[int, ...]:
    """The fresh real batch ``F_t`` of replicate ``seed``: ``n`` pool indices not in ``real``.

    Drawn without replacement from ``seeding.numpy_rng(seed, t, "fresh")``, so each batch
    depends only on ``(seed, t)``; batches of different ``t`` are independent draws and
    may share documents, but none shares one with the real training set ``real`` (and
    none with the evaluation set, which is not in the pool).
    """
    taken = set(real)
    rest = [i for i in splits.pool if i not in taken]
    if n > len(rest):
        raise ValueError("n exceeds the pool left after the real training set")
    chosen = seeding.numpy_rng(seed, t, seeding.FRESH).choice(len(rest), size=n, replace=False)
    return tuple(rest[int(i)] for i in chosen)


def select(documents: Sequence[str], indices: Sequence[int]) -> list[str]:
    return [documents[i] for i in indices]


__all__ = [
    "Corpus", "Splits", "DEFAULT_DATASET", "default_corpus", "load_corpus", "render_record",
    "make_splits", "check_sizes", "real_training_indices", "fresh_indices", "fingerprint", "select",
]
