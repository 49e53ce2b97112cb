"""The documentation site: formulas generated from the code, offline math, a real browser.

Fast checks (default suite):

* every formula block of the theory pages is produced from ``collapse.analysis`` and prints as
  LaTeX; replacing an ``collapse.analysis`` function changes the printed formula (the pages follow
  the code); the *stated* steps (recursions, Euler's product, the ``H_t`` expansion, the
  log-normal skewness) pass their build-time checks, and a deliberately wrong version of
  each fails them (negative controls);
* numbers in the prose agree with independent closed forms;
* every documented ``collapse`` command parses with the real argument parser;
* a minimal Sphinx project using the docs extension builds with ``-W``, serves MathJax
  from the build itself (no http(s) script or stylesheet), and — where Chromium is
  installed — typesets its math offline, loads its image and makes no network request.

Browser checks of the whole site: ``test_built_site_in_browser`` opens every page of
``docs/_build/html`` (when ``make docs`` has built it from the current sources) in headless
Chromium; ``test_full_build_in_browser`` (slow) builds the site itself first.  In the
browser each page must show no raw TeX outside code, have every math element typeset by
MathJax without errors, load every image (``naturalWidth > 0``) and request nothing but
``file:`` and ``data:`` URLs.  Chromium is driven over the DevTools protocol on a pipe
(``--remote-debugging-pipe``), so no extra Python package and no TCP port are needed.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sympy as sp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BUILT = DOCS / "_build" / "html"
sys.path.insert(0, str(DOCS / "_ext"))

from collapse_docs import STAMP, formulas, numbers, runs  # noqa: E402
from collapse_docs.latex import tex  # noqa: E402

from collapse.analysis import gaussian_symbolic as gs  # noqa: E402

# --------------------------------------------------------------------------- formulas


@pytest.fixture(scope="module")
def rendered() -> dict[str, formulas.FormulaBlock]:
    return {name: builder() for name, builder in formulas.FORMULAS.items()}


def test_every_formula_block_renders_from_the_code(rendered):
    for name, block in rendered.items():
        assert block.equations, name
        assert block.sources and all(s.split(".")[0] in ("analysis", "simulate") for s in block.sources)
        assert block.problems == (), (name, block.problems)
        latex = block.latex()
        # Printed by sympy in the docs' notation: no Python syntax, no raw function names.
        for bad in ("**", "polygamma", "harmonic", "sigma_{2}", "sigma2"):
            assert bad not in latex, (name, bad)
        assert latex.count("{") == latex.count("}"), name
        assert latex.count(r"\left") == latex.count(r"\right"), name


def test_formulas_follow_the_analysis_code(monkeypatch):
    # A different closed form in analysis must give a different page formula.
    original = gs.replace_closed_forms(gs.MLE)
    sentinel = sp.Symbol("Z_{sentinel}") * gs.t
    changed = dict(original, cov_trace_ratio=sentinel)
    formulas._replace_forms.cache_clear()
    monkeypatch.setattr(gs, "replace_closed_forms", lambda covariance=gs.MLE: changed)
    try:
        assert tex(sentinel) in formulas.replace_mle().latex()
    finally:
        formulas._replace_forms.cache_clear()
    monkeypatch.undo()
    assert tex(sentinel) not in formulas.replace_mle().latex()
    assert tex(original["cov_trace_ratio"]) in formulas.replace_mle().latex()


def test_limits_on_the_page_match_independent_closed_forms():
    # Euler: prod_k (1 - x^2/k^2) = sin(pi x)/(pi x) at x = 1/sqrt(n), computed here with math.
    for n in (10, 100):
        expected = math.sqrt(n) * math.sin(math.pi / math.sqrt(n)) / math.pi
        assert numbers.raw_value(f"gauss.lim.b.accumulate.mle.n{n}") == pytest.approx(expected, rel=1e-3)
        assert numbers.raw_value(f"gauss.known-cov-limit.n{n}") == pytest.approx(
            math.pi**2 / (6 * n), rel=1e-3)
    # replace, MLE: b_t = ((n-1)/n)^t exactly.
    assert numbers.raw_value("gauss.b.replace.mle.n10.t10") == pytest.approx(0.9**10, rel=1e-3)
    # E K = H_t under accumulate, t under replace.
    assert numbers.raw_value("kde.steps.accumulate.t10") == pytest.approx(
        sum(1 / i for i in range(1, 11)), rel=1e-3)
    assert numbers.value("kde.steps.replace.t10") == "10"
    assert numbers.value("ratio gauss.known-cov-limit.n10 gauss.known-cov-limit.n100") == "10"
    assert numbers.fmt(-2.5e-5) == "−2.5×10⁻⁵" and numbers.fmt(float("inf")) == "∞"
    with pytest.raises(ValueError):
        numbers.value("gauss.lim.b.nonsense.mle.n10")


def test_stated_recursion_is_checked_against_the_code():
    assert formulas.recursion_problems(formulas.STATED, iterations=3) == []
    # Negative control: drop the cross term 2 A_t / t from the update of A.
    wrong = formulas.StatedRecursion(next_A=formulas._A * (1 + 1 / gs.t) + formulas._a + formulas._b / gs.n)
    problems = formulas.recursion_problems(wrong, iterations=3)
    assert problems and all("replace" not in p for p in problems)


def test_stated_identities_reject_wrong_versions():
    assert formulas.euler_problems() == []
    assert formulas.euler_problems(1 - 1 / (gs.n * sp.Symbol("k", positive=True, integer=True)))
    assert formulas.harmonic_problems() == []
    assert formulas.harmonic_problems(sp.log(gs.t) + sp.EulerGamma - 1 / (12 * gs.t**2))
    assert formulas.lognormal_problems() == []
    s2 = sp.Symbol("s^2", positive=True)
    assert formulas.lognormal_problems((sp.exp(s2) + 1) * sp.sqrt(sp.exp(s2) - 1))


def test_regression_and_discrete_pages_follow_the_code_and_reject_wrong_forms():
    assert formulas.regression_problems() == []
    assert formulas.discrete_problems() == []
    # Negative controls: one noise fit too many under replace, 1/(n s) for 1/(n s^2).
    from collapse.analysis import regression_symbolic as rs

    wrong = formulas.regression_problems(
        (formulas.REPLACE,), formula=lambda w: rs.regression_formula("test_mse", w) * (rs.t + 1) / rs.t)
    assert wrong and all("replace" in p for p in wrong)
    s = sp.Symbol("s", positive=True, integer=True)
    assert formulas.discrete_problems(1 - 1 / (gs.n * s))


def test_regression_and_discrete_numbers_match_independent_closed_forms():
    # t sigma2 d / (n - d - 1) and sum_{i<=t} 1/i^2 of it; Euler's sine product; Kimura.
    assert numbers.raw_value("regression.replace.d10.n100.t5") == pytest.approx(50 / 89, rel=1e-12)
    assert numbers.raw_value("regression.accumulate.d10.n100.t3") == pytest.approx(
        10 / 89 * (1 + 1 / 4 + 1 / 9), rel=1e-12)
    x = 1 / math.sqrt(10)
    assert numbers.raw_value("discrete.lim.accumulate.n10") == pytest.approx(
        math.sin(math.pi * x) / (math.pi * x), rel=1e-12)
    assert numbers.raw_value("discrete.collapse-time.kimura.k10.n10") == pytest.approx(
        -2 * 10 * 10 * 0.9 * math.log(0.9), rel=1e-12)
    # replace, K = 2, n = 2: collapse at t = 1 w.p. 1/2, then w.p. 1/2 per step: E T = 2
    assert numbers.discrete_collapse_time("exact", 2, 2) == pytest.approx(2.0, rel=1e-12)

def test_tables_have_consistent_shapes():
    for name in numbers.TABLES:
        data = numbers.table(name)
        assert data.rows and data.problems == (), name
        assert all(len(row) == len(data.header) for row in data.rows), name


# --------------------------------------------------------------------------- commands


_COMMAND_BLOCK = re.compile(r"^\.\. collapse-command::\s*\n((?:[ \t]*\n|[ \t]+.*\n)+)", re.M)


def _documented_commands() -> list[list[str]]:
    found = []
    for page in sorted(DOCS.glob("*.rst")):
        for block in _COMMAND_BLOCK.findall(page.read_text()):
            found += runs.commands_in(block)
    return found


def test_documented_commands_parse_with_the_real_parser():
    commands = _documented_commands()
    # index, lm, reproducing: the full-size Gaussian grid alone expands to 25 commands.
    assert len(commands) >= 50
    for argv in commands:
        assert runs.check_command(argv) is None, argv
    # Negative control: the same check rejects a bad value.
    assert "--n" in (runs.check_command(["compare", "gaussian", "--n", "1"]) or "")
    assert runs.check_command(["compare", "gaussian", "--workflow", "recycle"])


def test_readme_commands_parse_and_cover_every_setting():
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    commands = [argv for block in blocks for argv in runs.commands_in(block)
                if argv and argv[0] in ("theory", "simulate", "compare", "value")]
    assert {argv[1] for argv in commands} >= {"gaussian", "kde", "regression", "discrete"}
    for argv in commands:
        assert runs.check_command(argv) is None, argv

def test_shell_loops_expand_into_every_command():
    snippet = "for d in 1 3; do\n  for n in 10 32 100; do\n    collapse theory gaussian --dim $d \\\n      --n ${n}\n  done\ndone\n"
    commands = runs.commands_in(snippet)
    assert sorted(commands) == sorted(["theory", "gaussian", "--dim", d, "--n", n]
                                      for d in ("1", "3") for n in ("10", "32", "100"))


def test_every_figure_and_run_command_parses():
    for name, run in runs.RUNS.items():
        assert runs.check_command(list(run.argv)) is None, name


# --------------------------------------------------------------------------- browser


def chromium_binary() -> str | None:
    for candidate in (os.environ.get("COLLAPSE_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome", "/usr/bin/chromium"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol on ``--remote-debugging-pipe``.

    Commands are NUL-terminated JSON written to the browser's fd 3, answers and events
    come back on its fd 4.  Only what the checks need: open a page, wait for its load
    event, evaluate a script, record every network request.
    """

    def __init__(self, binary: str, profile: Path) -> None:
        cmd_read, self._cmd_write = os.pipe()
        self._res_read, res_write = os.pipe()

        def to_fds_3_and_4() -> None:
            a, b = os.dup(cmd_read), os.dup(res_write)  # avoid clobbering if already 3/4
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--window-size=1280,900", "--remote-debugging-pipe", f"--user-data-dir={profile}",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, preexec_fn=to_fds_3_and_4,
                                     pass_fds=(3, 4, cmd_read, res_write))
        os.close(cmd_read)
        os.close(res_write)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)

    def _send(self, message: dict) -> None:
        os.write(self._cmd_write, json.dumps(message).encode() + b"\0")

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._res_read], [], [], remaining)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._res_read, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: bool = False,
             timeout: float = 30.0) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        self._send(message)
        deadline = time.monotonic() + timeout
        while True:
            answer = self._receive(deadline)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    def wait_for(self, method: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._receive(deadline))

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, expression: str, timeout: float = 30.0):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True, timeout=timeout)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"]["value"]

    def requests(self) -> list[str]:
        return [e["params"]["request"]["url"] for e in self.events
                if e.get("method") == "Network.requestWillBeSent"]

    def failures(self) -> list[dict]:
        return [e["params"] for e in self.events if e.get("method") == "Network.loadingFailed"]

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - the browser may already be gone
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._cmd_write)
        os.close(self._res_read)


