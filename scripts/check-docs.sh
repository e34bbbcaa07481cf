#!/usr/bin/env bash
# Builds every DocC catalog (Sources/<Module>/<Module>.docc) with the toolchain's docc, from the
# modules' symbol graphs, and fails on any warning: a broken symbol link, a missing article, an
# unresolved topic. The rendered archives land in .build/docs/<Module>.doccarchive.
#
#   scripts/check-docs.sh          (after `swift build`; scripts/test.sh runs it)
set -euo pipefail
cd "$(dirname "$0")/.."

swift package dump-symbol-graph --minimum-access-level public >/dev/null
graphs="$(swift build --show-bin-path)/../symbolgraph"
out=.build/docs
mkdir -p "$out"

status=0
for catalog in Sources/*/*.docc; do
    module=$(basename "$catalog" .docc)
    module_graphs="$out/$module.symbolgraphs"
    rm -rf "$module_graphs" && mkdir -p "$module_graphs"
    # The module's own graph and its extensions of other modules' types (Module@Other.symbols.json).
    cp "$graphs/$module.symbols.json" "$module_graphs/"
    find "$graphs" -maxdepth 1 -name "$module@*.symbols.json" -exec cp {} "$module_graphs/" \;
    if ! docc convert "$catalog" --additional-symbol-graph-dir "$module_graphs" \
        --fallback-display-name "$module" --fallback-bundle-identifier "org.sluice.$module" \
        --output-path "$out/$module.doccarchive" --warnings-as-errors >"$out/$module.log" 2>&1; then
        echo "error: the $module documentation does not build cleanly:" >&2
        cat "$out/$module.log" >&2
        status=1
    else
        echo "docs: $module builds without warnings"
    fi
done
exit $status
