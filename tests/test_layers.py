"""The import directions of the layers (ARCHITECTURE.md), read from the source with ``ast``.

``schemas`` imports nothing of ours; ``meshes`` only ``schemas``; ``generation`` only ``schemas`` and
``meshes``; ``client_sim`` (the SDK a studio ships) only ``schemas`` and ``meshes``, never the server;
in ``server`` only the composition root, ``server/cli.py``, may import ``client_sim``.

Inside ``server``: ``core`` (sans-I/O) imports only ``schemas`` and itself, and no I/O, event loop or
clock; ``services`` build on ``core``, ``ports`` and the store's tables (``db``), never on ``web`` or an
adapter; ``web`` is the aiohttp shell over ``services``; adapters are wired in only by the composition
roots (``web/app.py``, ``worker.py``, ``cli.py``).
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


# -- inside the server ------------------------------------------------------------------------

#: What each layer of ``server`` may import: modules of ours (by prefix) and third-party/stdlib.
SERVER_LAYERS = {
    "server.core": {"ours": {"schemas", "server.core"},
                    "banned": {"aiohttp", "sqlalchemy", "asyncio", "time", "datetime", "socket",
                               "redis", "asyncpg", "procrastinate", "threading", "multiprocessing"}},
    # server.metrics and server.logs are cross-cutting, like server.config: instruments and log context.
    "server.services": {"ours": {"schemas", "meshes", "generation", "server.core", "server.ports",
                                 "server.db", "server.config", "server.metrics", "server.services"},
                        "banned": {"aiohttp", "redis", "asyncpg", "procrastinate", "multiprocessing"}},
    "server.web": {"ours": {"schemas", "server.core", "server.ports", "server.db", "server.config",
                            "server.metrics", "server.logs", "server.services", "server.web"},
                   "banned": {"redis", "asyncpg", "procrastinate", "multiprocessing"}},
    "server.ports": {"ours": {"schemas", "server.core"}, "banned": {"aiohttp", "redis", "asyncpg"}},
}
#: The composition roots: the only modules that pick adapters.
ROOTS = {"server/web/app.py", "server/worker.py", "server/cli.py"}


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, absolute (``from a.b import c`` gives ``a.b.c`` when that is a module)."""
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(module.split(".")[: -node.level] + ([node.module] if node.module else [])) \
                if node.level else node.module or ""
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                is_module = (ROOT / sub.replace(".", "/")).with_suffix(".py").exists() or \
                    (ROOT / sub.replace(".", "/")).is_dir()
                found.add(sub if is_module else base)
    return found


def server_violations() -> list[str]:
    out = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        mods = imported_modules(path)
        if rel not in ROOTS:
            out += [f"{rel} imports {m}" for m in sorted(mods) if m.startswith("server.adapters")
                    and not module.startswith("server.adapters")]
        layer = next((k for k in SERVER_LAYERS if module == k or module.startswith(k + ".")), None)
        if layer is None or rel in ROOTS:
            continue
        rules = SERVER_LAYERS[layer]
        for m in sorted(mods):
            top = m.split(".")[0]
            if top in PACKAGES:
                if not any(m == ok or m.startswith(ok + ".") or ok.startswith(m + ".") for ok in rules["ours"]):
                    out.append(f"{rel} imports {m}")
            elif top in rules["banned"]:
                out.append(f"{rel} imports {m}")
    return sorted(set(out))


def test_the_server_checker_sees_a_service_reaching_for_the_web_and_an_adapter(tmp_path, monkeypatch):
    (tmp_path / "server" / "services").mkdir(parents=True)
    (tmp_path / "server" / "core").mkdir()
    (tmp_path / "server" / "services" / "probe.py").write_text(
        "from ..web.keys import SERVICE\nfrom server.adapters.blobs import FolderBlobStore\n"
        "from ..core import queue\nimport aiohttp\n")
    (tmp_path / "server" / "core" / "probe.py").write_text("import asyncio\nfrom time import time\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert server_violations() == [
        "server/core/probe.py imports asyncio", "server/core/probe.py imports time",
        "server/services/probe.py imports aiohttp",
        "server/services/probe.py imports server.adapters.blobs",
        "server/services/probe.py imports server.web.keys",
    ]


def test_server_layers_import_only_downwards():
    assert server_violations() == []
