#!/usr/bin/env bash
# Services the tests run for real (tests/services.py starts and stops them):
#   - PostgreSQL's server binaries (initdb, pg_ctl); Debian's postgresql package when they are missing.
# Idempotent; the README/CI test command runs it from the repo root.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        sudo_=""
    elif command -v sudo >/dev/null 2>&1; then
        sudo_="sudo"
    else
        echo "tests/install_services.sh: PostgreSQL is missing and we are neither root nor have sudo;" \
             "install Debian's postgresql package (apt-get install -y postgresql)" >&2
        exit 1
    fi
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -q
    $sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null
