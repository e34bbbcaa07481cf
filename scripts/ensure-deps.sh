#!/usr/bin/env bash
# Installs what Sluice needs beyond Swift itself, when it is missing: librdkafka's headers,
# pkg-config, and a PostgreSQL server for the PostgreSQL store's tests (Debian/Ubuntu package
# names). Safe to run again: it installs nothing that is there.
set -euo pipefail

missing=()
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists rdkafka 2>/dev/null || [ ! -f /usr/include/librdkafka/rdkafka_mock.h ]; then
    missing+=(librdkafka-dev)
fi
# PostgreSQL serves the tests (scripts/test.sh starts a throwaway server); the demo does not need it.
if [ "${SLUICE_SKIP_POSTGRES:-}" != 1 ] && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
    missing+=(postgresql)
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "error: need root (or sudo) to install ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

version=$(pkg-config --modversion rdkafka)
case "$version" in
    0.*|1.*) echo "error: Sluice needs librdkafka 2.0 or newer; found $version" >&2; exit 1 ;;
esac
