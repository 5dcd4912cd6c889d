"""3D avatar build: per-stage median / p95 and glb size, against trimesh's glb export.

Input: the 512² preview of skimage's astronaut made once by ``make_preview`` (with its
landmarks, skin and hair colours), as the server hands it to the builder.

Stages.  ``build_avatar`` is one function; its steps are module-level helpers of
:mod:`generation.avatar_builder`, so the bench wraps those names with timers for the
duration of the run and calls the real ``build_avatar`` (no copy of its logic):

==========  =============================================================
template    ``load_template`` (the cached R15 cut of MakeHuman's body)
face fit    ``fit_face`` (similarity + ridge least squares over face targets)
body        ``body_weights``, ``body_offset``, ``assemble`` (15 parts, normals, skin)
face bake   ``person_mask``, ``bake_head`` (photo into the head UVs, blend)
hair        ``observe_hair``, ``choose_style``, ``build_hair``
textures    ``paint_body``, ``EditableImage.from_array``
meshes      ``EditableMesh.from_arrays`` (15 parts and the hair)
rig         ``fit_joints_to_regions``, ``rig_attachments``
scales      ``apply_body_scales``, ``fit_within_bounds``
other       the rest of ``build_avatar`` (decode, checks, description)
export      ``meshes.export_glb``
==========  =============================================================

A helper that is missing (the builder changed) is listed as such and its time lands in
"other".  The baseline, measured in the same run on the same avatar: trimesh (no rig,
no skin, no morphs, no attachments) building a Scene of the 15 parts' positions,
triangles, UVs and PNG textures and exporting it as glb.

    python bench/avatar.py [--runs 20]

Needs trimesh for the baseline (in the ``test`` extra; not a runtime dependency).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time

import numpy as np
from PIL import Image
from skimage import data as skdata

import generation.avatar_builder as ab
from generation.preview import make_preview, warm_up
from meshes import export_glb
from meshes.editable_image import EditableImage
from meshes.editable_mesh import EditableMesh
from meshes.gltf import model_to_gltf

STAGES = {
    "template": ["load_template"],
    "face fit": ["fit_face"],
    "body": ["body_weights", "body_offset", "assemble"],
    "face bake": ["person_mask", "bake_head"],
    "hair": ["observe_hair", "choose_style", "build_hair"],
    "textures": ["paint_body"],
    "rig": ["fit_joints_to_regions", "rig_attachments"],
    "scales": ["apply_body_scales", "fit_within_bounds"],
}
GOAL_MS, GOAL_BYTES = 1000.0, 3 * 1024 * 1024


@contextlib.contextmanager
def stage_timers(acc: dict[str, float]):
    """Wrap the builder's helpers with timers adding milliseconds into ``acc``."""
    patched: list[tuple[object, str, object]] = []
    missing: list[str] = []
    depth = [0]  # count only the outermost timed call (helpers may call each other)

    def wrap(fn, stage):
        def timed(*a, **k):
            depth[0] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                depth[0] -= 1
                if depth[0] == 0:
                    acc[stage] = acc.get(stage, 0.0) + (time.perf_counter() - t0) * 1000
        return timed

    names = {n: s for s, ns in STAGES.items() for n in ns}
    for n, stage in names.items():
        fn = getattr(ab, n, None)
        if fn is None:
            missing.append(n)
            continue
        patched.append((ab, n, fn))
        setattr(ab, n, wrap(fn, stage))
    for cls, meth, stage in ((EditableMesh, "from_arrays", "meshes"), (EditableImage, "from_array", "textures")):
        raw = cls.__dict__[meth]
        patched.append((cls, meth, raw))
        setattr(cls, meth, classmethod(wrap(raw.__func__, stage)))
    try:
        yield missing
    finally:
        for owner, n, fn in reversed(patched):
            setattr(owner, n, fn)


def trimesh_glb(avatar) -> bytes:
    """Baseline: the same parts (positions in glTF meters, triangles, UVs, texture) as
    plain textured meshes, exported by trimesh."""
    import trimesh
    from trimesh.visual.material import PBRMaterial
    from trimesh.visual.texture import TextureVisuals

    scene = trimesh.Scene()
    for name, mesh in avatar.parts.items():
        uv = np.asarray(mesh.uvs, np.float64).copy()
        uv[:, 1] = 1.0 - uv[:, 1]  # trimesh keeps UVs bottom-left and flips them for glTF
        img = avatar.images.get(name)
        pil = Image.fromarray(img.pixels[..., :3] if (img.pixels[..., 3] == 255).all() else img.pixels) if img else None
        visual = TextureVisuals(uv=uv, material=PBRMaterial(baseColorTexture=pil, metallicFactor=0.0,
                                                            roughnessFactor=0.85))
        tm = trimesh.Trimesh(vertices=model_to_gltf(mesh.positions), faces=np.asarray(mesh.triangles),
                             visual=visual, process=False)
        scene.add_geometry(tm, node_name=f"{name}_Geo", geom_name=f"{name}_Geo")
    return scene.export(file_type="glb")


