"""Shared fixtures: small pieces in the build-dataset layout, made from synthesised drum hits."""
import os
import tempfile

# numba's on-disk cache (librosa's peak picking, our beat decoder) is keyed by CPU and numba version,
# yet a cache file that an earlier process left in site-packages, with a matching key, crashed CI with
# a segmentation fault when loaded (stop 33; a fresh compile of the same code runs). Each test session
# compiles into its own folder, set before anything imports numba.
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="tatumdrum-tests-numba-")

from pathlib import Path

import numpy as np
import pytest
import torch

from tatumdrum.features import log_mel
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid

SR = 44100

torch.set_num_threads(2)


def hit(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A crude but distinct sound per drum: a pitched thump, a noisy crack, a short bright tick."""
    t = np.arange(int(0.15 * SR)) / SR
    if kind == "BD":
        return np.sin(2 * np.pi * (50 + 80 * np.exp(-t * 40)) * t) * np.exp(-t * 25)
    if kind == "SD":
        return (0.6 * rng.standard_normal(len(t)) + 0.4 * np.sin(2 * np.pi * 190 * t)) * np.exp(-t * 30)
    noise = np.diff(rng.standard_normal(len(t) + 1))  # high-passed noise
    return 0.4 * noise * np.exp(-t * 120)


def write_piece(path: Path, seed: int, bars: int = 6, bpm: float = 110.0) -> None:
    rng = np.random.default_rng(seed)
    grid = BeatGrid.regular(bpm, bars * 4, start=0.2)
    onsets = np.zeros((3, bars * 16), dtype=bool)
    onsets[2, ::2] = True
    onsets[0, ::16] = onsets[0, 10::16] = True
    onsets[1, 4::8] = True
    onsets[:, rng.integers(0, bars * 16, 6)] ^= rng.random((3, 6)) < 0.5
    score = DrumScore(grid, 4, onsets)
    audio = np.zeros(int((grid.times[-1] + 1.0) * SR))
    times = {}
    for k, name in enumerate(("BD", "SD", "HH")):
        times[name] = score.tatum_times[onsets[k]]
        for t0 in times[name]:
            h = hit(name, rng)
            i = int(t0 * SR)
            audio[i:i + len(h)] += h[: len(audio) - i]
    mix = audio + 0.05 * np.sin(2 * np.pi * 220 * np.arange(len(audio)) / SR)
    np.savez(path, mel_drums=log_mel(audio.astype(np.float32)).astype(np.float16),
             mel_mix=log_mel(mix.astype(np.float32)).astype(np.float16),
             tatum_times=score.tatum_times.astype(np.float32), beat_times=grid.times.astype(np.float32),
             beat_positions=grid.positions.astype(np.int16), tatums_per_beat=4, targets=onsets.astype(np.uint8),
             onset_times_BD=times["BD"].astype(np.float32), onset_times_SD=times["SD"].astype(np.float32),
             onset_times_HH=times["HH"].astype(np.float32), kit="test-clicks")


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pieces")
    for split, n in (("train", 4), ("validation", 2)):
        (root / split).mkdir()
        for i in range(n):
            write_piece(root / split / f"piece{i}.npz", seed=i + (100 if split == "validation" else 0))
    return root