# Waits for MathJax, forces every image to load, then reports what a reader would see.
PAGE_REPORT_JS = r"""
(async () => {
  const report = {};
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  report.mathjax = !!(window.MathJax && MathJax.version);
  report.mathSources = document.querySelectorAll('span.math, div.math').length;
  report.mathTypeset = Array.from(document.querySelectorAll('span.math, div.math'))
    .filter(e => e.querySelector('mjx-container')).length;
  report.mathErrors = document.querySelectorAll('mjx-merror, [data-mjx-error]').length;
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, textarea, mjx-container, mjx-assistive-mml')
    .forEach(e => e.remove());
  const text = clone.textContent;
  report.rawTex = ['\\(', '\\)', '\\[', '\\]', '$$', '\\frac', '\\begin', '\\mathbb',
                   '\\left', '\\operatorname'].filter(p => text.includes(p));
  // A display formula wider than the column it sits in (the reader must scroll it).
  report.wideMath = Array.from(document.querySelectorAll('mjx-container[display="true"]'))
    .filter(e => {
      const math = e.querySelector('mjx-math');
      const column = e.closest('div.math, .MathJax_Display, article, body') || e.parentElement;
      return math && math.getBoundingClientRect().width > column.getBoundingClientRect().width + 1;
    })
    .map(e => (e.getAttribute('aria-label') || e.textContent || '').slice(0, 80));
  const images = Array.from(document.images);
  await Promise.all(images.map(img => {
    img.loading = 'eager';
    if (img.complete) return null;
    return new Promise(resolve => {
      img.addEventListener('load', resolve); img.addEventListener('error', resolve);
      setTimeout(resolve, 10000);
    });
  }));
  report.images = images.map(i => ({src: i.currentSrc || i.src,
                                     ok: i.complete && i.naturalWidth > 0}));
  return report;
})()
"""

