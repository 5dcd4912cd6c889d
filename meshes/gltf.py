"""Binary glTF 2.0 export of an :class:`Avatar` (pygltflib), and a small reader.

Layout of the exported file:

* units meters (1 stud = 0.28 m); +Y up; the avatar faces **+Z** as glTF expects
  (model space is rotated 180° about Y: (x, y, z) → (−x, y, −z); a rotation, so
  winding and handedness are kept and the avatar's left side is +X);
* one skin ``"R15"`` whose joints are the 17 bones of :data:`meshes.r15.BONE_NAMES`
  (Root first; rest pose translations only; inverse bind matrices = translate(−p));
* one node per MeshPart (``"<Part>_Geo"``, a scene root without transform, as the
  spec wants for skinned meshes) with one mesh / one primitive carrying POSITION
  (with min/max), NORMAL (unit), TEXCOORD_0, JOINTS_0 (uint8 / uint16), WEIGHTS_0
  (float, rows sum to 1) and uint16/uint32 indices; vertices are split at UV / normal
  seams (:meth:`EditableMesh.export_arrays`);
* morph targets (the Head's FACS expressions): POSITION deltas as the primitive's
  ``targets`` (with min/max), ``mesh.weights`` all zero and the names in
  ``mesh.extras.targetNames`` (three.js' ``morphTargetDictionary``);
* one PBR material and embedded PNG texture per part (baseColorTexture): the part's
  surface, its texture over the description's colours (:mod:`meshes.surface`);
* non-rig attachments as ``"<Name>_Att"`` child nodes of their part's bone;
* the HumanoidDescription in ``scenes[0].extras``.

Every bufferView starts 4-byte aligned; vertex data bufferViews have target
ARRAY_BUFFER, indices ELEMENT_ARRAY_BUFFER, IBMs and images none.
"""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pygltflib as g
from PIL import Image as PILImage

from .avatar import Avatar
from .editable_mesh import normalize_weights
from .r15 import BONE_INDEX, BONE_NAMES, PART_NAMES, RIG_ATTACHMENTS, STUD_IN_METERS
from .surface import surface

__all__ = ["export_glb", "load_glb", "read_accessor", "read_image", "model_to_gltf"]

_FLIP = np.array([-1.0, 1.0, -1.0])

_COMPONENT = {
    np.dtype(np.float32): g.FLOAT,
    np.dtype(np.uint8): g.UNSIGNED_BYTE,
    np.dtype(np.uint16): g.UNSIGNED_SHORT,
    np.dtype(np.uint32): g.UNSIGNED_INT,
}
_TYPE = {1: g.SCALAR, 2: g.VEC2, 3: g.VEC3, 4: g.VEC4, 16: g.MAT4}


def model_to_gltf(p: np.ndarray) -> np.ndarray:
    """Model-space studs (…,3) → glTF meters (…,3) float64."""
    return np.asarray(p, np.float64) * _FLIP * STUD_IN_METERS


