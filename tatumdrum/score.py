"""`DrumScore`: a K x M drum score on a song's own tatum grid, with its bars."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .instruments import DEFAULT_INSTRUMENTS, DrumInstrument
from .tatums import BeatGrid, interpolate_tatums


def merge_rows(matrix: np.ndarray, rows: list[int | None], n_rows: int) -> np.ndarray:
    """`matrix` (targets, velocities) with source row k moved to row `rows[k]` (None: dropped); rows that
    meet keep the larger value, so a tatum struck in either is struck, at the louder velocity."""
    out = np.zeros((n_rows, *matrix.shape[1:]), matrix.dtype)
    for k, row in enumerate(rows):
        if row is not None:
            out[row] = np.maximum(out[row], matrix[k])
    return out


@dataclass
class DrumScore:
    """Onsets of K drums at M tatums, the beats those tatums split, and the bar structure.

    `onsets[k, m]` says whether instrument k is struck at tatum m. `probabilities` holds the
    model's phi when the score came from a model (None for scores read from annotations).
    """

    beats: BeatGrid
    tatums_per_beat: int
    onsets: np.ndarray  # (K, M) bool
    instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
    probabilities: np.ndarray | None = None  # (K, M) float in [0, 1]
    # How hard each onset is struck, MIDI velocity / 127, where a model or the annotation says.
    velocities: np.ndarray | None = None  # (K, M) float in [0, 1]
    # Where the score came from (source file, model, threshold, separation, audio duration), for JSON.
    meta: dict = field(default_factory=dict)
    tatum_times: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.onsets = np.asarray(self.onsets, dtype=bool)
        if self.probabilities is not None:
            self.probabilities = np.asarray(self.probabilities, dtype=np.float32)
        if self.velocities is not None:
            self.velocities = np.asarray(self.velocities, dtype=np.float32)
        self.tatum_times = interpolate_tatums(self.beats.times, self.tatums_per_beat)
        expected = (len(self.instruments), len(self.tatum_times))
        if self.onsets.shape != expected:
            raise ValueError(f"onsets have shape {self.onsets.shape}, expected {expected}")
        if self.probabilities is not None and self.probabilities.shape != expected:
            raise ValueError("probabilities and onsets differ in shape")
        if self.velocities is not None and self.velocities.shape != expected:
            raise ValueError("velocities and onsets differ in shape")

    @property
    def n_tatums(self) -> int:
        return self.onsets.shape[1]

    def bars(self) -> list[tuple[int, int]]:
        """Bars as [first_beat, stop_beat) index pairs; a pickup before the first downbeat is a bar too."""
        downbeats = np.flatnonzero(self.beats.positions == 1).tolist()
        n = len(self.beats.times)
        starts = sorted(set([0] + downbeats))
        return [(s, e) for s, e in zip(starts, starts[1:] + [n]) if e > s]

    def bar_tatum_lengths(self) -> np.ndarray:
        """Number of tatums in each tatum's bar (16 in 4/4 at 4 tatums per beat): the skip of eq. 3.

        A pickup at the start or a bar cut short at the end is a fragment of a full bar, so it
        takes the length of its neighbouring bar, not its own.
        """
        bars = self.bars()
        beats = [stop - start for start, stop in bars]
        if len(beats) > 1:
            beats[0] = max(beats[0], beats[1])
            beats[-1] = max(beats[-1], beats[-2])
        lengths = np.zeros(self.n_tatums, dtype=int)
        for (start, stop), n_beats in zip(bars, beats):
            lengths[start * self.tatums_per_beat : stop * self.tatums_per_beat] = n_beats * self.tatums_per_beat
        return lengths

    def onset_times(self) -> dict[str, np.ndarray]:
        """Onset times in seconds for each instrument, keyed by abbreviation."""
        return {inst.abbrev: self.tatum_times[self.onsets[k]] for k, inst in enumerate(self.instruments)}
