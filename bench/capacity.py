"""Model-size benchmark: parameters, seconds per training step, and CRNN seconds per song, per size.

    python bench/capacity.py                          # the sizes below, CPU, torch's default threads
    python bench/capacity.py --threads 2 --steps 10
    python bench/capacity.py --sizes 16,32:128 32,64:128 --device cuda
    python bench/capacity.py --sizes 16,32:128 --pieces data_v3/validation --crop-workers 2

A training step is the real one of `tatumdrum train` (transcription loss with eq. 4's weight, the
bi-gram's eq. 5 through a gumbel-sigmoid sample, the velocity loss, AdamW) on a batch of the trainer's
shape: 8 crops of 64 tatums (16ths at 120 BPM, 8.3 s each). Inputs are random; the cost of a step does
not depend on what the spectrogram holds. "crnn s/song" is encode + decode of a 3-minute song, the
part of `tatumdrum transcribe` that grows with the model. Ratios are against the first size, in the
same run. `--pieces` also times the trainer's crops on real pieces (remixes, EQ, the v2.x options),
made between steps and by a pool of `--crop-workers` processes (`train --crop-workers`): on a GPU,
where a step is milliseconds, crops made between steps would idle it.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tatumdrum.features import MEL  # noqa: E402
from tatumdrum.instruments import instruments_from_abbrevs  # noqa: E402
from tatumdrum.lm import load_language_model  # noqa: E402
from tatumdrum.losses import language_loss, total_loss, transcription_loss, velocity_loss  # noqa: E402
from tatumdrum.model import CRNNConfig, TatumCRNN, spans_tensor  # noqa: E402
from tatumdrum.training import positive_weights  # noqa: E402

CLASSES = ("BD", "SD", "SS", "HH", "OH", "TT", "CR", "RD")
SIZES = ("12,24:98", "16,32:128", "24,48:128", "32,64:128")  # v1, v2/v2.1, and two steps towards Vogl et al.
LM_PATH = Path(__file__).resolve().parents[1] / "models" / "lm" / "bigram8.pt"


def parse_size(text: str) -> tuple[tuple[int, int], int]:
    channels, hidden = text.split(":")
    a, b = (int(c) for c in channels.split(","))
    return (a, b), int(hidden)


def synthetic_batch(batch: int, n_tatums: int, k: int, rng: np.random.Generator, device: torch.device):
    tatum = 60.0 / 120 / 4
    times = 0.1 + tatum * np.arange(n_tatums)
    n_frames = int(np.ceil((times[-1] + tatum) * MEL.fps)) + 10
    mel = torch.from_numpy(rng.standard_normal((batch, n_frames, MEL.n_mels)).astype(np.float32)).to(device)
    spans = [spans_tensor(times, MEL.fps, n_frames).to(device) for _ in range(batch)]
    targets = torch.from_numpy((rng.random((batch, k, n_tatums)) < 0.1).astype(np.float32)).to(device)
    velocities = targets * torch.rand_like(targets)
    bar_lengths = torch.full((batch, n_tatums), 16, dtype=torch.long, device=device)
    return mel, spans, targets, velocities, bar_lengths


def step_seconds(net: TatumCRNN, lm, steps: int, device: torch.device, rng: np.random.Generator,
                 bf16: bool = False) -> float:
    instruments = instruments_from_abbrevs(list(CLASSES))
    gamma = positive_weights(1.0, {"SS": 10.0}, instruments).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=5e-4, eps=1e-9)
    gen = torch.Generator(device=device).manual_seed(0)
    mel, spans, targets, velocities, bar_lengths = synthetic_batch(8, 64, len(CLASSES), rng, device)
    net.train()
    times = []
    for i in range(steps + 2):  # the first two warm up allocators and kernels
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, vel_logits = net.forward_with_velocity(mel, spans)
        logits, vel_logits = logits.float(), vel_logits.float()
        loss = total_loss(transcription_loss(logits, targets, gamma),
                          language_loss(lm.nll, logits, bar_lengths, 0.2, "logit", gen), 0.068)
        loss = loss + 0.5 * velocity_loss(vel_logits, velocities, targets)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return float(np.median(times))


def song_seconds(net: TatumCRNN, device: torch.device, rng: np.random.Generator, minutes: float = 3.0) -> float:
    n_frames = int(minutes * 60 * MEL.fps)
    times = np.arange(0.05, minutes * 60 - 0.2, 0.125)
    mel = torch.from_numpy(rng.standard_normal((1, n_frames, MEL.n_mels)).astype(np.float32)).to(device)
    spans = [spans_tensor(times, MEL.fps, n_frames).to(device)]
    net.eval()
    best = np.inf
    with torch.inference_mode():
        for _ in range(3):
            t0 = time.perf_counter()
            net.forward_with_velocity(mel, spans)
            if device.type == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t0)
    return float(best)


def crop_seconds(folder: Path, batches: int, workers: int) -> tuple[float, float | None]:
    """Seconds per batch of 8 crops of 64 tatums: made in this process, and delivered by a pool."""
    from tatumdrum.crop_pool import CropPool, make_batch_fn
    from tatumdrum.dataset import V2_SOURCES, load_pieces

    pieces = load_pieces(folder)
    make = make_batch_fn(8, 64, sources=V2_SOURCES, balance=0.5, remix_db=(-24.0, 4.0), band_eq=0.5)
    t0 = time.perf_counter()
    for step in range(batches):
        make(pieces, np.random.default_rng(step))
    alone = (time.perf_counter() - t0) / batches
    if not workers:
        return alone, None
    with CropPool(pieces, make, workers, seed=0) as pool:
        it = pool.epoch(0, batches + 1)
        next(it)  # the pool's start
        t0 = time.perf_counter()
        for _ in it:
            pass
        return alone, (time.perf_counter() - t0) / batches


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), help="CHANNELS:GRU_HIDDEN, e.g. 16,32:128")
    ap.add_argument("--steps", type=int, default=8, help="timed training steps per size (median reported)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--bf16", action="store_true", help="also time the steps with the network under bfloat16 autocast")
    ap.add_argument("--pieces", type=Path, help="a folder of built pieces: also time the training crops")
    ap.add_argument("--crop-workers", type=int, default=0, help="with --pieces: also time a pool of this many")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lm = load_language_model(LM_PATH).to(device)  # .to moves what map_location does not (buffers made at load)
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    rows = []
    for size in args.sizes:
        channels, hidden = parse_size(size)
        torch.manual_seed(0)
        net = TatumCRNN(CRNNConfig(n_instruments=len(CLASSES), channels=channels, gru_hidden=hidden,
                                   velocity=True)).to(device)
        params = sum(p.numel() for p in net.parameters())
        rng = np.random.default_rng(0)
        rows.append((size, params, step_seconds(net, lm, args.steps, device, rng), song_seconds(net, device, rng)))
        if args.bf16:
            rows.append((size + " bf16", params, step_seconds(net, lm, args.steps, device, rng, bf16=True), rows[-1][3]))
    base = rows[0]
    print(f"device {device}, {torch.get_num_threads()} threads; step = batch 8 x 64 tatums, song = 3 minutes")
    print("| size (channels:GRU) | parameters | s/step | x | steps/hour | crnn s/song | x |")
    print("|---|---|---|---|---|---|---|")
    for size, params, step, song in rows:
        print(f"| {size} | {params:,} | {step:.3f} | {step / base[2]:.2f} | {3600 / step:,.0f} | {song:.2f} | "
              f"{song / base[3]:.2f} |")
    if args.pieces:
        alone, pooled = crop_seconds(args.pieces, 40, args.crop_workers)
        print(f"crops: {alone * 1000:.1f} ms per batch between steps ({alone / base[2]:.2f} x the first size's step)"
              + (f", {pooled * 1000:.1f} ms per batch from {args.crop_workers} workers" if pooled is not None else ""))


if __name__ == "__main__":
    main()
