"""The compiled loop of dbn.py: Viterbi over beat segments of madmom's bar HMM (numba, cached on disk).

Kept apart so that numba is imported only when beats are decoded, and its functions sit at module
level, where numba's on-disk cache finds them again in the next process.
"""
import numba
import numpy as np


@numba.njit(cache=True)
def score(cum: np.ndarray, start: int, length: int, beat_len: int, category: int) -> float:
    """Observation score of `length` frames from `start`, the first `beat_len` of them (down)beat frames."""
    return (cum[start + beat_len, category] - cum[start, category]) + (cum[start + length, 0] - cum[start + beat_len, 0])


@numba.njit(cache=True)
def segment_viterbi(cum, category, intervals, beat_frames, log_transition, from_lo, from_hi, log_init):
    """(log probability, stop frame, beat, interval, came_from) of the best path: its last segment ends at
    `stop` (past the last frame where the signal cuts it), and came_from leads back segment by segment."""
    n_frames = cum.shape[0] - 1
    n_beats, n_tempi = category.shape[0], intervals.shape[0]
    ring = intervals.max() + 1  # a segment ends at most this many frames after it is entered
    # ends[t % ring, b, j]: best log probability of a path whose beat-b segment at interval j ends at
    # frame t - 1; came_from[t, b, j]: the interval of the segment before it (-1: the path starts there).
    ends = np.full((ring, n_beats, n_tempi), -np.inf)
    came_from = np.full((n_frames + 1, n_beats, n_tempi), -1, np.int16)
    # A path that starts in state k of a segment at frame 0 ends that segment at t = interval - k.
    # madmom's initial distribution is over the states before frame 0, so a path that starts on a
    # segment's first state has made a tempo transition into it: the best one counts.
    for j in range(n_tempi):
        best_entry = -np.inf
        for i in range(from_lo[j], from_hi[j]):
            best_entry = max(best_entry, log_transition[i, j])
        for t in range(1, min(intervals[j], n_frames) + 1):
            beat_len = min(max(beat_frames[j] - (intervals[j] - t), 0), t)
            first = best_entry if t == intervals[j] else 0.0
            for b in range(n_beats):
                ends[t % ring, b, j] = log_init + first + score(cum, 0, t, beat_len, category[b])
    # The best path cut by the last frame: entered at some t, its segment longer than what is left.
    cut, cut_t, cut_b, cut_j, cut_from = -np.inf, 0, 0, 0, -1
    for t in range(1, n_frames):
        now = t % ring
        left = n_frames - t
        for b in range(n_beats):
            previous = (b - 1) % n_beats
            for j in range(n_tempi):
                enter, source = -np.inf, -1
                for i in range(from_lo[j], from_hi[j]):
                    value = ends[now, previous, i] + log_transition[i, j]
                    if value > enter:
                        enter, source = value, i
                if source < 0:
                    continue
                if intervals[j] <= left:
                    stop = t + intervals[j]
                    value = enter + score(cum, t, intervals[j], beat_frames[j], category[b])
                    if value > ends[stop % ring, b, j]:
                        ends[stop % ring, b, j] = value
                        came_from[stop, b, j] = source
                else:
                    value = enter + score(cum, t, left, min(beat_frames[j], left), category[b])
                    if value > cut:
                        cut, cut_t, cut_b, cut_j, cut_from = value, t, b, j, source
        ends[now] = -np.inf  # this slot is frame t + ring's from now on
    # A path ends with a segment that ends on the last frame, or with the best cut one.
    last = n_frames % ring
    best, stop, best_b, best_j = -np.inf, n_frames, 0, 0
    for b in range(n_beats):
        for j in range(n_tempi):
            if ends[last, b, j] > best:
                best, best_b, best_j = ends[last, b, j], b, j
    if cut > best:
        # Back-tracking reads the cut segment as one that ends `intervals` frames after its entry.
        best, stop, best_b, best_j = cut, cut_t + intervals[cut_j], cut_b, cut_j
        extra = np.full((stop - n_frames, n_beats, n_tempi), -1, np.int16)
        came_from = np.concatenate((came_from, extra))
        came_from[stop, best_b, best_j] = cut_from
    return best, stop, best_b, best_j, came_from
