"""Derive where mediapipe's 478 FaceMesh landmarks sit on MakeHuman's base mesh.

Run once, offline (``python tools/derive_face_landmarks.py``); the result is the
committed table ``generation/data/mh_face_landmarks.npz``:

* ``tri``  (478,) int32  -- index into ``load_template().body_tris``;
* ``bary`` (478,3) float32 -- barycentric coordinates on that triangle.

A landmark's position on any shape of the body is then
``(bary[:, :, None] * pos[body_tris[tri]]).sum(1)`` (see
:mod:`generation.avatar.face_fit`).

How: the neutral head (``template.base`` + the full-resolution body triangles) is
rendered orthographically from the front (camera on the +Z side looking along -Z)
with a small numpy z-buffer rasteriser -- Lambert-shaded skin, plus the eyeball
helper geometry (white sclera, dark iris) so the eyes read as eyes, and lips /
brows tinted from their position on the face.  mediapipe FaceMesh
(``static_image_mode=True, refine_landmarks=True``) is run on renders at a few
small yaw angles; each landmark pixel is cast through that render's *body-only*
z-buffer to the front-most body triangle and its barycentric point, giving one 3D
surface point per landmark per view.  The views are combined by taking, per
landmark, the mesh point closest to the median of the views' 3D points.  Renders
and an overlay are written to ``/tmp/mh_face_*.png`` for inspection (not committed).

Deterministic: same inputs, same table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from generation.avatar import assets as A  # noqa: E402
from generation.avatar.template import _closest_bary, load_template  # noqa: E402
from meshes.normals import smooth_normals  # noqa: E402

OUT = ROOT / "generation" / "data" / "mh_face_landmarks.npz"
SIZE = 640                      # render side, pixels
CENTRE = np.array([0.0, 7.45])  # MakeHuman (x, y) at the image centre (decimetres)
HALF = 1.45                     # half the rendered side, decimetres
YAWS = (-8.0, 0.0, 8.0)         # degrees; rotation about +Y of the head before rendering
SKIN = np.array([224, 178, 150], np.float64)
LIGHT = np.array([0.25, 0.35, 1.0]) / np.linalg.norm([0.25, 0.35, 1.0])


def _yaw(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _to_pixels(p: np.ndarray) -> np.ndarray:
    """MakeHuman points (already rotated) → (col, row, depth toward camera)."""
    s = SIZE / (2 * HALF)
    return np.stack([(p[:, 0] - CENTRE[0]) * s + SIZE / 2, (CENTRE[1] - p[:, 1]) * s + SIZE / 2, p[:, 2]], 1)


def rasterise(pix: np.ndarray, tris: np.ndarray):
    """Z-buffer: per pixel the front-most (largest z) triangle id and its barycentrics.

    Returns ``tid`` (H,W) int (-1 = empty), ``bary`` (H,W,3), ``depth`` (H,W)."""
    tid = np.full((SIZE, SIZE), -1, np.int64)
    depth = np.full((SIZE, SIZE), -np.inf)
    bary = np.zeros((SIZE, SIZE, 3))
    a, b, c = pix[tris[:, 0]], pix[tris[:, 1]], pix[tris[:, 2]]
    lo = np.floor(np.minimum(np.minimum(a, b), c)[:, :2]).astype(int)
    hi = np.ceil(np.maximum(np.maximum(a, b), c)[:, :2]).astype(int)
    keep = np.flatnonzero((hi[:, 0] >= 0) & (hi[:, 1] >= 0) & (lo[:, 0] < SIZE) & (lo[:, 1] < SIZE))
    for i in keep:
        x0, y0 = np.maximum(lo[i], 0)
        x1, y1 = np.minimum(hi[i], SIZE - 1)
        if x1 < x0 or y1 < y0:
            continue
        xs, ys = np.meshgrid(np.arange(x0, x1 + 1) + 0.5, np.arange(y0, y1 + 1) + 0.5)
        A_, B_, C_ = a[i], b[i], c[i]
        den = (B_[1] - C_[1]) * (A_[0] - C_[0]) + (C_[0] - B_[0]) * (A_[1] - C_[1])
        if abs(den) < 1e-12:
            continue
        l0 = ((B_[1] - C_[1]) * (xs - C_[0]) + (C_[0] - B_[0]) * (ys - C_[1])) / den
        l1 = ((C_[1] - A_[1]) * (xs - C_[0]) + (A_[0] - C_[0]) * (ys - C_[1])) / den
        l2 = 1 - l0 - l1
        inside = (l0 >= -1e-6) & (l1 >= -1e-6) & (l2 >= -1e-6)
        z = l0 * A_[2] + l1 * B_[2] + l2 * C_[2]
        sub = depth[y0:y1 + 1, x0:x1 + 1]
        win = inside & (z > sub)
        if not win.any():
            continue
        sub[win] = z[win]
        tid[y0:y1 + 1, x0:x1 + 1][win] = i
        bary[y0:y1 + 1, x0:x1 + 1][win] = np.stack([l0, l1, l2], -1)[win]
    return tid, bary, depth


def _skin_colour(p: np.ndarray) -> np.ndarray:
    """Albedo per (unrotated) MakeHuman point: skin, with darker lips and brows."""
    col = np.tile(SKIN, (len(p), 1))
    x, y, z = p[:, 0], p[:, 1], p[:, 2]
    lips = ((x / 0.24) ** 2 + ((y - 6.68) / 0.075) ** 2 < 1) & (z > 0.9)
    col[lips] = [170, 85, 80]
    brow = (np.abs(np.abs(x) - 0.33) < 0.2) & (np.abs(y - 7.53 + 0.08 * (np.abs(x) - 0.33) ** 2) < 0.035) & (z > 0.9)
    col[brow] = [95, 70, 55]
    return col


def render(yaw: float, base, body_tris, eye_tris, eye_groups):
    """One front render at ``yaw``: (rgb uint8, body tid, body bary)."""
    R = _yaw(yaw)
    pos = base @ R.T
    pix = _to_pixels(pos)
    # the head only (everything above the upper chest), to keep the loop short
    head = body_tris[(base[body_tris, 1].min(1) > 6.0)]
    head_ids = np.flatnonzero(base[body_tris, 1].min(1) > 6.0)
    tid_h, bary_b, depth_b = rasterise(pix, head)
    tid_b = np.where(tid_h >= 0, head_ids[np.maximum(tid_h, 0)], -1)
    tid_e, bary_e, depth_e = rasterise(pix, eye_tris)

    vn = smooth_normals(pos, body_tris)
    img = np.full((SIZE, SIZE, 3), 235.0)
    m = tid_b >= 0
    corners = body_tris[tid_b[m]]
    bc = bary_b[m]
    n = (bc[:, :, None] * vn[corners]).sum(1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    p0 = (bc[:, :, None] * base[corners]).sum(1)
    shade = 0.25 + 0.75 * np.clip(n @ LIGHT, 0, 1)
    img[m] = _skin_colour(p0) * shade[:, None]

    # eyeballs where they are in front of the skin: sclera, iris, pupil by distance
    # from the eye's forward axis
    e = (tid_e >= 0) & (depth_e > depth_b)
    corners = eye_tris[tid_e[e]]
    pe = (bary_e[e][:, :, None] * base[corners]).sum(1)
    col = np.tile([240.0, 240.0, 235.0], (len(pe), 1))
    for grp, c in eye_groups:
        near = np.linalg.norm(pe - c, axis=1) < 0.6
        r = np.hypot(pe[:, 0] - c[0], pe[:, 1] - c[1])
        col[near & (r < 0.11)] = [90, 60, 40]
        col[near & (r < 0.05)] = [15, 10, 10]
    img[e] = col
    return np.clip(img, 0, 255).astype(np.uint8), tid_b, bary_b


def facemesh(rgb: np.ndarray) -> np.ndarray | None:
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1, refine_landmarks=True,
                                         min_detection_confidence=0.3) as fm:
        res = fm.process(rgb)
    if not res.multi_face_landmarks:
        return None
    return np.array([(p.x, p.y, p.z) for p in res.multi_face_landmarks[0].landmark]) * SIZE


def main() -> None:
    t = load_template()
    base, body_tris = t.base, t.body_tris
    root = A.asset_root()
    obj = A.read_obj(root / "mpfb2" / "3dobjs" / "base.obj")
    eq = obj.faces[np.isin(obj.groups, ["helper-l-eye", "helper-r-eye"])]
    eye_tris = np.concatenate([eq[:, [0, 1, 2]], eq[:, [0, 2, 3]]])
    groups = A.vertex_groups(root)
    eye_groups = []
    for g in ("helper-l-eye", "helper-r-eye"):
        v = base[groups[g]]
        eye_groups.append((g, np.array([v[:, 0].mean(), v[:, 1].mean(), v[:, 2].max()])))

    points = []  # per view: (478,3) mesh points (unrotated MakeHuman coordinates)
    for yaw in YAWS:
        rgb, tid, bary = render(yaw, base, body_tris, eye_tris, eye_groups)
        cv2.imwrite(f"/tmp/mh_face_yaw{yaw:+.0f}.png", rgb[:, :, ::-1])
        lm = facemesh(rgb)
        if lm is None:
            print(f"yaw {yaw:+.0f}: mediapipe found no face")
            continue
        print(f"yaw {yaw:+.0f}: mediapipe found {len(lm)} landmarks")
        col = np.clip(np.floor(lm[:, 0]).astype(int), 0, SIZE - 1)
        row = np.clip(np.floor(lm[:, 1]).astype(int), 0, SIZE - 1)
        ti = tid[row, col]
        miss = ti < 0
        if miss.any():  # off the body silhouette: nearest covered pixel
            ys, xs = np.nonzero(tid >= 0)
            for k in np.flatnonzero(miss):
                j = np.argmin((xs - col[k]) ** 2 + (ys - row[k]) ** 2)
                row[k], col[k] = ys[j], xs[j]
            ti = tid[row, col]
            print(f"  {miss.sum()} landmarks off the mesh, snapped to the nearest covered pixel")
        p = (bary[row, col][:, :, None] * base[body_tris[ti]]).sum(1)
        # sanity: mediapipe's relative depth vs the mesh depth (both toward camera)
        zr = (_yaw(yaw) @ p.T).T[:, 2]
        zm = -lm[:, 2]
        print(f"  depth correlation mesh vs mediapipe z: {np.corrcoef(zr, zm)[0, 1]:.3f}")
        points.append(p)
        over = rgb[:, :, ::-1].copy()
        for k, (x, y) in enumerate(lm[:, :2]):
            cv2.circle(over, (int(round(x)), int(round(y))), 1, (0, 0, 255) if k < 468 else (255, 0, 0), -1)
        cv2.imwrite(f"/tmp/mh_face_yaw{yaw:+.0f}_landmarks.png", over)
    if not points:
        raise SystemExit("mediapipe found no face on any render")

    P = np.stack(points)
    target = np.median(P, axis=0)
    spread = np.linalg.norm(P - target, axis=2).max(0)
    print(f"views: {len(points)}; per-landmark view spread: median {np.median(spread):.4f} dm, "
          f"max {spread.max():.4f} dm")
    # snap the combined point onto the nearest face triangle (the head region)
    head_ids = np.flatnonzero(base[body_tris, 1].min(1) > 6.0)
    a, b, c = (base[body_tris[head_ids, k]] for k in range(3))
    best = np.full(len(target), np.inf)
    tri = np.zeros(len(target), np.int64)
    bary = np.zeros((len(target), 3))
    for j in range(0, len(head_ids), 2048):  # chunks: points × triangles
        s = slice(j, j + 2048)
        q = np.repeat(target, len(head_ids[s]), 0)
        bc, d = _closest_bary(q, np.tile(a[s], (len(target), 1)), np.tile(b[s], (len(target), 1)),
                              np.tile(c[s], (len(target), 1)))
        d = d.reshape(len(target), -1)
        k = d.argmin(1)
        dk = d[np.arange(len(target)), k]
        upd = dk < best
        best[upd] = dk[upd]
        tri[upd] = head_ids[s][k[upd]]
        bary[upd] = bc.reshape(len(target), -1, 3)[np.arange(len(target)), k][upd]
    print(f"snap distance: max {best.max():.5f} dm")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, tri=tri.astype(np.int32), bary=bary.astype(np.float32))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
