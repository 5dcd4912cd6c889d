#!/usr/bin/env bash
# Services the tests run for real (tests/services.py starts and stops them):
#   - PostgreSQL's server binaries (initdb, pg_ctl); Debian's postgresql package when they are missing.
#   - redis-server; Debian's redis-server package when it is not on PATH.
# Idempotent; the README/CI test command runs it from the repo root.
set -euo pipefail

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
    bash "$(dirname "$0")/apt_install.sh" postgresql
fi
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null

if ! command -v redis-server >/dev/null 2>&1; then
    bash "$(dirname "$0")/apt_install.sh" redis-server
fi
command -v redis-server >/dev/null
