#!/usr/bin/env bash
# Builds and runs the envelope decoder fuzz target (libFuzzer + AddressSanitizer).
#
#   Fuzz/run-envelope-fuzz.sh [libFuzzer flags…]      e.g. -max_total_time=600 -jobs=1
#
# The target is compiled with swiftc from the Sluice sources it needs (JSON, Schema, Envelope,
# Snapshot, Records and SluiceError) rather than with `swift build`, because `-sanitize=fuzzer`
# would reach every target and clash with the executables' own `main`. Those folders depend on
# Foundation only. The corpus grows in fuzz-corpus/envelope (git-ignored), seeded from
# Fuzz/EnvelopeDecoderFuzz/seeds; crashes land in fuzz-corpus/artifacts.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${FUZZ_BUILD_DIR:-$root/.build-fuzz}"
corpus="$root/fuzz-corpus/envelope"
artifacts="$root/fuzz-corpus/artifacts"
mkdir -p "$build" "$corpus" "$artifacts"

sources=()
for folder in JSON Schema Envelope Snapshot Records; do
    while IFS= read -r -d '' file; do sources+=("$file"); done \
        < <(find "$root/Sources/Sluice/$folder" -name '*.swift' -print0 2>/dev/null)
done
sources+=("$root/Sources/Sluice/SluiceError.swift")

swiftc -O -g -sanitize=fuzzer,address -parse-as-library -swift-version 6 \
    -enable-upcoming-feature ExistentialAny -enable-upcoming-feature MemberImportVisibility \
    -module-name Sluice \
    "${sources[@]}" "$root/Fuzz/EnvelopeDecoderFuzz/EnvelopeDecoderFuzz.swift" \
    -o "$build/envelope-decoder-fuzz"

cd "$build"
exec ./envelope-decoder-fuzz -artifact_prefix="$artifacts/" -max_len=4096 "$@" \
    "$corpus" "$root/Fuzz/EnvelopeDecoderFuzz/seeds"
