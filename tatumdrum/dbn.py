"""madmom's downbeat DBN, decoded exactly by beat segments instead of by states.

madmom's bar HMM (Krebs et al. 2015, Böck et al. 2016) walks through one beat's states a frame at a
time, at a fixed interval (tempo), and may change tempo only from the last state of a beat to the
first of the next. A path is therefore a chain of beat segments, each exactly `interval` frames long,
and each segment's observation score is a difference of cumulative sums. Viterbi over segment ends
(frames x beats x tempi) finds the same best path as madmom's Viterbi over all states (frames x
26,000 states with its default 60 tempi), in a fraction of the time and with no back-pointer table
over states: a 10-minute song needs no windows.
"""
from __future__ import annotations

import functools

import numpy as np

MIN_BPM, MAX_BPM = 55.0, 215.0
# madmom's defaults (DBNDownBeatTrackingProcessor).
NUM_TEMPI = 60
TRANSITION_LAMBDA = 100.0
OBSERVATION_LAMBDA = 16
THRESHOLD = 0.05


@functools.lru_cache(maxsize=None)
def tempo_model(min_interval: float, max_interval: float, num_tempi: int, transition_lambda: float,
                observation_lambda: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(intervals in frames, log tempo-transition matrix from x to, frames of each interval that are
    the (down)beat's own observation), exactly as madmom's state space and models build them."""
    from madmom.features.beats_hmm import BeatStateSpace, exponential_transition

    intervals = BeatStateSpace(min_interval, max_interval, num_tempi).intervals.astype(int)
    with np.errstate(divide="ignore"):
        log_transition = np.log(exponential_transition(intervals, intervals, transition_lambda))
    # A state is a beat state when its position in the beat (k / interval) is below 1 / lambda.
    beat_frames = np.array([int(np.sum(np.linspace(0, 1, n, endpoint=False) < 1.0 / observation_lambda))
                            for n in intervals])
    return intervals, log_transition, beat_frames


def observation_log_densities(activations: np.ndarray, observation_lambda: int = OBSERVATION_LAMBDA
                              ) -> np.ndarray:
    """(frames, 3) log densities of no beat, beat and downbeat (madmom's RNN downbeat observation model)."""
    with np.errstate(divide="ignore"):
        return np.stack([np.log((1.0 - np.sum(activations, axis=1)) / (observation_lambda - 1)),
                         np.log(activations[:, 0]), np.log(activations[:, 1])], axis=1)


def decode_bar(log_densities: np.ndarray, beats_per_bar: int, intervals: np.ndarray,
               log_transition: np.ndarray, beat_frames: np.ndarray) -> tuple[float, list[tuple[int, int, int]]]:
    """The best path of one meter's bar HMM as (log probability, segments), each segment (first frame,
    beat in the bar from 0, interval index); the first segment may start before frame 0 and the last
    end after the last frame, where the signal cuts them.

    The path may start in any state (madmom's uniform initial distribution, one transition before the
    first frame) and end in any state.
    """
    cum = np.vstack([np.zeros((1, 3)), np.cumsum(log_densities, axis=0)])
    category = np.array([2] + [1] * (beats_per_bar - 1))  # the downbeat's observation for beat 0
    finite = np.isfinite(log_transition)
    from_lo = np.argmax(finite, axis=0)
    from_hi = len(finite) - np.argmax(finite[::-1], axis=0)
    log_init = -np.log(beats_per_bar * intervals.sum())
    # numba (a dependency of librosa) compiles the loop once and caches it beside the module.
    from .dbn_loops import segment_viterbi

    best, stop, b, j, came_from = segment_viterbi(cum, category, intervals, beat_frames, log_transition,
                                                  from_lo, from_hi, log_init)
    if not np.isfinite(best):
        return -np.inf, []
    segments = []
    while True:  # back, segment by segment, from the one the last frame ends or cuts
        start = stop - int(intervals[j])
        segments.append((start, b, j))
        source = int(came_from[stop, b, j])
        if source < 0:
            break
        j, b, stop = source, (b - 1) % beats_per_bar, start
    return float(best), segments[::-1]


def threshold_activations(activations: np.ndarray, threshold: float) -> tuple[np.ndarray, int]:
    """The span of frames from the first to the last where an activation reaches `threshold`, and its start."""
    idx = np.nonzero(activations >= threshold)[0]
    if len(idx) == 0:
        return activations[:0], 0
    return activations[idx.min(): idx.max() + 1], int(idx.min())


class DownbeatDBN:
    """madmom's DBNDownBeatTrackingProcessor (same parameters, same beats) with the segment decoder."""

    def __init__(self, beats_per_bar: tuple[int, ...] = (3, 4), min_bpm: float = MIN_BPM,
                 max_bpm: float = MAX_BPM, num_tempi: int = NUM_TEMPI, fps: float = 100.0,
                 transition_lambda: float = TRANSITION_LAMBDA, observation_lambda: int = OBSERVATION_LAMBDA,
                 threshold: float = THRESHOLD):
        self.beats_per_bar = tuple(beats_per_bar)
        self.fps = fps
        self.observation_lambda = observation_lambda
        self.threshold = threshold
        self.model = tempo_model(60.0 * fps / max_bpm, 60.0 * fps / min_bpm, num_tempi, transition_lambda,
                                 observation_lambda)

    def warm_up(self) -> None:
        """Load the compiled loop (numba's disk cache; compiled on the first run after installing) by
        decoding a flat activation two of the slowest beats long; run it in a thread while the beat
        networks work."""
        self(np.full((2 * int(self.model[0].max()) + 2, 2), 0.1))

    def __call__(self, activations: np.ndarray) -> np.ndarray:
        """(beats, 2): time in seconds and position in the bar (from 1) of each beat, as madmom returns them."""
        activations, first = threshold_activations(np.asarray(activations), self.threshold)
        intervals = self.model[0]
        if len(activations) <= intervals.max():
            return np.zeros((0, 2))
        # In the activations' own precision, as madmom computes them (float32 from its networks).
        log_densities = observation_log_densities(activations, self.observation_lambda).astype(float)
        results = [decode_bar(log_densities, n, *self.model) for n in self.beats_per_bar]
        best = int(np.argmax([r[0] for r in results]))
        _, segments = results[best]
        beat_frames = self.model[2]
        beats = []
        for start, b, j in segments:
            # A segment's beat range is its first beat_frames frames (fewer where the signal cuts it);
            # madmom puts the beat at the range's highest activation, beat or downbeat.
            lo, hi = max(start, 0), min(start + int(beat_frames[j]), len(activations))
            if hi > lo:
                beats.append((int(np.argmax(activations[lo:hi]) // 2 + lo), b + 1))
        if not beats:
            return np.zeros((0, 2))
        out = np.array(beats, dtype=float)
        out[:, 0] = (out[:, 0] + first) / self.fps
        return out
