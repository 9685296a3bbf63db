#!/usr/bin/env bash
# On the GPU machine, in one device call: render a training set from the pack (.pack/), train on the
# GPU until the time is up, and leave the model, its checkpoint and the logs in $OUT.
#   gpu/train.sh [train options ...]      e.g. --channels 32,64 --gru-hidden 128
# Environment: RENDER_SECONDS (default 200) and TRAIN_SECONDS (300) bound the two stages; RESUME=path
# of a checkpoint (.ckpt) that continues an earlier run; SEED (0) varies the renders. A rehearsal on
# this CPU, on a few files per split: OUT=/tmp/out DEVICE=cpu SKIP_WHEELS=1 MAX_FILES=20 gpu/train.sh ...
set -uo pipefail
cd "$(dirname "$0")/.."
: "${OUT:?run this through the device tool, which sets OUT}"
if [ -z "${SKIP_WHEELS:-}" ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .pack/wheels/*.whl || exit 1
fi
export PYTHONPATH="/tmp/site:$PWD" TATUMDRUM_SYNTH=tinysoundfont PYTHONUNBUFFERED=1
work=/tmp/work
mkdir -p "$work"
cores=$(nproc)
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader > "$OUT/device.txt" 2>&1 || echo "no GPU" > "$OUT/device.txt"
start=$(date +%s)
timeout "${RENDER_SECONDS:-200}" python3 -m tatumdrum build-dataset .pack/gmd "$work/data" --splits validation,train \
    --v2 --kit-dir .pack/kits --piano-dir .pack/pianos --workers "$cores" --seed "${SEED:-0}" \
    ${MAX_FILES:+--max-files "$MAX_FILES"} 2>&1 | tail -n 4 | tee "$OUT/build.txt"
echo "render: $(( $(date +%s) - start )) s" | tee -a "$OUT/build.txt"
[ -n "${RESUME:-}" ] && cp "$RESUME" "$work/model.ckpt"
timeout "${TRAIN_SECONDS:-300}" python3 -m tatumdrum train "$work/data" --out "$work/model.pt" --device "${DEVICE:-cuda}" \
    --crop-workers $(( cores - 2 )) --keep-last --lm bigram --lm-path models/lm/bigram8.pt "$@" > "$OUT/train.txt" 2>&1
echo "train exit $? after $(( $(date +%s) - start )) s" | tee -a "$OUT/train.txt"
cp "$work"/model.pt "$work"/model.ckpt "$work"/model.history.json "$OUT"/ 2>/dev/null
ls -la "$OUT"
