"""The read model is neutral ground: no module of it imports the web layer or Falcon.

verify and rebuild read through it, so a Falcon import there would drag the web (and its
Prometheus metrics) into every verify run, and an HTTP error raised there would leak the
web's vocabulary into layers below it. Checked on the source (``ast``), so an import
hidden in a function body counts too, and on what importing verify and rebuild loads.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import feedline.readmodel

PACKAGE = Path(feedline.readmodel.__file__).parent
FORBIDDEN = ("falcon", "feedline.http")


def imported_modules(source: str) -> set[str]:
    """Return every module an ``import`` or ``from ... import`` in ``source`` names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def forbidden(modules: set[str]) -> set[str]:
    return {m for m in modules for f in FORBIDDEN if m == f or m.startswith(f + ".")}


def test_the_check_sees_imports_anywhere_in_a_module():
    source = "import os\ndef f():\n    from feedline.http import pages\n    import falcon\n"
    assert forbidden(imported_modules(source)) == {"feedline.http", "feedline.http.pages", "falcon"}


def test_no_readmodel_module_imports_falcon_or_the_web_layer():
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 8  # the whole package is checked, not an empty glob
    offenders = {
        path.name: sorted(forbidden(imported_modules(path.read_text()))) for path in modules
    }
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_verify_and_rebuild_load_neither_falcon_nor_the_web():
    probe = (
        "import sys, feedline.verify, feedline.rebuild, feedline.readmodel.partitions\n"
        "print(sorted(m for m in sys.modules if m == 'falcon' or m.startswith(('falcon.',"
        " 'feedline.http'))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
