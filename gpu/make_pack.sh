#!/usr/bin/env bash
# Here (not on the GPU machine): the training pack for a lent GPU, in .pack/ at the repository root,
# which git ignores and a device call carries (carry: [".pack"]). Needs an installed tatumdrum.
#   gpu/make_pack.sh GMD KIT_DIR PIANO_DIR [PIANO_DIR ...]
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { echo "usage: gpu/make_pack.sh GMD KIT_DIR [PIANO_DIR ...]" >&2; exit 2; }
gmd=$1 kit=$2
shift 2
extra=()
for p in "$@"; do extra+=(--piano-dir "$p"); done
rm -rf .pack
# Debian's Hydrogen kits (package hydrogen-drumkits) travel too: that machine has no Debian packages.
hydrogen=${HYDROGEN_DIR:-/usr/share/hydrogen/data/drumkits}
[ -d "$hydrogen" ] && extra+=(--kit-dir "$hydrogen")
tatumdrum pack "$gmd" .pack --kit-dir "$kit" "${extra[@]}"
# What tatumdrum's build and training import that the GPU image (Python 3.12) lacks; pretty_midi brings
# the TimGM6mb soundfont, TinySoundFont stands in for fluidsynth.
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .pack/wheels pretty_midi mido soundfile cffi pycparser mir_eval decorator importlib_resources tinysoundfont
find .pack -type f -printf "%s\n" | awk '{s += $1} END {printf ".pack: %.1f MiB with its wheels\n", s / 2^20}'
