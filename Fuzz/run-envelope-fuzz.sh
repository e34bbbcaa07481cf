#!/usr/bin/env bash
# Builds and runs the envelope decoder fuzz target (libFuzzer + AddressSanitizer).
#
#   Fuzz/run-envelope-fuzz.sh [libFuzzer flags…]      e.g. -max_total_time=600 -jobs=1
#
# The target is the package's `sluice-envelope-fuzz` product, which depends on SluiceContracts
# alone; it is built on its own (`--product`) in .build-fuzz with `-sanitize=fuzzer,address`, so
# the flag reaches that module and the fuzz target and none of the other executables' `main`s.
# The corpus grows in fuzz-corpus/envelope (git-ignored), seeded from
# Fuzz/EnvelopeDecoderFuzz/seeds; crashes land in fuzz-corpus/artifacts, and
# `swift run sluice-envelope-fuzz fuzz-corpus/artifacts` replays them without libFuzzer.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/.build-fuzz}"
corpus="$root/fuzz-corpus/envelope"
artifacts="$root/fuzz-corpus/artifacts"
mkdir -p "$corpus" "$artifacts"

swift build --package-path "$root" --scratch-path "$build" -c release --product sluice-envelope-fuzz \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -DSLUICE_FUZZING -Xswiftc -g >&2
binary="$(swift build --package-path "$root" --scratch-path "$build" -c release --show-bin-path)/sluice-envelope-fuzz"

cd "$build"
exec "$binary" -artifact_prefix="$artifacts/" -max_len=4096 "$@" \
    "$corpus" "$root/Fuzz/EnvelopeDecoderFuzz/seeds"
