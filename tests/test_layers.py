"""The import directions of the layers (ARCHITECTURE.md), read from the source with ``ast``.

``schemas`` imports nothing of ours; ``meshes`` only ``schemas``; ``generation`` only ``schemas`` and
``meshes``; ``client_sim`` (the SDK a studio ships) only ``schemas`` and ``meshes``, never the server;
in ``server`` only the composition root, ``server/cli.py``, may import ``client_sim``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("schemas", "meshes", "generation", "client_sim", "server")
ALLOWED = {
    "schemas": {"schemas"},
    "meshes": {"schemas", "meshes"},
    "generation": {"schemas", "meshes", "generation"},
    "client_sim": {"schemas", "meshes", "client_sim"},
    "server": {"schemas", "meshes", "generation", "server"},
}
#: Modules that may import more than their package: the composition root.
EXTRA = {"server/cli.py": {"client_sim"}}


def imported_packages(path: Path) -> set[str]:
    """Our top-level packages a module imports, anywhere in it (function-level imports too)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")[: -node.level]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
        else:
            continue
        found |= {n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES}
    return found


def violations() -> list[str]:
    out = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            bad = imported_packages(path) - ALLOWED[package] - EXTRA.get(rel, set())
            out += [f"{rel} imports {p}" for p in sorted(bad)]
    return out


def test_the_checker_sees_imports_of_every_kind(tmp_path, monkeypatch):
    (tmp_path / "client_sim").mkdir()
    probe = tmp_path / "client_sim" / "probe.py"
    probe.write_text("import server.config\nfrom ..generation import face\nfrom . import sdk\n\n"
                     "def f():\n    from meshes import Avatar\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imported_packages(probe) == {"server", "generation", "client_sim", "meshes"}


@pytest.mark.parametrize("package", PACKAGES)
def test_layers_import_only_downwards(package):
    assert [v for v in violations() if v.startswith(package + "/")] == []
