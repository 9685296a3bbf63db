"""Training pieces built by `tatumdrum build-dataset`, and the random bar-aligned crops fed to the CRNN."""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .features import MEL
from .train_config import REMIX_DRUM_DB
from .instruments import DEFAULT_INSTRUMENTS, DrumInstrument, fold_row, instruments_from_abbrevs
from .metrics import fold_to
from .score import DrumScore, merge_rows
from .tatums import BeatGrid, tatum_frame_spans

SOURCES = ("drums", "mix")
# v2 pieces carry the band stem too: "remix" mixes drums and band afresh for every crop.
V2_SOURCES = ("drums", "mix", "remix")
# Pieces built with `--separated` also carry the separator's drum estimate of the mix.
SEPARATED = "separated"
# Drum-to-band level of a remix, in dB: from drums buried under a loud band to drums on top.
# A drums-only crop carries a faint band this often, like a separated or bled drum stem.
BLEED_PROBABILITY = 0.3
BLEED_DB = (-35.0, -12.0)
GAIN_DB = (-12.0, 6.0)
# Negative crops (`make_batch(negatives=p)`): audio with no drum stroke and an empty score. One in
# NOISE_SHARE is steady noise or tones (never invented notes on non-musical input); the rest are the
# band alone, whose guitars, vocals and piano otherwise read as snare and hi-hat in real mixes.
NOISE_SHARE = 1 / 3
NOISE_RMS_DB = (-45.0, -10.0)


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
    instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
    velocities: np.ndarray | None = None  # (K, M) uint8 MIDI velocity at onsets (v2 pieces)


def load_piece(path: Path) -> Piece:
    with np.load(path, allow_pickle=False) as z:
        grid = BeatGrid(z["beat_times"].astype(float), z["beat_positions"].astype(int))
        tpb = int(z["tatums_per_beat"])
        targets = z["targets"].astype(np.uint8)
        instruments = instruments_from_abbrevs([str(a) for a in z["instruments"]]) if "instruments" in z.files \
            else DEFAULT_INSTRUMENTS
        score = DrumScore(grid, tpb, targets.astype(bool), instruments)
        bar_starts = np.array([s * tpb for s, _ in score.bars()])
        onsets = {k[len("onset_times_"):]: z[k].astype(float) for k in z.files if k.startswith("onset_times_")}
        mels = {"drums": z["mel_drums"], "mix": z["mel_mix"]}
        if "mel_band" in z.files:
            mels["band"] = z["mel_band"]
        if "mel_separated" in z.files:
            mels[SEPARATED] = z["mel_separated"]
        return Piece(path.stem, mels, z["tatum_times"].astype(float), targets, score.bar_tatum_lengths(),
                     bar_starts, onsets, grid, tpb, instruments,
                     z["velocities"] if "velocities" in z.files else None)


def with_classes(piece: Piece, instruments: tuple[DrumInstrument, ...]) -> Piece:
    """The piece with its strokes on `instruments`: a class they lack goes to the class it folds into
    (a side stick becomes a snare for a seven-class model), or is dropped."""
    if piece.instruments == instruments:
        return piece
    rows = [fold_row(inst, instruments) for inst in piece.instruments]
    kept = tuple(inst.abbrev for inst in instruments)
    onsets = {name: times for name, times in fold_to(piece.onset_times, kept).items() if name in kept}
    velocities = None if piece.velocities is None else merge_rows(piece.velocities, rows, len(instruments))
    return replace(piece, targets=merge_rows(piece.targets, rows, len(instruments)), velocities=velocities,
                   instruments=instruments, onset_times=onsets)


