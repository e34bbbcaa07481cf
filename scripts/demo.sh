#!/usr/bin/env bash
# The main demo: builds Sluice and runs the quick tour against the embedded Kafka cluster.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh
swift build -c release --product sluice-quick-tour
exec .build/release/sluice-quick-tour
