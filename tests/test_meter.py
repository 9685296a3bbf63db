"""Bars from the drums: the metrical model corrects a wrong downbeat phase or meter of real madmom bars."""
from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
import numpy as np
import pytest
from tatumdrum.features import load_audio
from tatumdrum.inference import Transcriber, load_metrical_model
from tatumdrum.instruments import THREE_CLASSES
from tatumdrum.meter import MetricalModel, choose_bars, parse_meter, relabel, shift_downbeats, with_bars
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"


@pytest.fixture(scope="module")
def tracked():
    """The example transcribed with real madmom bars, and those bars: 4/4, downbeats where the kick opens bars."""
    transcriber = Transcriber.load(correct_bars=False)
    score, _ = transcriber.transcribe_audio(load_audio(CLIP))
    return score


def downbeats(score: DrumScore) -> np.ndarray:
    return score.beats.times[score.beats.positions == 1]


def test_the_bundled_model_knows_where_4_4_bars_begin():
    model = load_metrical_model()
    assert model is not None and set(model.tables) == {3, 4}
    four = model.tables[4]  # (BD, SD, HH) x 16 sixteenths
    assert four[0, 0] == four[0].max() and four[1, 4] > 2 * four[1, 0] and four[1, 12] > 2 * four[1, 0]


def test_fit_counts_onsets_per_position():
    grid = BeatGrid.regular(120.0, 16)
    on = np.zeros((3, 64), bool)
    on[0, ::16] = True  # kick on every downbeat
    model = MetricalModel.fit([DrumScore(grid, 4, on, THREE_CLASSES)])
    assert model.tables[4][0, 0] == pytest.approx(5 / 6) and model.tables[4][0, 1] == pytest.approx(1 / 6)


def test_a_one_beat_phase_error_is_corrected(tracked):
    madmom_bars = downbeats(tracked)
    assert int(tracked.beats.positions.max()) == 4 and len(madmom_bars) >= 8
    for wrong in (1, 3):
        broken = with_bars(tracked, shift_downbeats(tracked.beats, wrong))
        fixed = choose_bars(broken, load_metrical_model())
        np.testing.assert_allclose(downbeats(fixed), madmom_bars)


def test_a_4_4_groove_read_in_3_4_is_corrected(tracked):
    broken = with_bars(tracked, relabel(tracked.beats, 3, 0))
    fixed = choose_bars(broken, load_metrical_model())
    assert int(fixed.beats.positions.max()) == 4
    np.testing.assert_allclose(downbeats(fixed), downbeats(tracked))


def test_forced_meter_and_shift(tracked):
    three = choose_bars(tracked, load_metrical_model(), meter=3)
    assert int(three.beats.positions.max()) == 3
    moved = choose_bars(tracked, None, correct=False, shift=1)
    np.testing.assert_allclose(downbeats(moved), tracked.beats.times[tracked.beats.positions == 2])  # one beat later
    assert parse_meter("5/4") == 5
    with pytest.raises(ValueError):
        parse_meter("6/8")


def test_cli_meter_option_writes_the_bars(tmp_path):
    out = tmp_path / "three.musicxml"
    result = subprocess.run([sys.executable, "-m", "tatumdrum.cli", "transcribe", str(CLIP), "-o", str(out),
                             "--meter", "3/4", "--separation", "none"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    beats = {m.findtext("attributes/time/beats") for m in ET.parse(out).getroot().iter("measure")} - {None}
    assert beats == {"3"}
