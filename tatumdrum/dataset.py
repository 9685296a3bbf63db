"""Training pieces built by `tatumdrum build-dataset`, and the random bar-aligned crops fed to the CRNN."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .features import MEL
from .score import DrumScore
from .tatums import BeatGrid, tatum_frame_spans

SOURCES = ("drums", "mix")


@dataclass
class Piece:
    """One rendered piece: spectrograms of the drums-only and the mixed audio, and its tatum targets."""

    name: str
    mels: dict[str, np.ndarray]  # source -> (T, F) float16
    tatum_times: np.ndarray
    targets: np.ndarray  # (K, M) uint8
    bar_lengths: np.ndarray  # (M,) tatums in each tatum's bar
    bar_starts: np.ndarray  # tatum indices where bars begin
    onset_times: dict[str, np.ndarray]
    beats: BeatGrid
    tatums_per_beat: int


def load_piece(path: Path) -> Piece:
    with np.load(path, allow_pickle=False) as z:
        grid = BeatGrid(z["beat_times"].astype(float), z["beat_positions"].astype(int))
        tpb = int(z["tatums_per_beat"])
        targets = z["targets"].astype(np.uint8)
        score = DrumScore(grid, tpb, targets.astype(bool))
        bar_starts = np.array([s * tpb for s, _ in score.bars()])
        onsets = {k[len("onset_times_"):]: z[k].astype(float) for k in z.files if k.startswith("onset_times_")}
        return Piece(path.stem, {"drums": z["mel_drums"], "mix": z["mel_mix"]},
                     z["tatum_times"].astype(float), targets, score.bar_tatum_lengths(), bar_starts, onsets,
                     grid, tpb)


def load_pieces(folder: Path) -> list[Piece]:
    files = sorted(Path(folder).glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"{folder}: no .npz pieces here; run `tatumdrum build-dataset` first")
    return [load_piece(f) for f in files]


@dataclass
class Batch:
    mel: torch.Tensor  # (B, T, F)
    spans: list[torch.Tensor]  # per piece (M, 2)
    targets: torch.Tensor  # (B, K, M)
    bar_lengths: torch.Tensor  # (B, M)


def crop(piece: Piece, source: str, n_tatums: int, rng: np.random.Generator, fps: float = MEL.fps
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A crop of `n_tatums` tatums starting on a bar line, with the frames it pools over.

    Starting on a bar keeps the bar-level context the language model conditions on.
    """
    m_total = len(piece.tatum_times)
    starts = piece.bar_starts[piece.bar_starts + n_tatums <= m_total]
    m0 = int(rng.choice(starts)) if len(starts) else 0
    m1 = min(m0 + n_tatums, m_total)
    mel = piece.mels[source]
    spans = tatum_frame_spans(piece.tatum_times, fps, len(mel))[m0:m1]
    f0 = max(int(spans[0, 0]) - 8, 0)
    f1 = min(int(spans[-1, 1]) + 8, len(mel))
    return (mel[f0:f1].astype(np.float32), spans - f0, piece.targets[:, m0:m1].astype(np.float32),
            piece.bar_lengths[m0:m1])


def make_batch(pieces: list[Piece], batch_size: int, n_tatums: int, rng: np.random.Generator,
               sources: tuple[str, ...] = SOURCES) -> Batch:
    """Random pieces, each from a random source (the paper trains on mixtures and drums alike)."""
    items = []
    while len(items) < batch_size:
        piece = pieces[int(rng.integers(len(pieces)))]
        if len(piece.tatum_times) < n_tatums:
            continue
        items.append(crop(piece, str(rng.choice(sources)), n_tatums, rng))
    t_max = max(len(i[0]) for i in items)
    mel = np.zeros((batch_size, t_max, items[0][0].shape[1]), dtype=np.float32)
    for b, item in enumerate(items):
        mel[b, : len(item[0])] = item[0]
    return Batch(torch.from_numpy(mel), [torch.from_numpy(i[1]).long() for i in items],
                 torch.from_numpy(np.stack([i[2] for i in items])),
                 torch.from_numpy(np.stack([i[3] for i in items])).long())
