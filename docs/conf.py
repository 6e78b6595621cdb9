"""Sphinx configuration of aiomcast's documentation.

Sphinx, because the API reference comes from the docstrings (autodoc) and links into Python's
and anyio's own references (intersphinx); the pages themselves are Markdown (MyST), readable
on GitHub as they are. The build is strict: ``python -m sphinx -W -n`` turns every warning,
a broken cross-reference among them, into an error.

The inventories are read from disk, so that the build needs no network: Python's from the
Debian package python3-doc (installed by .ci/run), anyio's from docs/_inventories/ (made from
anyio's own documentation sources, see docs/development.md).
"""

from __future__ import annotations

import glob
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import aiomcast

project = "aiomcast"
author = "the aiomcast developers"
copyright = "2026, " + author
release = version = aiomcast.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_inventories", "Thumbs.db", ".DS_Store"]

myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

autodoc_default_options = {"members": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_preserve_defaults = True

# The docstrings are Google style (Args:, Attributes:, Returns:).
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True

# Debian's python3-doc: /usr/share/doc/python3.<minor>/html/objects.inv.
PYTHON_INVENTORIES = sorted(glob.glob("/usr/share/doc/python3.*/html/objects.inv"))
intersphinx_mapping = {
    "python": (
        "https://docs.python.org/3",
        PYTHON_INVENTORIES[-1] if PYTHON_INVENTORIES else None,
    ),
    "anyio": ("https://anyio.readthedocs.io/en/stable", "_inventories/anyio.inv"),
}
intersphinx_timeout = 10

nitpicky = True
# The endpoints' constructors take the parts an opener assembles (users call the openers),
# and the generic signatures name their type variables: none of these has a page.
nitpick_ignore = [
    ("py:class", name)
    for name in ("Transport", "MulticastProtocol", "Driver", "MembershipTable", "E", "T")
] + [
    ("py:class", "aiomcast._run.T"),
    ("py:class", "aiomcast.anyio.E"),
    ("py:obj", "aiomcast.anyio.E"),
    ("py:obj", "aiomcast._open.E"),
]

html_theme = "furo"
html_title = f"aiomcast {release}"
