"""Real madmom beat tracking: the example clip's tempo and bars, and chunked tracking of long audio."""
from pathlib import Path
import numpy as np
import pytest
from tatumdrum.beats import BeatTracker, BeatTrackingError
from tatumdrum.features import load_audio

CLIP = Path(__file__).resolve().parents[1] / "examples" / "groove.wav"


@pytest.fixture(scope="module")
def tracker() -> BeatTracker:
    return BeatTracker()


def test_tracks_the_example_at_100_bpm_in_four(tracker):
    grid = tracker(load_audio(CLIP))
    assert np.median(np.diff(grid.times)) == pytest.approx(0.6, abs=0.01)
    assert set(grid.positions.tolist()) == {1, 2, 3, 4}
    # The grid is extended to cover the whole clip.
    assert grid.times[0] < 0.6 and grid.times[-1] > len(load_audio(CLIP)) / 44100 - 0.6


def test_chunked_tracking_agrees_with_one_pass(tracker):
    activations = tracker.activations(np.tile(load_audio(CLIP), 3))  # 65 s
    whole = tracker._decode(activations)
    tracker.chunk_seconds, tracker.overlap_seconds = 25.0, 8.0
    try:
        chunked = tracker._decode_in_chunks(activations)
    finally:
        tracker.chunk_seconds, tracker.overlap_seconds = 240.0, 20.0
    distance = np.abs(whole[:, None, 0] - chunked[None, :, 0])
    nearest = distance.argmin(axis=1)
    assert np.mean(distance.min(axis=1) < 0.03) > 0.95
    assert np.all(np.diff(chunked[:, 0]) > 0.4)  # no doubled beats at the joins
    matched = distance.min(axis=1) < 0.03
    assert np.mean(whole[matched, 1] == chunked[nearest[matched], 1]) > 0.95


def test_silence_is_a_clear_error(tracker):
    with pytest.raises(BeatTrackingError):
        tracker(np.zeros(44100 * 3, dtype=np.float32))