_LOCAL = ("file:", "data:", "about:", "blob:")


def page_problems(browser: Chromium, page: Path, expect_math: bool) -> list[str]:
    """Open ``page`` and list what a reader would see wrong (empty when all is well)."""
    browser.open(page.resolve().as_uri())
    report = browser.evaluate(PAGE_REPORT_JS, timeout=60)
    problems = []
    if report["rawTex"]:
        problems.append(f"raw TeX in visible text: {report['rawTex']}")
    if report["mathErrors"]:
        problems.append(f"{report['mathErrors']} MathJax errors")
    if report["mathTypeset"] != report["mathSources"]:
        problems.append(f"{report['mathSources'] - report['mathTypeset']} of "
                        f"{report['mathSources']} math elements not typeset")
    if report.get("wideMath"):
        problems.append(f"display math wider than its column: {report['wideMath']}")
    if expect_math and not (report["mathjax"] and report["mathSources"] > 0):
        problems.append("no typeset math on a page that must have some")
    problems += [f"broken image {img['src']}" for img in report["images"] if not img["ok"]]
    problems += [f"network request to {url}" for url in browser.requests() if not url.startswith(_LOCAL)]
    problems += [f"failed load {f.get('errorText')} ({f.get('type')})" for f in browser.failures()
                 if not f.get("canceled")]
    page_problems.last_report = report
    return problems


