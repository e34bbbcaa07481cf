#!/usr/bin/env bash
# Runs every Sluice test: installs what is missing, builds, and runs the whole suite.
# Test servers: the embedded Kafka cluster is started by the tests themselves, on loopback; a
# throwaway PostgreSQL server is started here (scripts/postgres-test-server.sh) and handed to the
# tests as SLUICE_TEST_POSTGRES_URL, then stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
swift build --build-tests

if [ "${SLUICE_SKIP_POSTGRES:-}" != 1 ]; then
    export SLUICE_POSTGRES_STATE_FILE="$PWD/.build/postgres-test-server.$$.state"
    trap 'bash scripts/postgres-test-server.sh stop' EXIT
    SLUICE_TEST_POSTGRES_URL=$(bash scripts/postgres-test-server.sh start)
    export SLUICE_TEST_POSTGRES_URL
fi
# One test at a time: the Kafka tests run real consumer groups whose timing a 2-core machine
# shared by parallel suites would distort.
swift test --skip-build --no-parallel
