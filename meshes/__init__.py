"""Editable avatar data model: EditableMesh / EditableImage, the R15 rig, the
Avatar bundle, edit ops, glTF export and body validation."""

from .avatar import Avatar, canonical_hash
from .editable_image import MAX_IMAGE_SIZE, EditableImage
from .editable_mesh import MAX_TRIANGLES, MAX_VERTICES, EditableMesh, ExportArrays, InvalidEdit, MeshLimitExceeded
from .gltf import export_glb, load_glb, read_accessor
from .ops import (
    OP_KEYS,
    apply_op,
    apply_ops,
    ops_cost,
    draw_circle_op,
    draw_rectangle_op,
    set_position_op,
    set_uv_op,
    validate_op,
    write_pixels_op,
)
from .r15 import (
    BODY_PARTS,
    BONE_NAMES,
    BONE_HIERARCHY,
    BONE_PARENTS,
    BONES,
    PART_NAMES,
    PARTS,
    STUD_IN_METERS,
    TRIANGLE_BUDGETS,
)
from .pose import pose
from .validation import GetValidationRules, validate_full_body, watertight_problem

__all__ = [
    "Avatar",
    "canonical_hash",
    "EditableImage",
    "EditableMesh",
    "ExportArrays",
    "InvalidEdit",
    "MeshLimitExceeded",
    "MAX_IMAGE_SIZE",
    "MAX_TRIANGLES",
    "MAX_VERTICES",
    "export_glb",
    "load_glb",
    "read_accessor",
    "OP_KEYS",
    "apply_op",
    "apply_ops",
    "ops_cost",
    "validate_op",
    "set_position_op",
    "set_uv_op",
    "write_pixels_op",
    "draw_rectangle_op",
    "draw_circle_op",
    "BODY_PARTS",
    "BONE_NAMES",
    "BONE_HIERARCHY",
    "BONE_PARENTS",
    "BONES",
    "PART_NAMES",
    "PARTS",
    "STUD_IN_METERS",
    "TRIANGLE_BUDGETS",
    "GetValidationRules",
    "validate_full_body",
    "watertight_problem",
    "pose",
]