def check_pages(browser: Chromium, pages: list[Path], expect_math: set[str],
                root: Path | None = None) -> dict[str, dict]:
    """Assert that every page is free of :func:`page_problems`; return the page reports.

    Pages are named by their path relative to ``root`` (default: their file name), and
    ``expect_math`` uses the same names.
    """
    reports, problems = {}, {}
    for page in pages:
        name = page.relative_to(root).as_posix() if root else page.name
        found = page_problems(browser, page, name in expect_math)
        reports[name] = page_problems.last_report
        if found:
            problems[name] = found
    assert not problems, problems
    return reports


def external_references(html_dir: Path) -> list[str]:
    """``<script src>``, stylesheet ``<link href>`` and ``<img src>`` that point off the site."""
    pattern = re.compile(r"<(?:script|img|iframe)[^>]*\bsrc=\"(https?:)?//|"
                         r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"(https?:)?//", re.I)
    found = []
    for page in html_dir.rglob("*.html"):
        found += [f"{page.relative_to(html_dir)}: {m.group(0)}" for m in pattern.finditer(page.read_text())]
    for sheet in (html_dir / "_static").rglob("*.css"):
        found += [f"{sheet.relative_to(html_dir)}: {m}" for m in re.findall(r"url\(\s*['\"]?https?://[^)]*\)",
                                                                          sheet.read_text(errors="ignore"))]
    return found


@pytest.fixture()
def browser(tmp_path):
    binary = chromium_binary()
    if binary is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); browser checks skipped")
    instance = Chromium(binary, tmp_path / "profile")
    yield instance
    instance.close()


def _tiny_png(path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=20)
    plt.close(fig)


def _build(src: Path, out: Path, *extra: str) -> None:
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", *extra,
           str(src), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


#: Stand-in LM results for the minimal site (clearly not real measurements).
FAKE_LM_CSV = """setting,workflow,iteration,metric,mean,sem,replicates
lm,replace,1,test_nll,4.5,0.01,2
lm,replace,2,test_nll,4.75,0.02,2
lm,accumulate,1,test_nll,4.5,0.01,2
lm,accumulate,2,test_nll,4.5,0.01,2
"""
FAKE_LM_README = """Test stand-in
~~~~~~~~~~~~~

These notes are **reStructuredText**, rendered rather than shown as source.

.. code-block:: bash

   collapse lm run --workflow all --iterations 2 --seeds 2 --preset micro --output runs/x
   collapse lm report runs/x --format csv --output lm.csv --plot lm.png
"""
#: Per-seed stand-in values: replace 4.8 + 0.05 s, accumulate 4.5 + 0.02 s (s = 0, 1, 2).
FAKE_LM_VALUES = "workflow,seed,iteration,metric,value\n" + "".join(
    f"{w},{s},2,test_nll,{v + step * s}\n" for w, v, step in (("replace", 4.8, 0.05), ("accumulate", 4.5, 0.02))
    for s in range(3))
