#!/usr/bin/env bash
# Test-only tooling for tests/test_gltf_validator.py and tests/test_threejs.py.
# Idempotent; run from anywhere (the README/CI test command runs it from the repo root):
#   - npm packages pinned in tests/web/package-lock.json (gltf-validator, three, playwright-core)
#   - the creator page's packages, pinned in server/web/creator/package-lock.json
#   - Debian's chromium when `command -v chromium` fails (playwright never downloads a browser)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "tests/web/install.sh: node and npm are required (Debian: apt-get install -y nodejs npm)" >&2
    exit 1
fi

# Reinstall when node_modules is missing or older than the lock file.
if [ ! -d "$here/node_modules" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
    PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix "$here" --no-audit --no-fund
fi

# The creator page's front-end packages (server/web/creator/package-lock.json), served by the server.
creator="$here/../../server/web/creator"
if [ ! -d "$creator/node_modules" ] || [ "$creator/package-lock.json" -nt "$creator/node_modules/.package-lock.json" ]; then
    npm ci --prefix "$creator" --no-audit --no-fund
fi

if ! command -v chromium >/dev/null 2>&1; then
    bash "$here/../apt_install.sh" chromium
fi
command -v chromium >/dev/null