class _Builder:
    """Accumulates bufferViews/accessors into one 4-byte-aligned binary blob."""

    def __init__(self, gltf: g.GLTF2):
        self.gltf = gltf
        self.blob = bytearray()

    def view(self, data: bytes, target: int | None = None) -> int:
        pad = -len(self.blob) % 4
        self.blob += b"\0" * pad
        bv = g.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data))
        if target is not None:
            bv.target = target
        self.blob += data
        self.gltf.bufferViews.append(bv)
        return len(self.gltf.bufferViews) - 1

    def accessor(self, a: np.ndarray, target: int | None, *, minmax: bool = False, cols: int | None = None) -> int:
        a = np.ascontiguousarray(a)
        count = a.shape[0]
        ncomp = cols or (a.shape[1] if a.ndim > 1 else 1)
        bv = self.view(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes(), target)
        acc = g.Accessor(bufferView=bv, byteOffset=0, componentType=_COMPONENT[a.dtype], count=count,
                         type=_TYPE[ncomp])
        if minmax:
            flat = a.reshape(count, ncomp)
            acc.min = [float(x) for x in flat.min(axis=0)]
            acc.max = [float(x) for x in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def _euler_yxz_quat(deg: list[float]) -> list[float]:
    """Roblox CFrame.fromOrientation(rx, ry, rz) (Y·X·Z) as a glTF quaternion
    [x, y, z, w], conjugated by the 180° Y turn of the export."""
    rx, ry, rz = (math.radians(float(a)) / 2 for a in deg)

    def mul(a, b):
        aw, ax, ay, az = a
        bw, bx, by, bz = b
        return (aw * bw - ax * bx - ay * by - az * bz, aw * bx + ax * bw + ay * bz - az * by,
                aw * by - ax * bz + ay * bw + az * bx, aw * bz + ax * by - ay * bx + az * bw)

    q = mul(mul((math.cos(ry), 0, math.sin(ry), 0), (math.cos(rx), math.sin(rx), 0, 0)), (math.cos(rz), 0, 0, math.sin(rz)))
    w, x, y, z = q
    return [-x, y, -z, w]


def export_glb(avatar: Avatar, *, png_compress_level: int = 1) -> bytes:
    """The avatar as a binary glTF 2.0 file (see module docstring)."""
    gltf = g.GLTF2()
    gltf.asset = g.Asset(version="2.0", generator="avatar-creation-server meshes.gltf")
    b = _Builder(gltf)

    # ---- skeleton nodes
    bone_pos = {bb["Name"]: np.asarray(bb["Position"], np.float64) for bb in avatar.bones}
    parent = {bb["Name"]: bb["Parent"] for bb in avatar.bones}
    names = [n for n in BONE_NAMES if n in bone_pos] + [bb["Name"] for bb in avatar.bones if bb["Name"] not in BONE_INDEX]
    node_of: dict[str, int] = {}
    for name in names:
        p = bone_pos[name]
        par = parent.get(name)
        local = model_to_gltf(p - (bone_pos[par] if par in bone_pos else 0.0))
        node = g.Node(name=name)
        if np.any(local != 0):
            node.translation = [float(c) for c in local]
        gltf.nodes.append(node)
        node_of[name] = len(gltf.nodes) - 1
    roots = []
    for name in names:
        par = parent.get(name)
        if par in node_of:
            gltf.nodes[node_of[par]].children.append(node_of[name])
        else:
            roots.append(node_of[name])

    # ---- attachments (non-rig) as children of the part's bone
    for part in _part_order(avatar):
        if part not in node_of:
            continue
        for att_name, att in sorted(avatar.attachments.get(part, {}).items()):
            if att_name in RIG_ATTACHMENTS.get(part, ()) or att_name.endswith("RigAttachment"):
                continue
            local = model_to_gltf(np.asarray(att["Position"], np.float64) - bone_pos[part])
            node = g.Node(name=att_name.removesuffix("Attachment") + "_Att",
                          translation=[float(c) for c in local], extras={"Attachment": att_name, "Part": part})
            orient = att.get("Orientation", [0, 0, 0])
            if any(float(a) != 0 for a in orient):
                node.rotation = _euler_yxz_quat(orient)
            gltf.nodes.append(node)
            gltf.nodes[node_of[part]].children.append(len(gltf.nodes) - 1)

    # ---- skin
    joint_nodes = [node_of[n] for n in names]
    ibm = np.zeros((len(names), 16), np.float32)
    for i, n in enumerate(names):
        m = np.eye(4)
        m[:3, 3] = -model_to_gltf(bone_pos[n])
        ibm[i] = m.T.reshape(16)  # column-major
    ibm_acc = b.accessor(ibm, None, cols=16)
    gltf.skins.append(g.Skin(name="R15", joints=joint_nodes, inverseBindMatrices=ibm_acc,
                             skeleton=node_of.get("Root", joint_nodes[0])))
    joint_of_bone_index = {BONE_INDEX[n]: i for i, n in enumerate(names) if n in BONE_INDEX}

    # ---- sampler shared by all textures
    gltf.samplers.append(g.Sampler(magFilter=g.LINEAR, minFilter=g.LINEAR_MIPMAP_LINEAR,
                                   wrapS=g.CLAMP_TO_EDGE, wrapT=g.CLAMP_TO_EDGE))

    mesh_nodes = []
    for part in _part_order(avatar):
        mesh = avatar.parts[part]
        if mesh.vertex_count == 0 or mesh.triangle_count == 0:
            continue
        arrays = _mesh_arrays(mesh)
        pos = model_to_gltf(arrays["positions"]).astype(np.float32)
        nrm = (arrays["normals"].astype(np.float64) * _FLIP)
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
        nrm = nrm.astype(np.float32)
        uv = arrays["uvs"].astype(np.float32)
        joints, weights = _export_skin(arrays["joints"], arrays["weights"], part, joint_of_bone_index, len(names))
        tri = arrays["triangles"]
        idx = tri.reshape(-1).astype(np.uint16 if len(pos) < 65535 else np.uint32)

        attrs = g.Attributes(
            POSITION=b.accessor(pos, g.ARRAY_BUFFER, minmax=True),
            NORMAL=b.accessor(nrm, g.ARRAY_BUFFER),
            TEXCOORD_0=b.accessor(uv, g.ARRAY_BUFFER),
            JOINTS_0=b.accessor(joints, g.ARRAY_BUFFER),
            WEIGHTS_0=b.accessor(weights, g.ARRAY_BUFFER),
        )
        ind = b.accessor(idx, g.ELEMENT_ARRAY_BUFFER)
        material = _material(gltf, b, avatar, part, png_compress_level)
        prim = g.Primitive(attributes=attrs, indices=ind, material=material, mode=g.TRIANGLES)
        gmesh = g.Mesh(name=f"{part}_Geo", primitives=[prim])
        morphs = arrays["morphs"]
        if morphs:
            # morph targets: POSITION deltas (meters, glTF axes) with min/max; names in extras.targetNames
            prim.targets = [g.Attributes(POSITION=b.accessor((np.asarray(d, np.float64) * _FLIP * STUD_IN_METERS)
                                                             .astype(np.float32), g.ARRAY_BUFFER, minmax=True))
                            for d in morphs.values()]
            gmesh.weights = [0.0] * len(morphs)
            gmesh.extras = {"targetNames": list(morphs)}
        gltf.meshes.append(gmesh)
        gltf.nodes.append(g.Node(name=f"{part}_Geo", mesh=len(gltf.meshes) - 1, skin=0, extras={"Part": part}))
        mesh_nodes.append(len(gltf.nodes) - 1)

    scene_extras: dict = {"StudInMeters": STUD_IN_METERS}
    try:
        json.dumps(avatar.description, allow_nan=False)
        scene_extras["HumanoidDescription"] = avatar.description
    except (TypeError, ValueError):
        pass
    gltf.scenes.append(g.Scene(name="Avatar", nodes=roots + mesh_nodes, extras=scene_extras))
    gltf.scene = 0
    gltf.buffers.append(g.Buffer(byteLength=len(b.blob)))
    gltf.set_binary_blob(bytes(b.blob))
    return b"".join(gltf.save_to_bytes())


def _part_order(avatar: Avatar) -> list[str]:
    return [p for p in PART_NAMES if p in avatar.parts] + sorted(p for p in avatar.parts if p not in PART_NAMES)


def _mesh_arrays(mesh) -> dict:
    """Per-output-vertex arrays of a mesh: :meth:`EditableMesh.export_arrays` (split at
    UV / normal seams) when the mesh has it, else its per-vertex arrays."""
    if hasattr(mesh, "export_arrays"):
        a = mesh.export_arrays()
        return {"positions": a.positions, "normals": a.normals, "uvs": a.uvs, "joints": a.joints,
                "weights": a.weights, "triangles": a.triangles, "morphs": dict(a.morphs)}
    names = mesh.GetMorphTargetNames() if hasattr(mesh, "GetMorphTargetNames") else []
    return {"positions": mesh.positions, "normals": mesh.computed_normals(), "uvs": mesh.uvs,
            "joints": mesh.joints, "weights": mesh.weights, "triangles": mesh.triangles,
            "morphs": {n: mesh.morph_deltas(n) for n in names}}


def _export_skin(joints: np.ndarray, weights: np.ndarray, part: str, joint_of_bone_index: dict[int, int],
                 njoints: int) -> tuple[np.ndarray, np.ndarray]:
    """Remap skeleton indices to skin joint indices; unskinned vertices go rigidly to
    the part's bone; zero-weight slots point at joint 0.  Weights renormalised."""
    j = np.asarray(joints).astype(np.int64)
    w = np.asarray(weights).astype(np.float64)
    lut = np.zeros(max(max(joint_of_bone_index, default=0), int(j.max(initial=0))) + 1, np.int64)
    for bi, ji in joint_of_bone_index.items():
        lut[bi] = ji
    j = lut[j]
    w[w < 0] = 0
    empty = w.sum(axis=1) <= 0
    if empty.any():
        own = joint_of_bone_index.get(BONE_INDEX.get(part, -1), 0)
        j[empty] = 0
        j[empty, 0] = own
        w[empty] = (1.0, 0.0, 0.0, 0.0)
    j[w <= 0] = 0
    w32 = normalize_weights(w)
    return j.astype(np.uint8 if njoints <= 256 else np.uint16), w32


def _material(gltf: g.GLTF2, b: _Builder, avatar: Avatar, part: str, level: int) -> int:
    pbr = g.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=0.85)
    if part in avatar.images:
        bv = b.view(_texture_png(surface(avatar, part), level))
        gltf.images.append(g.Image(bufferView=bv, mimeType="image/png", name=f"{part}_Tex"))
        gltf.textures.append(g.Texture(sampler=0, source=len(gltf.images) - 1, name=f"{part}_Tex"))
        pbr.baseColorTexture = g.TextureInfo(index=len(gltf.textures) - 1)
    gltf.materials.append(g.Material(name=f"{part}_Mat", pbrMetallicRoughness=pbr, doubleSided=False))
    return len(gltf.materials) - 1


