"""Sphinx configuration of the imgio documentation.

Build:    sphinx-build -W -b html docs docs/_build/html
Doctests: sphinx-build -W -b doctest docs docs/_build/doctest
(``tests/test_docs.py`` runs both.)
"""
from __future__ import annotations

import os
import sys

# the docs document the imgio that is imported: the installed one, or this checkout
sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..")))

import imgio  # noqa: E402

project = "imgio"
author = "the imgio developers"
copyright = "the imgio developers"
release = imgio.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
    "sphinx.ext.intersphinx",
    "numpydoc",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "examples"]

# MyST: ```{doctest} blocks, and heading anchors for in-page links
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

# autodoc + numpydoc
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
numpydoc_show_class_members = False  # members come from autodoc, not a numpydoc table
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
# no numpydoc docstring validation here: the API reference must build from every
# module's docstrings as they are; style checks belong in a linter
numpydoc_validation_checks: set[str] = set()

# intersphinx is loaded for :py: roles but fetches nothing (builds run offline)
intersphinx_mapping: dict = {}

# every doctest runs in a fresh temporary folder, so examples may write files by name
doctest_global_setup = """
import os as _os, tempfile as _tempfile
_imgio_doc_cwd = _os.getcwd()
_imgio_doc_tmp = _tempfile.TemporaryDirectory(prefix="imgio-doctest-")
_os.chdir(_imgio_doc_tmp.name)
import numpy as np
import importlib.util as _ilu
_imgio_docs_examples = %r
_imgio_no_lazy = _ilu.find_spec("imgio.lazy") is None
""" % os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples")
doctest_global_cleanup = """
_os.chdir(_imgio_doc_cwd)
_imgio_doc_tmp.cleanup()
"""
# doctest blocks in docstrings pulled in by autodoc are tested too
doctest_test_doctest_blocks = "default"

html_theme = "alabaster"
html_title = f"imgio {release}"
html_static_path: list[str] = []