FAKE_LM_VALUE_GRID = """setting,real_size,synthetic_size,metric,mean,sem,replicates
lm,10,0,test_nll,4.4,0.01,3
lm,10,20,test_nll,4.3,0.02,3
"""


@pytest.fixture(scope="module")
def minimal_site(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("minimal-docs")
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\nsys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx.ext.mathjax', 'collapse_docs']\n"
        "exclude_patterns = ['_build', 'results']\n")
    _tiny_png(src / "dot.png")
    (src / "results" / "lm").mkdir(parents=True)
    _tiny_png(src / "results" / "lm" / "curves.png")
    (src / "results" / "lm" / "lm.csv").write_text(FAKE_LM_CSV)
    (src / "results" / "lm" / "README.rst").write_text(FAKE_LM_README)
    (src / "results" / "lm" / "exp").mkdir()
    (src / "results" / "lm" / "exp" / "values.csv").write_text(FAKE_LM_VALUES)
    (src / "results" / "lm" / "exp" / "value.csv").write_text(FAKE_LM_VALUE_GRID)
    (src / "results" / "lm" / "exp" / "README.rst").write_text("Exp notes\n~~~~~~~~~\n\nRendered *here*.\n")
    (src / "index.rst").write_text(
        "Minimal\n=======\n\nInline :math:`\\frac{a}{b}` and a value "
        ":collapse-value:`gauss.known-cov-limit.n10`.\n\n"
        ".. collapse-formula:: gaussian-known-covariance\n\n"
        ".. math::\n\n   \\sum_{k=1}^\\infty \\frac{1}{k^2} = \\frac{\\pi^2}{6}\n\n"
        ".. image:: dot.png\n   :alt: a dot\n\n"
        ".. toctree::\n\n   lm\n")
    (src / "lm.rst").write_text("LM\n==\n\n.. collapse-lm-results::\n\n.. collapse-lm-tests:: exp\n\n"
                                ".. collapse-lm-compare:: exp exp\n\n.. collapse-lm-value:: exp\n\n"
                                ".. collapse-lm-readme:: exp\n\nInline: :collapse-lm-pair:`exp replace accumulate`.\n")
    out = src / "_build" / "html"
    _build(src, out)
    return out


def test_lm_results_are_shown_with_their_commands(minimal_site):
    page = html.unescape(re.sub(r"<[^>]+>", "", (minimal_site / "lm.html").read_text()))
    assert "collapse lm run --workflow all --iterations 2" in page
    assert "t=2: 4.75 ± 0.02" in page and "t=2: 4.5 ± 0.01" in page
    # The ordering sentence is computed: gap 0.25, combined SE hypot(0.01, 0.02) = 0.02236.
    assert "accumulate 4.5 < replace 4.75 (+0.25, 11 combined standard errors)" in page
    raw = (minimal_site / "lm.html").read_text()
    assert "Test stand-in" in page and "<strong>reStructuredText</strong>" in raw  # rendered, not raw
    assert "~~~~" not in page and "Rendered <em>here</em>" in raw
    assert "<img" in raw and "Results pending" not in page


def test_lm_tests_are_computed_at_build_time(minimal_site):
    from scipy import stats

    page = html.unescape(re.sub(r"<[^>]+>", " ", (minimal_site / "lm.html").read_text()))
    page = " ".join(page.split())
    # replace 4.8, 4.85, 4.9 and accumulate 4.5, 4.52, 4.54: a difference of means of 0.33
    assert "replace − accumulate 0.33 [" in page
    p = stats.ttest_ind([4.8, 4.85, 4.9], [4.5, 4.52, 4.54], equal_var=False).pvalue
    assert f"{p:.2g}" in page
    assert "4.3 ± 0.02" in page  # the value grid's cell (10, 20)
    assert "Inline: replace − accumulate at t = 2: 0.33 nats/token [95% CI" in page