def stats(v: list[float]) -> tuple[float, float]:
    return statistics.median(v), float(np.percentile(v, 95))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    try:
        import trimesh  # noqa: F401
    except ImportError:
        raise SystemExit("the baseline needs trimesh: .venv/bin/pip install trimesh") from None

    warm_up()
    buf = io.BytesIO()
    Image.fromarray(skdata.astronaut()).save(buf, "JPEG", quality=92)
    prev = make_preview(buf.getvalue(), size=512)
    kwargs = dict(landmarks=prev.landmarks, skin_rgb=prev.skin_rgb, hair_rgb=prev.hair_rgb,
                  text_prompt="red shirt, blue jeans, white sneakers")

    def build():
        return ab.build_avatar(prev.png, **kwargs)

    export_glb(build())  # warm caches / imports
    trimesh_glb(build())

    per_stage: dict[str, list[float]] = {}
    builds, exports, totals, base = [], [], [], []
    missing: list[str] = []
    glb = b""
    base_glb = b""
    for _ in range(args.runs):
        acc: dict[str, float] = {}
        with stage_timers(acc) as missing:
            t0 = time.perf_counter()
            avatar = ab.build_avatar(prev.png, **kwargs)
            t1 = time.perf_counter()
        glb = export_glb(avatar)
        t2 = time.perf_counter()
        build_ms, export_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
        builds.append(build_ms)
        exports.append(export_ms)
        totals.append(build_ms + export_ms)
        acc["other"] = build_ms - sum(acc.values())
        acc["export"] = export_ms
        for k, v in acc.items():
            per_stage.setdefault(k, []).append(v)

        t3 = time.perf_counter()
        base_glb = trimesh_glb(avatar)
        base.append((time.perf_counter() - t3) * 1000)

    tris = sum(m.triangle_count for m in avatar.parts.values())
    verts = sum(m.vertex_count for m in avatar.parts.values())
    print(f"avatar: {len(avatar.parts)} parts, {verts} vertices, {tris} triangles, {len(avatar.bones)} bones, "
          f"{args.runs} runs (build_avatar timed through wrappers on its helpers)")
    if missing:
        print(f"  builder helpers not found (time counted in 'other'): {', '.join(missing)}")
    print(f"{'stage':<10} {'median ms':>10} {'p95 ms':>9}")
    order = [*STAGES, "meshes", "other", "export"]
    for k in order + sorted(set(per_stage) - set(order)):
        if k in per_stage:
            med, p95 = stats(per_stage[k])
            print(f"{k:<10} {med:>10.1f} {p95:>9.1f}")
    bmed, _ = stats(builds)
    emed, _ = stats(exports)
    tmed, tp95 = stats(totals)
    basemed, basep95 = stats(base)
    print(f"{'build':<10} {bmed:>10.1f}")
    print(f"{'TOTAL':<10} {tmed:>10.1f} {tp95:>9.1f}   build_avatar + export_glb (goal ≤ {GOAL_MS:.0f} ms: "
          f"{'met' if tmed <= GOAL_MS else 'NOT met'})")
    print(f"baseline trimesh glb export (same meshes+textures, no rig): {basemed:.1f} ms median, {basep95:.1f} p95")
    print(f"export_glb / trimesh export time: {emed / basemed:.2f}x;  whole bundle / trimesh export: "
          f"{tmed / basemed:.2f}x")
    print("  (trimesh writes no normals, joints, weights, morphs or attachments, and compresses PNGs harder;"
          " export_glb uses PNG level 1)")
    print(f"glb size: ours {len(glb):,} B ({len(glb) / 1024 / 1024:.2f} MiB; goal ≤ 3 MiB: "
          f"{'met' if len(glb) <= GOAL_BYTES else 'NOT met'}), trimesh {len(base_glb):,} B, "
          f"ratio {len(glb) / len(base_glb):.2f}")


if __name__ == "__main__":
    main()