def _texture_png(rgb: np.ndarray, level: int) -> bytes:
    """PNG of a part's surface (opaque RGB)."""
    buf = io.BytesIO()
    PILImage.fromarray(rgb, "RGB").save(buf, format="PNG", compress_level=level)
    return buf.getvalue()


# --------------------------------------------------------------------------- reading back


def load_glb(data: bytes) -> g.GLTF2:
    """Parse a .glb with pygltflib (binary blob attached)."""
    return g.GLTF2.load_from_bytes(data)


_NP = {g.FLOAT: np.float32, g.UNSIGNED_BYTE: np.uint8, g.UNSIGNED_SHORT: np.uint16, g.UNSIGNED_INT: np.uint32,
       g.BYTE: np.int8, g.SHORT: np.int16}
_NCOMP = {g.SCALAR: 1, g.VEC2: 2, g.VEC3: 3, g.VEC4: 4, g.MAT4: 16}


def read_accessor(gltf: g.GLTF2, index: int) -> np.ndarray:
    """Decode a tightly packed accessor of a loaded glb into (count, ncomp) numpy."""
    acc = gltf.accessors[index]
    bv = gltf.bufferViews[acc.bufferView]
    blob = gltf.binary_blob()
    dt = np.dtype(_NP[acc.componentType]).newbyteorder("<")
    n = _NCOMP[acc.type]
    start = (bv.byteOffset or 0) + (acc.byteOffset or 0)
    a = np.frombuffer(blob, dt, count=acc.count * n, offset=start)
    return a.reshape(acc.count, n) if n > 1 else a


def read_image(gltf: g.GLTF2, index: int) -> bytes:
    """The encoded bytes (PNG) of image ``index`` of a loaded glb (embedded in a bufferView)."""
    view = gltf.bufferViews[gltf.images[index].bufferView]
    start = view.byteOffset or 0
    return gltf.binary_blob()[start:start + view.byteLength]