def load_pieces(folder: Path) -> list[Piece]:
    # A build writes `.<piece>.tmp.npz` and renames it when complete; one stopped midway leaves it behind.
    files = sorted(f for f in Path(folder).glob("*.npz") if not f.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{folder}: no .npz pieces here; run `tatumdrum build-dataset` first")
    return [load_piece(f) for f in files]


@dataclass
class Batch:
    mel: torch.Tensor  # (B, T, F)
    spans: list[torch.Tensor]  # per piece (M, 2)
    targets: torch.Tensor  # (B, K, M)
    bar_lengths: torch.Tensor  # (B, M)
    velocities: torch.Tensor | None = None  # (B, K, M) velocity / 127 at onsets, when all pieces have them

    def to(self, device: torch.device | str) -> "Batch":
        return Batch(self.mel.to(device), [s.to(device) for s in self.spans], self.targets.to(device),
                     self.bar_lengths.to(device), None if self.velocities is None else self.velocities.to(device))


def random_eq_curve(rng: np.random.Generator, n_mels: int = MEL.n_mels) -> np.ndarray:
    """Gain in dB per mel band: a tilt and one to three broad bells, like a mixing EQ seen through the mel scale."""
    x = np.linspace(0.0, 1.0, n_mels)
    curve = rng.uniform(-6.0, 6.0) * (x - 0.5)
    for _ in range(int(rng.integers(1, 4))):
        curve += rng.uniform(-8.0, 8.0) * np.exp(-0.5 * ((x - rng.uniform(0, 1)) / rng.uniform(0.04, 0.2)) ** 2)
    return curve


def remix_mel(drums: np.ndarray, band: np.ndarray | None, rng: np.random.Generator, drum_db: float,
              band_db: float | None, band_eq_db: np.ndarray | None = None) -> np.ndarray:
    """log(1 + mel) of drums and band at new levels, with a random EQ and gain; `band_eq_db`, a gain
    in dB per mel band, colours the band alone before that.

    Magnitudes of independent sources add in power on average, so the remix is
    sqrt(drums^2 + band^2) per mel bin: not the exact mixture, but close, and free of an STFT per crop.
    """
    eq = 10 ** ((random_eq_curve(rng, drums.shape[1]) + rng.uniform(*GAIN_DB)) / 20.0)
    power = (np.expm1(drums.astype(np.float32)) * 10 ** (drum_db / 20)) ** 2
    if band is not None and band_db is not None:
        band_gain = np.float32(10 ** (band_db / 20)) * (1.0 if band_eq_db is None else
                                                         (10 ** (band_eq_db / 20)).astype(np.float32))
        power += (np.expm1(band.astype(np.float32)) * band_gain) ** 2
    return np.log1p(np.sqrt(power) * eq[None, :].astype(np.float32))


def source_mel(piece: Piece, source: str, f0: int, f1: int, rng: np.random.Generator,
               remix_db: tuple[float, float] = REMIX_DRUM_DB, band_eq: float = 0.0) -> np.ndarray:
    """Frames f0:f1 of a piece's source; v2 pieces remix drums-only and "remix" crops afresh, the
    latter at a drum-to-band level drawn from `remix_db`, and with probability `band_eq` with an EQ
    of the band's own before the common one (a band brighter or darker than its drums)."""
    if "band" not in piece.mels or source == "mix":
        return piece.mels[source][f0:f1].astype(np.float32)
    if source == SEPARATED:  # fixed audio, but a mixing EQ and gain of its own like every other crop
        return remix_mel(piece.mels[SEPARATED][f0:f1], None, rng, 0.0, None)
    drums, band = piece.mels["drums"][f0:f1], piece.mels["band"][f0:f1]
    if source == "band":  # a negative crop: the band alone, with its own EQ and gain
        return remix_mel(band, None, rng, 0.0, None)
    if source == "drums":
        bleed = float(rng.uniform(*BLEED_DB)) if rng.random() < BLEED_PROBABILITY else None
        return remix_mel(drums, band, rng, 0.0, bleed)
    band_eq_db = random_eq_curve(rng, band.shape[1]) if band_eq and rng.random() < band_eq else None
    # The stems were stored at equal gain; drum_db is then the drum-to-band ratio of the remix.
    return remix_mel(drums, band, rng, float(rng.uniform(*remix_db)), 0.0, band_eq_db)


def crop(piece: Piece, source: str, n_tatums: int, rng: np.random.Generator, fps: float = MEL.fps,
         holding: int | None = None, remix_db: tuple[float, float] = REMIX_DRUM_DB, band_eq: float = 0.0
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A crop of `n_tatums` tatums starting on a bar line, with the frames it pools over; with
    `holding`, one of the crops that hold a stroke of that class (row), where the piece has one.

    Starting on a bar keeps the bar-level context the language model conditions on.
    """
    m_total = len(piece.tatum_times)
    starts = piece.bar_starts[piece.bar_starts + n_tatums <= m_total]
    if holding is not None:
        strokes = np.cumsum(np.concatenate([[0], piece.targets[holding].astype(int)]))
        with_stroke = starts[strokes[np.minimum(starts + n_tatums, m_total)] > strokes[starts]]
        starts = with_stroke if len(with_stroke) else starts
    m0 = int(rng.choice(starts)) if len(starts) else 0
    m1 = min(m0 + n_tatums, m_total)
    n_frames = len(piece.mels["drums"])
    spans = tatum_frame_spans(piece.tatum_times, fps, n_frames)[m0:m1]
    f0 = max(int(spans[0, 0]) - 8, 0)
    f1 = min(int(spans[-1, 1]) + 8, n_frames)
    velocities = None if piece.velocities is None else piece.velocities[:, m0:m1].astype(np.float32) / 127.0
    return (source_mel(piece, source, f0, f1, rng, remix_db, band_eq), spans - f0,
            piece.targets[:, m0:m1].astype(np.float32), piece.bar_lengths[m0:m1], velocities)


def steady_sound(n_samples: int, rng: np.random.Generator, sample_rate: int = MEL.sample_rate) -> np.ndarray:
    """Sound without attacks: coloured noise (slowly swelling or not), steady tones or a slow sweep."""
    t = np.arange(n_samples) / sample_rate
    kind = rng.choice(["noise", "swell", "tones", "sweep"])
    if kind in ("noise", "swell"):
        spectrum = np.fft.rfft(rng.standard_normal(n_samples))
        f = np.fft.rfftfreq(n_samples, 1.0 / sample_rate)
        x = np.fft.irfft(spectrum / np.maximum(f, 20.0) ** (rng.uniform(0.0, 1.0)), n_samples)
        if kind == "swell":  # wind or surf: a smooth envelope, nothing that starts like a stroke
            x *= 1.0 + rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * t + rng.uniform(0, 6.3))
    elif kind == "tones":
        x = np.zeros(n_samples)
        for f0 in np.exp(rng.uniform(np.log(40.0), np.log(4000.0), int(rng.integers(1, 5)))):
            for h in range(1, int(rng.integers(1, 6)) + 1):
                x += np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6.3)) / h
    else:
        f = np.exp(np.linspace(np.log(rng.uniform(40, 500)), np.log(rng.uniform(1000, 16000)), n_samples))
        x = np.sin(2 * np.pi * np.cumsum(f) / sample_rate)
    x = x / (np.sqrt(np.mean(x ** 2)) + 1e-12) * 10 ** (rng.uniform(*NOISE_RMS_DB) / 20)
    return x.astype(np.float32)


def negative_crop(piece: Piece, n_tatums: int, rng: np.random.Generator
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """A crop of the piece's grid without its drums: the band alone, or steady sound; the score is empty."""
    noise = rng.random() < NOISE_SHARE or "band" not in piece.mels
    mel, spans, targets, bar_lengths, velocities = crop(piece, "drums" if noise else "band", n_tatums, rng)
    if noise:
        from .features import log_mel

        mel = log_mel(steady_sound(len(mel) * MEL.hop_length, rng))[: len(mel)]
    return mel, spans, np.zeros_like(targets), bar_lengths, None if velocities is None else np.zeros_like(velocities)


def pieces_by_class(pieces: list[Piece]) -> list[np.ndarray]:
    """For each class (row), the indices of the pieces with at least one of its strokes."""
    k = len(pieces[0].targets) if pieces else 0
    return [np.array([i for i, p in enumerate(pieces) if p.targets[row].any()], dtype=int) for row in range(k)]


def make_batch(pieces: list[Piece], batch_size: int, n_tatums: int, rng: np.random.Generator,
               sources: tuple[str, ...] = SOURCES, negatives: float = 0.0, balance: float = 0.0,
               by_class: list[np.ndarray] | None = None, remix_db: tuple[float, float] = REMIX_DRUM_DB,
               band_eq: float = 0.0) -> Batch:
    """Random pieces, each from a random source (the paper trains on mixtures and drums alike);
    a share `negatives` of the crops has no drums and an empty score, and a share `balance` is drawn
    class first: a class at random, then a piece and a crop holding one of its strokes, so that rare
    classes (side stick, toms, crash) are heard as often as common ones (`by_class`: `pieces_by_class`)."""
    if not any(len(p.tatum_times) >= n_tatums for p in pieces):
        raise ValueError(f"no piece is {n_tatums} tatums long: no crop can be made")
    items = []
    if balance and by_class is None:
        by_class = pieces_by_class(pieces)
    heard = [row for row, held in enumerate(by_class or []) if len(held)]
    while len(items) < batch_size:
        piece, holding = pieces[int(rng.integers(len(pieces)))], None
        if heard and balance and rng.random() < balance:
            holding = heard[int(rng.integers(len(heard)))]
            piece = pieces[int(rng.choice(by_class[holding]))]
        if len(piece.tatum_times) < n_tatums:
            continue
        if negatives and rng.random() < negatives:
            items.append(negative_crop(piece, n_tatums, rng))
            continue
        usable = [s for s in sources if s in piece.mels or (s == "remix" and "band" in piece.mels)]
        items.append(crop(piece, str(rng.choice(usable)), n_tatums, rng, holding=holding, remix_db=remix_db,
                          band_eq=band_eq))
    t_max = max(len(i[0]) for i in items)
    mel = np.zeros((batch_size, t_max, items[0][0].shape[1]), dtype=np.float32)
    for b, item in enumerate(items):
        mel[b, : len(item[0])] = item[0]
    velocities = None
    if all(i[4] is not None for i in items):
        velocities = torch.from_numpy(np.stack([i[4] for i in items]))
    return Batch(torch.from_numpy(mel), [torch.from_numpy(i[1]).long() for i in items],
                 torch.from_numpy(np.stack([i[2] for i in items])),
                 torch.from_numpy(np.stack([i[3] for i in items])).long(), velocities)
