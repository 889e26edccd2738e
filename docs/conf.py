"""Sphinx configuration of the dmfsharp documentation (built by scripts/build_docs.sh)."""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
os.environ.setdefault("MPLBACKEND", "Agg")

import dmfsharp  # noqa: E402

project = "dmfsharp"
author = "The dmfsharp developers"
copyright = "2025, the dmfsharp developers"
release = dmfsharp.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

# ---------------------------------------------------------------- API reference
# The reference lists dmfsharp.__all__, whatever it holds when the docs are built: the
# autosummary table is written here from the package itself, so a new public name appears
# without editing the docs.


def _summary(obj) -> str:
    """First paragraph of the docstring of a class or routine ('' for data)."""
    if not (inspect.isclass(obj) or inspect.isroutine(obj)):
        return ""
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


_names = [n for n in dmfsharp.__all__ if not n.startswith("_")]
_lines = [
    "API reference",
    "=============",
    "",
    "Everything in ``dmfsharp.__all__``, generated from the docstrings. This page is written by",
    "``docs/conf.py`` from the package itself at build time, so it follows ``__all__``.",
    "",
    ".. currentmodule:: dmfsharp",
    "",
    ".. list-table::",
    "   :widths: 28 72",
    "   :class: api-table",
    "",
]
for _n in _names:
    _lines += [f"   * - :obj:`{_n}`", f"     - {_summary(getattr(dmfsharp, _n))}"]
# One page per name, written here too (autosummary's own table truncates summaries at the
# first period, which breaks inline literals such as ``W_L ... W_1``).
(HERE / "generated").mkdir(exist_ok=True)
for _n in _names:
    _obj = getattr(dmfsharp, _n)
    if inspect.isclass(_obj):
        _body = f".. autoclass:: {_n}\n   :members:\n"
    elif inspect.isroutine(_obj):
        _body = f".. autofunction:: {_n}\n"
    else:
        _body = f".. autodata:: {_n}\n   :no-value:\n"
    _page = f"{_n}\n{'=' * len(_n)}\n\n.. currentmodule:: dmfsharp\n\n{_body}"
    _stub = HERE / "generated" / f"dmfsharp.{_n}.rst"
    if not _stub.exists() or _stub.read_text() != _page:
        _stub.write_text(_page)
_lines += ["", ".. toctree::", "   :hidden:", ""]
_lines += [f"   generated/dmfsharp.{_n}" for _n in _names]
_text = "\n".join(_lines) + "\n"
_target = HERE / "api.rst"  # git-ignored: generated
if not _target.exists() or _target.read_text() != _text:
    _target.write_text(_text)

autosummary_generate = False
autosummary_imported_members = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()  # enforced later (issue 12, item 2)

# ---------------------------------------------------------------- maths, offline
# MathJax 3 is installed from npm at build time by scripts/build_docs.sh into the
# git-ignored _build/mathjax folder and served from the site itself, so pages render
# without network access and nothing vendored is committed.
MATHJAX_DIR = HERE / "_build" / "mathjax"
html_static_path = [str(MATHJAX_DIR)] if MATHJAX_DIR.exists() else []
mathjax_path = "tex-svg.js"
mathjax3_config = {"options": {"enableMenu": False}}

# ---------------------------------------------------------------- gallery
sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",  # files are numbered in reading order
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "show_memory": False,
    "abort_on_example_error": True,
}

# ---------------------------------------------------------------- HTML
html_theme = "pydata_sphinx_theme"
html_title = "dmfsharp"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 7,
}
html_show_sourcelink = False
templates_path = ["_templates"]
exclude_patterns = ["_build", "examples/README.rst", "**.ipynb_checkpoints"]
intersphinx_mapping: dict[str, tuple[str, None]] = {}
nitpicky = False
suppress_warnings = ["config.cache"]
