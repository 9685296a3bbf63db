"""Playing variations edit the MIDI, so that the targets follow."""
from __future__ import annotations

import numpy as np
import pretty_midi

from grooves import four_bar_groove
from tatumdrum.data.gmd import drum_hits
from tatumdrum.data.playing import (cross_stick_backbeat, drop_time_keeping, ghost_notes, open_hihats, ride_for_hihat,
                                    section_crashes, sparse_hihats, vary_playing)
from tatumdrum.instruments import SEVEN_CLASSES, note_to_row


def test_playing_variations_edit_the_midi_that_becomes_targets():
    pm = four_bar_groove()
    ride_for_hihat(pm)
    pitches = [n.pitch for n in pm.instruments[0].notes]
    assert 42 not in pitches and pitches.count(51) == 32
    pm = four_bar_groove()
    ride_for_hihat(pm, 49)  # riding the crash
    pitches = [n.pitch for n in pm.instruments[0].notes]
    assert 42 not in pitches and pitches.count(49) == 32 and 51 not in pitches
    assert note_to_row(SEVEN_CLASSES)[49] == 5  # targets: crash, not hi-hat
    drawn = set()
    for seed in range(60):
        drawn.update(vary_playing(four_bar_groove(), np.random.default_rng(seed)))
    assert {"ride", "crash_ride", "open_hh", "crashes", "ghosts"} <= drawn
    assert not {"no_hats", "cross_stick", "sparse_hats"} & drawn  # off unless a build asks for them
    pm = four_bar_groove()
    pm.instruments[0].notes.append(pretty_midi.Note(30, 38, 1.375, 1.4))  # a ghost note between beats
    cross_stick_backbeat(pm)
    assert [n.start for n in pm.instruments[0].notes if n.pitch == 37] == [1.0, 3.0, 5.0, 7.0]
    assert [n.start for n in pm.instruments[0].notes if n.pitch == 38] == [1.375]
    pm = four_bar_groove()
    assert "no_hats" in vary_playing(pm, np.random.default_rng(0), {"no_hats": 1.0})
    assert not any(n.pitch in (42, 44, 46, 51) for n in pm.instruments[0].notes)
    pm = four_bar_groove()
    drop_time_keeping(pm)
    assert sorted({n.pitch for n in pm.instruments[0].notes}) == [36, 38]
    hat_row = [i.abbrev for i in SEVEN_CLASSES].index("HH")
    assert not drum_hits(pm, SEVEN_CLASSES)[hat_row][0].size  # no hi-hat target either
    kept = set()
    for seed in range(8):
        pm = four_bar_groove()
        for n in pm.instruments[0].notes[:4]:
            n.start += 0.012 if n.pitch == 42 and n.start > 0 else 0.0  # human timing, a little late
        pm.instruments[0].notes[8].start -= 0.015  # the hat on beat 3 (1.0 s), a little early
        assert "sparse_hats" in vary_playing(pm, np.random.default_rng(seed), {"sparse_hats": 1.0, "ride": 0.0,
                                                                              "crash_ride": 0.0, "open_hh": 0.0,
                                                                              "crashes": 0.0, "ghosts": 0.0})
        hats = sorted(round(n.start * 2) / 2 for n in pm.instruments[0].notes if n.pitch == 42)
        kept.add(tuple(hats))
        assert sorted(n.pitch for n in pm.instruments[0].notes if n.pitch != 42) == [36] * 4 + [38] * 4
    # Quarter-note hats (every beat) and hats on every other beat, none on the 8ths between.
    assert kept == {tuple(np.arange(0, 8, 0.5)), tuple(np.arange(0, 8, 1.0))}
    pm = four_bar_groove()
    sparse_hihats(pm, np.random.default_rng(0))
    assert not any(n.pitch == 42 and (n.start / 0.5) % 1 for n in pm.instruments[0].notes)
    pm = four_bar_groove()
    open_hihats(pm, np.random.default_rng(0))
    opened = [n.start for n in pm.instruments[0].notes if n.pitch == 46]
    assert opened and all(abs((t / 0.5) % 1 - 0.5) < 1e-6 for t in opened)  # only on the "and"
    pm = four_bar_groove()
    section_crashes(pm, np.random.default_rng(0))
    crashes = [n.start for n in pm.instruments[0].notes if n.pitch in (49, 57)]
    assert crashes and crashes[0] == 0.0
    assert not any(n.pitch == 42 and n.start == 0.0 for n in pm.instruments[0].notes)
    pm = four_bar_groove()
    ghost_notes(pm, np.random.default_rng(0), rate=1.0)
    ghosts = [n for n in pm.instruments[0].notes if n.pitch == 38 and n.velocity < 40]
    assert len(ghosts) >= 8
    # The targets follow the edited MIDI.
    hits = drum_hits(pm, SEVEN_CLASSES)
    assert len(hits[1][0]) == 4 + len(ghosts)  # the groove's 4 backbeats and the ghosts