def test_minimal_site_builds_with_local_mathjax(minimal_site):
    page = (minimal_site / "index.html").read_text()
    assert 'src="_static/mathjax/tex-chtml.js"' in page
    assert (minimal_site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    assert (minimal_site / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()
    assert tex(gs.accumulate_known_covariance_mean_error(sp.oo)) in page
    assert external_references(minimal_site) == []


def test_external_reference_scan_catches_a_cdn(tmp_path):
    # Negative control of the static scan.
    (tmp_path / "_static").mkdir()
    (tmp_path / "page.html").write_text(
        '<script defer src="https://cdn.example.org/mathjax/tex-chtml.js"></script>')
    assert len(external_references(tmp_path)) == 1


def test_minimal_site_typesets_offline_in_chromium(minimal_site, browser):
    reports = check_pages(browser, [minimal_site / "index.html", minimal_site / "lm.html"],
                          expect_math={"index.html"})
    report = reports["index.html"]
    assert report["mathSources"] >= 3 and len(report["images"]) == 1


def test_browser_check_detects_raw_tex_and_broken_images(tmp_path, browser):
    # Negative controls: untypeset TeX, a missing image and a CDN request must each be caught.
    raw = tmp_path / "raw.html"
    raw.write_text('<html><body><p><span class="math">\\(\\frac{a}{b}\\)</span></p></body></html>')
    found = page_problems(browser, raw, expect_math=True)
    assert any("raw TeX" in p for p in found) and any("not typeset" in p for p in found)
    broken = tmp_path / "broken.html"
    broken.write_text('<html><body><img src="missing.png" alt="missing"></body></html>')
    assert any("broken image" in p for p in page_problems(browser, broken, expect_math=False))
    remote = tmp_path / "remote.html"
    remote.write_text('<html><body><script src="http://127.0.0.1:9/mathjax.js"></script></body></html>')
    assert any("network request" in p for p in page_problems(browser, remote, expect_math=False))


# --------------------------------------------------------------------------- the whole site


MATH_PAGES = {"index.html", "gaussian.html", "kde.html", "compare.html", "findings.html", "workflows.html"}
FIGURE_PAGES = {"gaussian.html", "kde.html", "findings.html"}
#: The gallery's examples (docs/gallery_src/plot_*.py): each page must show figures.
GALLERY_PAGES = {f"auto_gallery/{p.stem}.html" for p in (DOCS / "gallery_src").glob("plot_*.py")}


def site_pages(html_dir: Path) -> list[Path]:
    """Every page of the site except the highlighted source listings (``_modules``)."""
    return sorted(p for p in html_dir.rglob("*.html")
                  if not p.relative_to(html_dir).parts[0].startswith("_"))


def _newest_source() -> float:
    paths = [p for folder in ("analysis", "simulate", "lm") for p in (ROOT / folder).rglob("*.py")]
    paths += [p for p in DOCS.rglob("*") if p.is_file() and not any(
        part in ("_build", "_generated", "auto_gallery", "__pycache__") for part in p.relative_to(DOCS).parts)]
    return max(p.stat().st_mtime for p in paths)


def check_site(html_dir: Path, browser: Chromium) -> None:
    assert external_references(html_dir) == []
    pages = site_pages(html_dir)
    names = {p.relative_to(html_dir).as_posix() for p in pages}
    assert MATH_PAGES | FIGURE_PAGES | GALLERY_PAGES | {"auto_gallery/index.html"} | {
        "api/analysis.html", "api/simulate.html", "api/lm.html"} <= names
    reports = check_pages(browser, pages, expect_math=MATH_PAGES, root=html_dir)
    figure_pages = set(FIGURE_PAGES) | GALLERY_PAGES
    if any((DOCS / "results" / "lm").glob("*.png")):
        figure_pages.add("lm.html")  # the checked-in LM curves
    for name in figure_pages:
        assert reports[name]["images"], f"{name} shows no figure"


def test_built_site_in_browser(browser):
    stamp = BUILT / STAMP
    if not stamp.is_file() or stamp.stat().st_mtime < _newest_source():
        pytest.skip("docs/_build/html is missing or older than its sources: run `make docs` "
                    "first (the slow test_full_build_in_browser builds it itself)")
    check_site(BUILT, browser)


@pytest.mark.slow
def test_full_build_in_browser(tmp_path, browser):
    out = tmp_path / "html"
    _build(DOCS, out, "-d", str(tmp_path / "doctrees"))
    check_site(out, browser)


# --------------------------------------------------------------------------- the built pages' text


def _built_or_skip() -> None:
    stamp = BUILT / STAMP
    if not stamp.is_file() or stamp.stat().st_mtime < _newest_source():
        pytest.skip("docs/_build/html is missing or older than its sources: run `make docs`")


def _page_text(page: Path) -> str:
    """The visible text of a built page: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_cli_page_shows_options_with_two_hyphens():
    _built_or_skip()
    text = _page_text(BUILT / "cli.html")
    for option in ("--seed", "--workflow", "--replicates", "--iterations"):
        assert option in text, option
    # smart quotes would print an en dash (or an em dash) in place of the two hyphens
    assert not re.search("[\u2013\u2014](seed|workflow|replicates|iterations)\\b", text)


#: Panels of the Gaussian figures that must rest on at least 90% tested rows (the issue's
#: standard); on the KDE figures every panel with exact theory must.
GAUSSIAN_REQUIRED = {"mean_sq_error", "log_cov_det_ratio", "log_cov_det_ratio_quantiles"}
GALLERY_MANIFESTS = DOCS / "_generated" / "gallery"
#: Examples of settings without exact theory (the language models): no theory rows to
#: count; each must print the tests it does make instead (the phrase given).
NO_THEORY_EXAMPLES = {"plot_06_lm_curves": "Welch p"}
GALLERY_CACHE = DOCS / "_generated" / "cache"


def _row_counts(result, panel: str) -> tuple[int, int, dict[str, int]]:
    """(tested, total, set aside by reason) of ``panel``'s rows with theory, counted here
    from the stored result, independently of the docs extension's own counting."""
    tested, total, aside = 0, 0, {}
    for row, status in zip(result.statistics.table.rows, result.statistics.status):
        metric = row[3]
        if panel.endswith("_quantiles"):
            inside = re.fullmatch(re.escape(panel[: -len("_quantiles")]) + r"_q\d+", metric)
        else:
            inside = metric == panel
        if status == "no-theory" or not inside:
            continue
        total += 1
        if status == "tested":
            tested += 1
        else:
            aside[status] = aside.get(status, 0) + 1
    return tested, total, aside


def test_gallery_pages_state_rows_tested_and_set_aside():
    """Each gallery page prints, per figure and panel, the rows tested and set aside, and
    the numbers agree with the stored results the figure was drawn from; the KDE figures
    and the Gaussian mean-error and log-det panels rest on at least 90% tested rows."""
    import pickle

    _built_or_skip()
    assert GALLERY_PAGES, "no gallery examples found"
    required_seen = 0
    for name in sorted(GALLERY_PAGES):
        stem = Path(name).stem
        text = re.sub(r"[ \t]+", " ", _page_text(BUILT / name))
        manifest = GALLERY_MANIFESTS / f"{stem}.json"
        if stem in NO_THEORY_EXAMPLES:
            assert not manifest.exists(), f"{stem} is listed as having no exact theory"
            assert NO_THEORY_EXAMPLES[stem] in text, f"{stem} does not state its tests"
            continue
        assert manifest.is_file(), f"{stem}: no manifest of its figures ({manifest})"
        figures = json.loads(manifest.read_text())
        assert figures, f"{stem} reports no figure"
        for figure in figures:
            tested_all, aside_all = 0, 0
            for label, file in figure["results"].items():
                assert file, f"{stem}, {label}: not a cached result"
                with (GALLERY_CACHE / file).open("rb") as handle:
                    result = pickle.load(handle)
                statuses = list(result.statistics.status)
                tested_all += sum(s == "tested" for s in statuses)
                aside_all += sum(s not in ("tested", "no-theory") for s in statuses)
                for panel in figure["panels"]:
                    tested, total, aside = _row_counts(result, panel)
                    if not total:
                        continue
                    line = f"{panel} {label} {tested} of {total} rows tested"
                    assert line in text, f"{stem}: the page does not state {line!r}"
                    for reason, count in aside.items():
                        assert f"{count} {reason}" in text, (stem, label, panel, reason)
                    required = ("kde" in stem) or (panel in GAUSSIAN_REQUIRED)
                    if required:
                        required_seen += 1
                        assert tested >= 0.9 * total, (
                            f"{stem}: {panel} at {label} rests on {tested} of {total} "
                            "tested rows, below 90%")
            verdict = f"{tested_all} rows tested, {aside_all} set aside"
            assert verdict in text, f"{stem}: the page does not state {verdict!r}"
    kde = [n for n in GALLERY_PAGES if "kde" in n]
    assert kde and required_seen, "no KDE figure or required panel was checked"
