"""Real madmom beat tracking: the example clip's tempo and bars, decoded as madmom's default processor does."""
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


def test_the_tracker_decodes_as_madmoms_default_processor(tracker):
    """Beats and bar positions are madmom's DBNDownBeatTrackingProcessor's with its defaults (60 tempi),
    on a 65-s song decoded in one pass."""
    from madmom.features.downbeats import DBNDownBeatTrackingProcessor

    activations = tracker.activations(np.tile(load_audio(CLIP), 3))
    ours = tracker.decode(activations)
    madmom = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], min_bpm=55.0, max_bpm=215.0, fps=100)(activations)
    assert len(ours) > 100
    np.testing.assert_array_equal(ours, madmom)


def test_silence_is_a_clear_error(tracker):
    with pytest.raises(BeatTrackingError):
        tracker(np.zeros(44100 * 3, dtype=np.float32))
