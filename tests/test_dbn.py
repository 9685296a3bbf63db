"""The segment decoder of madmom's bar DBN finds madmom's own best path: the same beats, bar positions and
log probabilities, on real activations and on constructed ones (3/4, tempo changes, cut ends)."""
from pathlib import Path

import numpy as np
import pytest
from madmom.features.downbeats import DBNDownBeatTrackingProcessor

from tatumdrum.beats import BeatTracker
from tatumdrum.dbn import DownbeatDBN, decode_bar, observation_log_densities, threshold_activations
from tatumdrum.features import load_audio

CLIP = Path(__file__).resolve().parents[1] / "examples" / "groove.wav"


def pulse(beat_seconds: list[float], meter: int, fps: int = 100, seed: int = 0) -> np.ndarray:
    """(frames, 2) activations with a beat peak at each time, a downbeat peak on every meter-th, and noise."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(beat_seconds)
    act = np.zeros((int((times[-1] + 1.0) * fps), 2))
    act[:, 0] = rng.uniform(0.0, 0.05, len(act))
    act[:, 1] = rng.uniform(0.0, 0.03, len(act))
    for k, t in enumerate(times):
        frame = int(round(t * fps))
        column = 1 if k % meter == 0 else 0
        act[frame - 1: frame + 2, column] = [0.3, rng.uniform(0.6, 0.9), 0.3]
    return act


@pytest.fixture(scope="module")
def real_activations() -> np.ndarray:
    return BeatTracker().activations(load_audio(CLIP))


def madmom_default(meters=(3, 4)) -> DBNDownBeatTrackingProcessor:
    return DBNDownBeatTrackingProcessor(beats_per_bar=list(meters), min_bpm=55.0, max_bpm=215.0, fps=100)


CASES = {
    "4/4 at 100 BPM": pulse([0.6] * 40, 4),
    "3/4 waltz at 150 BPM": pulse([0.4] * 45, 3, seed=1),
    "accelerando 90 to 140 BPM": pulse(list(np.linspace(60 / 90, 60 / 140, 48)), 4, seed=2),
    "loud start, cut mid-beat": pulse([0.5] * 30, 4, seed=3)[37:-23],
}


@pytest.mark.parametrize("name", list(CASES))
def test_beats_equal_madmoms_processor(name):
    act = CASES[name]
    np.testing.assert_array_equal(DownbeatDBN()(act), madmom_default()(act))


def test_real_song_beats_and_meter_probabilities_equal_madmoms(real_activations):
    np.testing.assert_array_equal(DownbeatDBN()(real_activations), madmom_default()(real_activations))
    act, _ = threshold_activations(real_activations.astype(float), 0.05)
    decoder, reference = DownbeatDBN(), madmom_default()
    for meter, hmm in zip((3, 4), reference.hmms):
        ours, segments = decode_bar(observation_log_densities(act), meter, *decoder.model)
        _, theirs = hmm.viterbi(act)
        assert ours == pytest.approx(theirs, abs=1e-6)
        # Segments tile the frames: each starts where the one before it ends, beats count round the bar.
        intervals = decoder.model[0]
        for (start, beat, tempo), (next_start, next_beat, _) in zip(segments, segments[1:]):
            assert next_start == start + intervals[tempo] and next_beat == (beat + 1) % meter


def test_the_waltz_is_decoded_in_three():
    beats = DownbeatDBN()(CASES["3/4 waltz at 150 BPM"])
    assert set(beats[:, 1].astype(int)) == {1, 2, 3}
    assert np.median(np.diff(beats[:, 0])) == pytest.approx(0.4, abs=0.011)


def test_no_pulse_or_too_short_gives_no_beats():
    assert len(DownbeatDBN()(np.zeros((3000, 2)))) == 0
    assert len(DownbeatDBN()(pulse([0.5] * 2, 4)[:80])) == 0
