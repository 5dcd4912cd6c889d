#!/usr/bin/env bash
# Install Debian packages for the tests: `bash tests/apt_install.sh PACKAGE...`, as root or through sudo.
# Used by tests/web/install.sh (chromium) and tests/install_services.sh (postgresql, redis-server) when what they need is missing.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then
    sudo_=""
elif command -v sudo >/dev/null 2>&1; then
    sudo_="sudo"
else
    echo "tests/apt_install.sh: $* missing and we are neither root nor have sudo;" \
         "install Debian's package (apt-get install -y $*)" >&2
    exit 1
fi
$sudo_ env DEBIAN_FRONTEND=noninteractive apt-get update -q
$sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
