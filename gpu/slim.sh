#!/usr/bin/env bash
# The working tree (70 MiB, mostly model files) is over what a device call carries (64 MiB with the
# pack). `gpu/slim.sh on` takes out of the working tree, through git's sparse checkout, what training on
# the GPU never reads: the bundled model files, Table II's networks but v2.4's, the separator and the
# examples. `gpu/slim.sh off` brings them back. Nothing is deleted from git.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    on) git sparse-checkout set --no-cone '/*' '!/models/*.pt' '!/models/*.zip' '!/models/separator/' \
            '!/models/table2/' '/models/table2/v24_crnn_bigram.pt' '!/examples/' ;;
    off) git sparse-checkout disable ;;
    *) echo "usage: gpu/slim.sh on|off" >&2; exit 2 ;;
esac
git ls-files -z | while IFS= read -r -d '' f; do [ -f "$f" ] && stat -c %s "$f"; done \
    | awk '{s += $1} END {printf "working tree: %.1f MiB of tracked files\n", s / 2^20}'
