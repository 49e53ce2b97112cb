"""Sphinx configuration of the collapse-or-thrive documentation.

Build with ``make docs`` (warnings are errors).  Formulas, numbers and figures are
computed from the code while the pages are read (see ``_ext/collapse_docs``);
figures and command outputs are cached in ``docs/_generated/`` (git-ignored).
MathJax is served from the build itself, so the site needs no network.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "collapse-or-thrive"
author = "the collapse-or-thrive authors"
copyright = "2025, " + author
try:
    release = metadata.version("collapse-or-thrive")
except metadata.PackageNotFoundError:  # a source tree that was not pip-installed
    release = "0.1.0"
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinxarg.ext",
    "sphinx_copybutton",
    "collapse_docs",
]

exclude_patterns = ["_build", "_generated", "_ext", "results", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- HTML --------------------------------------------------------------------
html_theme = "furo"
html_title = "Collapse or thrive"
html_static_path = ["_static"]
html_css_files = ["collapse.css"]
html_show_sourcelink = False

# -- autodoc / napoleon ------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = True
napoleon_use_ivar = True

# -- copy buttons: copy commands without prompts or output --------------------
copybutton_exclude = ".linenos, .gp, .go"
