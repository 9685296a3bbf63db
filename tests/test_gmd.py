"""GMD reading: velocities and onsets from the MIDI."""
from __future__ import annotations

import pretty_midi
import pytest

from tatumdrum.data.gmd import drum_hits, quantize_onsets
from tatumdrum.instruments import SEVEN_CLASSES
from tatumdrum.tatums import BeatGrid


def test_velocities_come_from_the_midi(tmp_path):
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    drums = pretty_midi.Instrument(0, is_drum=True)
    for t, note, v in [(0.0, 36, 110), (0.25, 42, 40), (0.5, 38, 127), (0.5, 40, 60), (0.75, 46, 90)]:
        drums.notes.append(pretty_midi.Note(v, note, t, t + 0.05))
    pm.instruments.append(drums)
    hits = drum_hits(pm, SEVEN_CLASSES)
    score, _ = quantize_onsets([t for t, _ in hits], BeatGrid.regular(120.0, 4), 4, SEVEN_CLASSES,
                               velocities=[v for _, v in hits])
    assert score.velocities[0, 0] == pytest.approx(110 / 127)
    assert score.velocities[1, 4] == pytest.approx(127 / 127)  # the louder of two strokes on one tatum
    assert score.velocities[2, 2] == pytest.approx(40 / 127) and score.velocities[3, 6] == pytest.approx(90 / 127)
