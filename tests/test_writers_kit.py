"""The whole kit in every writer: GM notes and velocities in MIDI, noteheads, lines, accents and ghost
notes in MusicXML (read back by music21), velocities in JSON, the PNG picture."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import music21
import numpy as np
import pretty_midi

from tatumdrum.instruments import SEVEN_CLASSES, THREE_CLASSES
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid
from tatumdrum.writers.jsonout import score_to_dict
from tatumdrum.writers.midi import read_midi_onsets, write_midi
from tatumdrum.writers.musicxml import write_musicxml


def seven_class_score() -> DrumScore:
    """Two bars of 4/4: kick, snare, closed and open hats, a tom fill, a crash on one and a ride bar."""
    grid = BeatGrid.regular(100.0, 8, start=0.3)
    on = np.zeros((7, 32), dtype=bool)
    vel = np.zeros((7, 32), dtype=np.float32)
    row = {i.abbrev: k for k, i in enumerate(SEVEN_CLASSES)}
    for m, drum, v in [(0, "BD", 100), (0, "CR", 120), (4, "SD", 110), (6, "SD", 30), (8, "BD", 90),
                       (12, "SD", 125), (2, "HH", 80), (6, "OH", 90), (10, "HH", 70), (14, "HH", 75),
                       (16, "BD", 100), (16, "RD", 90), (18, "RD", 60), (20, "RD", 80), (20, "SD", 100),
                       (24, "TT", 100), (26, "TT", 100), (28, "TT", 110), (30, "TT", 40)]:
        on[row[drum], m] = True
        vel[row[drum], m] = v / 127
    return DrumScore(grid, 4, on, SEVEN_CLASSES, probabilities=on * 0.9, velocities=vel)


def test_midi_has_the_gm_notes_and_velocities_of_every_class(tmp_path):
    score = seven_class_score()
    path = tmp_path / "seven.mid"
    write_midi(score, path)
    pm = pretty_midi.PrettyMIDI(str(path))
    notes = sorted((round(n.start, 3), n.pitch, n.velocity) for n in pm.instruments[0].notes)
    expected = []
    for k, inst in enumerate(SEVEN_CLASSES):
        for m in np.flatnonzero(score.onsets[k]):
            expected.append((round(float(score.tatum_times[m]), 3), inst.gm_note,
                             int(round(127 * score.velocities[k, m]))))
    assert notes == sorted(expected)
    assert {p for _, p, _ in notes} == {36, 38, 42, 46, 47, 49, 51}
    # Read back, each class keeps its own onsets; a three-class reader folds the open hat into the hi-hat.
    back = read_midi_onsets(path, SEVEN_CLASSES)
    assert len(back["OH"]) == 1 and len(back["TT"]) == 4 and len(back["CR"]) == 1 and len(back["RD"]) == 3
    assert len(read_midi_onsets(path, THREE_CLASSES)["HH"]) == 4


def test_musicxml_noteheads_lines_accents_and_ghost_notes(tmp_path):
    score = seven_class_score()
    path = tmp_path / "seven.musicxml"
    write_musicxml(score, path)
    root = ET.parse(path).getroot()
    by_instrument: dict[str, list[ET.Element]] = {}
    names = {si.get("id"): si.findtext("instrument-name") for si in root.iter("score-instrument")}
    for note in root.iter("note"):
        inst = note.find("instrument")
        if inst is not None:
            by_instrument.setdefault(names[inst.get("id")], []).append(note)
    heads = {name: {n.findtext("notehead") or "normal" for n in notes} for name, notes in by_instrument.items()}
    assert heads["Hi-Hat"] == {"x"} and heads["Open Hi-Hat"] == {"circle-x"}
    assert heads["Crash Cymbal"] == {"x"} and heads["Ride Cymbal"] == {"x"}
    lines = {name: {(n.findtext("unpitched/display-step"), n.findtext("unpitched/display-octave")) for n in notes}
             for name, notes in by_instrument.items()}
    assert lines["Toms"] == {("D", "5")} and lines["Crash Cymbal"] == {("A", "5")} and lines["Ride Cymbal"] == {("F", "5")}
    accents = [n for n in root.iter("note") if n.find("notations/articulations/accent") is not None]
    ghosts = [n for n in root.iter("note") if n.find("notehead") is not None
              and n.find("notehead").get("parentheses") == "yes"]
    # Accents: crash 120, snare 110 and 125, tom 110; ghosts: snare 30, tom 40.
    assert len(accents) == 4 and len(ghosts) == 2
    # music21 reads it back with every stroke.
    parsed = music21.converter.parse(str(path))
    strokes = sum(len(getattr(n, "notes", [n])) for n in parsed.recurse().notes)
    assert strokes == int(score.onsets.sum())


def test_json_carries_velocities_per_onset():
    data = score_to_dict(seven_class_score())
    assert [i["abbrev"] for i in data["instruments"]] == ["BD", "SD", "HH", "OH", "TT", "CR", "RD"]
    assert data["velocities"]["SD"] == [110, 30, 125, 100] and len(data["onsets"]["TT"]) == 4


def test_png_picture_of_a_transcription(tmp_path):
    from PIL import Image

    from tatumdrum.writers import write_score

    score = seven_class_score()
    path = write_score(score, tmp_path / "score.png")
    image = Image.open(path)
    assert image.format == "PNG" and image.size[0] >= 640 and image.size[1] > 200
    # Strokes are drawn in red: the picture holds red pixels, and an empty score holds none.
    red = lambda im: int(np.sum((np.asarray(im.convert("RGB"))[..., 0] > 200) &
                                (np.asarray(im.convert("RGB"))[..., 1] < 80)))
    empty = DrumScore(score.beats, 4, np.zeros_like(score.onsets), SEVEN_CLASSES)
    assert red(image) > 50 and red(Image.open(write_score(empty, tmp_path / "empty.png"))) == 0
