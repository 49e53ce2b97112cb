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
    "sphinx_gallery.gen_gallery",
    "collapse_docs",
]

exclude_patterns = ["_build", "_generated", "_ext", "results", "gallery_src", "Thumbs.db",
                    ".DS_Store"]

# Options such as ``--seed`` must reach the reader as two hyphens, never an en dash:
# docutils' "smart quotes" would turn ``--`` in running text (the argparse page's option
# lists) into "–", and a copied flag would then be invalid.
smartquotes = False
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

# -- the example gallery (sphinx-gallery) ------------------------------------
# Every example is executed at build time through the public API; its heavy calls go
# through collapse_docs.cache, keyed by the call and a hash of analysis/ and simulate/,
# so examples are re-run at every build (run_stale_examples) and a rebuild with
# unchanged code only replays cached results.  An example that fails stops the build.
# Nothing is fetched from the network: no binder, no JupyterLite, no intersphinx links.
sphinx_gallery_conf = {
    "examples_dirs": "gallery_src",
    "gallery_dirs": "auto_gallery",
    "filename_pattern": r"/plot_",
    "plot_gallery": "True",
    "run_stale_examples": True,
    "only_warn_on_example_error": False,
    "abort_on_example_error": True,
    "download_all_examples": False,
    "binder": {},
    "jupyterlite": {},
    "reference_url": {},
    "doc_module": (),
    "backreferences_dir": None,
    "show_signature": False,
    "show_memory": False,
    "capture_repr": (),
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "write_computation_times": False,
    "reset_modules": ("matplotlib",),
    "image_scrapers": ("matplotlib",),
    "thumbnail_size": (320, 224),
}
