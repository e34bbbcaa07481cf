#!/usr/bin/env bash
# Runs every Sluice test: installs what is missing, builds, and runs the whole suite.
# Test servers (the embedded Kafka cluster) are started by the tests themselves, on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
swift build --build-tests
# One test at a time: the Kafka tests run real consumer groups whose timing a 2-core machine
# shared by parallel suites would distort.
swift test --skip-build --no-parallel
