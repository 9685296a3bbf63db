"""The tatum grid: beats split into equal tatums, and the frame spans that eq. 1 pools over."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BeatGrid:
    """Beat times with their position in the bar (1 = downbeat), as madmom's downbeat tracker gives."""

    times: np.ndarray  # (N,) seconds, strictly increasing
    positions: np.ndarray  # (N,) int, 1-based position of each beat in its bar

    def __post_init__(self) -> None:
        if len(self.times) != len(self.positions):
            raise ValueError("beat times and positions differ in length")
        if len(self.times) < 2:
            raise ValueError("a beat grid needs at least two beats")
        if np.any(np.diff(self.times) <= 0):
            raise ValueError("beat times must increase strictly")
        if np.any(np.asarray(self.positions) < 1):
            raise ValueError("bar positions are 1-based (1 = downbeat)")

    @classmethod
    def regular(cls, bpm: float, n_beats: int, beats_per_bar: int = 4, start: float = 0.0) -> "BeatGrid":
        """A constant-tempo grid whose first beat is a downbeat."""
        times = start + np.arange(n_beats) * 60.0 / bpm
        positions = np.arange(n_beats) % beats_per_bar + 1
        return cls(times, positions)


def extend_beats(grid: BeatGrid, duration: float) -> BeatGrid:
    """Extrapolate the grid with its first and last intervals so that it covers [0, duration].

    Beat trackers start and stop a little inside the audio; drums played before the first tracked
    beat would otherwise be lost. Beats are added before the first one until it lies no later than
    an eighth of a beat (half a 16th) after zero, so the audio's first moments always lie on the
    grid; the first beat may then start before zero (its tatums there hold no onsets). Bar
    positions continue the tracked metre.
    """
    times = list(grid.times)
    positions = list(grid.positions)
    meter = int(max(positions))
    first_step = times[1] - times[0]
    while times[0] > first_step / 8:
        times.insert(0, times[0] - first_step)
        positions.insert(0, (positions[0] - 2) % meter + 1)
    last_step = times[-1] - times[-2]
    while times[-1] + last_step <= duration:
        times.append(times[-1] + last_step)
        positions.append(positions[-1] % meter + 1)
    return BeatGrid(np.asarray(times), np.asarray(positions, dtype=int))


def interpolate_tatums(beat_times: np.ndarray, tatums_per_beat: int = 4) -> np.ndarray:
    """Split each beat into `tatums_per_beat` equal tatums.

    Returns N * tatums_per_beat times: the tatums of the last beat continue the last inter-beat
    interval, so every beat owns the same number of tatums and bars keep whole beats.
    """
    beat_times = np.asarray(beat_times, dtype=float)
    if tatums_per_beat < 1:
        raise ValueError("tatums_per_beat must be at least 1")
    ends = np.append(beat_times[1:], beat_times[-1] + (beat_times[-1] - beat_times[-2]))
    fractions = np.arange(tatums_per_beat) / tatums_per_beat
    return (beat_times[:, None] + (ends - beat_times)[:, None] * fractions[None, :]).reshape(-1)


def tatum_boundaries(tatum_times: np.ndarray) -> np.ndarray:
    """Midpoints between neighbouring tatums, with b_0 = b_1 and b_{M+1} = b_M (eq. 1).

    Returns M + 1 boundaries: tatum m owns the times in [boundaries[m], boundaries[m + 1]).
    """
    b = np.asarray(tatum_times, dtype=float)
    padded = np.concatenate([b[:1], b, b[-1:]])
    return (padded[:-1] + padded[1:]) / 2.0


def tatum_frame_spans(tatum_times: np.ndarray, fps: float, n_frames: int) -> np.ndarray:
    """The frame range [start, stop) that each tatum max-pools over in eq. 1.

    Every span holds at least one frame, so a tatum that falls between two frame centres (very fast
    tempo) still sees the nearest frame instead of an empty max. Read literally, eq. 1's last span
    [(b_{M-1} + b_M) / 2, b_M) stops short of the last tatum's own frame; it is included here.
    """
    bounds = tatum_boundaries(tatum_times) * fps
    starts = np.ceil(bounds[:-1] - 1e-9).astype(int)
    stops = np.ceil(bounds[1:] - 1e-9).astype(int)
    stops[-1] = int(np.floor(bounds[-1] + 1e-9)) + 1
    starts = np.clip(starts, 0, max(n_frames - 1, 0))
    stops = np.clip(np.maximum(stops, starts + 1), 1, n_frames)
    return np.stack([starts, stops], axis=1)


def quantize_to_tatums(onset_times: np.ndarray, tatum_times: np.ndarray) -> np.ndarray:
    """Index of the nearest tatum for each onset time (section IV-B)."""
    onset_times = np.asarray(onset_times, dtype=float)
    tatum_times = np.asarray(tatum_times, dtype=float)
    if len(onset_times) == 0:
        return np.zeros(0, dtype=int)
    right = np.clip(np.searchsorted(tatum_times, onset_times), 1, len(tatum_times) - 1)
    left = right - 1
    choose_left = np.abs(onset_times - tatum_times[left]) <= np.abs(tatum_times[right] - onset_times)
    return np.where(choose_left, left, right)
