"""The HumanoidDescription JSON Schema (``humanoid_description.schema.json``, draft
2020-12) and a small validator for the subset of keywords it uses (type, enum,
required, properties, additionalProperties, items, minItems, maxItems, uniqueItems,
minimum, maximum, local ``$ref``) -- ``jsonschema`` is not a dependency."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

__all__ = ["humanoid_description_schema", "schema_errors", "validate_humanoid_description"]

_PATH = Path(__file__).with_name("humanoid_description.schema.json")
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v),
}


@functools.lru_cache(maxsize=1)
def humanoid_description_schema() -> dict:
    return json.loads(_PATH.read_text())


def schema_errors(value: object, schema: dict, root: dict | None = None, path: str = "$") -> list[str]:
    """Messages ``"<json path>: <problem>"`` for every violation (empty when valid)."""
    root = schema if root is None else root
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/"):
            raise ValueError(f"only local $refs are supported, got {ref}")
        target = root
        for key in ref[2:].split("/"):
            target = target[key]
        return schema_errors(value, target, root, path)
    errs: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{path}: expected {' or '.join(types)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errs.append(f"{path}: must be {schema['const']!r}")
    if _TYPES["number"](value):
        if "minimum" in schema and value < schema["minimum"]:
            errs.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errs.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{path}: missing required property {k!r}")
        for k, v in value.items():
            if k in props:
                errs += schema_errors(v, props[k], root, f"{path}.{k}")
            elif schema.get("additionalProperties", True) is False:
                errs.append(f"{path}: unexpected property {k!r}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errs.append(f"{path}: needs at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errs.append(f"{path}: allows at most {schema['maxItems']} items")
        if schema.get("uniqueItems") and len({json.dumps(x, sort_keys=True) for x in value}) != len(value):
            errs.append(f"{path}: items must be unique")
        if "items" in schema:
            for i, x in enumerate(value):
                errs += schema_errors(x, schema["items"], root, f"{path}[{i}]")
    return errs


def validate_humanoid_description(description: object) -> list[str]:
    """Schema violations of a HumanoidDescription dict, plus the cross-field rule that
    the 6 BodyParts name each body part once and the 15 R15 MeshParts once in all."""
    errs = schema_errors(description, humanoid_description_schema())
    if not errs and isinstance(description, dict):
        bps = description["BodyParts"]
        names = [bp["BodyPart"] for bp in bps]
        if len(set(names)) != 6:
            errs.append("$.BodyParts: each of the 6 body parts must appear once")
        parts = [p for bp in bps for p in bp["Instance"]]
        if len(parts) != 15 or len(set(parts)) != 15:
            errs.append("$.BodyParts: the 15 R15 MeshParts must each appear in exactly one Instance")
    return errs
