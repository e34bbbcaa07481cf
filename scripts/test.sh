#!/usr/bin/env bash
# Runs the Sluice tests: installs what is missing, builds, and runs them.
#
#   scripts/test.sh            everything: every test target, one test at a time, then a 60-second
#                              fuzz run of the envelope decoder (what CI runs)
#   scripts/test.sh --quick    the fast loop: the contract, core, store and README tests (no process
#                              kills, no rebalance or outage scenarios, no soaks); a few minutes
#
# Test servers: the embedded Kafka cluster is started by the tests themselves, on loopback; a
# throwaway PostgreSQL server is started here (scripts/postgres-test-server.sh) and handed to the
# tests as SLUICE_TEST_POSTGRES_URL, then stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
for argument in "$@"; do
    case "$argument" in
        --quick) quick=1 ;;
        *) echo "usage: scripts/test.sh [--quick]" >&2; exit 2 ;;
    esac
done

bash scripts/ensure-deps.sh
swift build --build-tests

# The payload validator's differential test checks it against python-jsonschema 4.26, installed
# with pip into a throwaway virtual environment (no system package is touched).
referee=.build/jsonschema-referee
if ! "$referee/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("jsonschema") != "4.26.0")' 2>/dev/null; then
    rm -rf "$referee"
    python3 -m venv "$referee"
    "$referee/bin/pip" install --quiet --disable-pip-version-check jsonschema==4.26.0
fi
export SLUICE_TEST_PYTHON="$PWD/$referee/bin/python"

if [ "${SLUICE_SKIP_POSTGRES:-}" != 1 ]; then
    export SLUICE_POSTGRES_STATE_FILE="$PWD/.build/postgres-test-server.$$.state"
    trap 'bash scripts/postgres-test-server.sh stop' EXIT
    SLUICE_TEST_POSTGRES_URL=$(bash scripts/postgres-test-server.sh start)
    export SLUICE_TEST_POSTGRES_URL
fi

# One test at a time: the Kafka tests run real consumer groups whose timing a 2-core machine
# shared by parallel suites would distort.
if [ "$quick" = 1 ]; then
    # The test targets of the fast loop; CONTRIBUTING.md says what is in which.
    swift test --skip-build --no-parallel --filter '^(SluiceContractsTests|SluiceTests|SluiceStoreTests|ReadmeSampleTests)\.'
    exit 0
fi
swift test --skip-build --no-parallel

# The DocC catalogs (the product contract for users) build without a warning.
bash scripts/check-docs.sh

# Fuzzing must not break silently: a short libFuzzer run of the envelope decoder, its invariants
# checked by the target (a broken one traps and fails this script), and the executions counted.
fuzz_log=$(mktemp)
if ! bash Fuzz/run-envelope-fuzz.sh -max_total_time="${SLUICE_FUZZ_SECONDS:-60}" -print_final_stats=1 >"$fuzz_log" 2>&1; then
    tail -n 40 "$fuzz_log" >&2
    echo "error: the envelope decoder fuzz run failed (the input is in fuzz-corpus/artifacts)" >&2
    exit 1
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$fuzz_log")
echo "fuzz: envelope decoder, ${SLUICE_FUZZ_SECONDS:-60} s, ${runs:-?} executions, every invariant held"
rm -f "$fuzz_log"
