"""Score writers: MIDI, MusicXML and JSON written from hand-made scores and read back."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path
import mido
import music21
import numpy as np
import pretty_midi
import pytest
from tatumdrum.instruments import DEFAULT_INSTRUMENTS
from tatumdrum.writers.midi import read_midi_onsets, write_midi
from tatumdrum.writers.musicxml import write_musicxml
from tatumdrum.writers.jsonout import write_json
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid
from tatumdrum import writers
from tatumdrum.writers import UnsupportedFormatError, check_output_path, write_score

TOL = 1e-3


def random_score(times, positions, tatums_per_beat=4, seed=0, probabilities=False) -> DrumScore:
    rng = np.random.default_rng(seed)
    shape = (len(DEFAULT_INSTRUMENTS), len(times) * tatums_per_beat)
    phi = rng.random(shape)
    phi[2] = np.maximum(phi[2], 0.5 * rng.random(shape[1]) + 0.2)  # a busier hi-hat
    onsets = phi >= 0.65
    return DrumScore(BeatGrid(np.asarray(times, float), np.asarray(positions)), tatums_per_beat, onsets,
                     probabilities=phi if probabilities else None)


def regular() -> DrumScore:
    grid = BeatGrid.regular(118.0, 16, start=0.413)
    return random_score(grid.times, grid.positions, seed=1, probabilities=True)


def pickup() -> DrumScore:
    # Two pickup beats, then 4/4 bars.
    times = 0.25 + np.arange(14) * 0.52
    return random_score(times, [3, 4] + [1, 2, 3, 4] * 3, seed=2)


def tempo_change_and_three_four() -> DrumScore:
    # 4/4 at 0.5 s, then 3/4 at 0.4 s with a slightly wobbly grid, then 4/4 again.
    intervals = [0.5] * 8 + [0.4, 0.41, 0.39, 0.4, 0.42, 0.4] + [0.45] * 8
    times = 0.8 + np.concatenate([[0.0], np.cumsum(intervals)])
    positions = [1, 2, 3, 4] * 2 + [1, 2, 3] * 2 + [1, 2, 3, 4] * 2 + [1]
    return random_score(times, positions, seed=3)


def triplets() -> DrumScore:
    grid = BeatGrid.regular(96.0, 12, beats_per_bar=3, start=0.6)
    return random_score(grid.times, grid.positions, tatums_per_beat=3, seed=4)


SCORES = {
    "regular": regular,
    "pickup": pickup,
    "tempo_change_3_4": tempo_change_and_three_four,
    "triplets": triplets,
}


@pytest.fixture(params=list(SCORES))
def score(request) -> DrumScore:
    return SCORES[request.param]()


def mido_note_times(path: Path) -> dict[int, list[float]]:
    """note_on times in seconds as mido computes them from the merged tempo map."""
    times: dict[int, list[float]] = {}
    now = 0.0
    for msg in mido.MidiFile(str(path)):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            times.setdefault(msg.note, []).append(now)
    return times


# ---------------------------------------------------------------- MIDI


def test_midi_notes_land_on_tatums(score: DrumScore, tmp_path: Path) -> None:
    path = tmp_path / "out.mid"
    write_midi(score, path)

    midi = mido.MidiFile(str(path))
    assert midi.ticks_per_beat == 480
    channel_msgs = [m for t in midi.tracks for m in t if not m.is_meta]
    assert {m.channel for m in channel_msgs} == {9}
    assert any(m.type == "program_change" and m.program == 0 for m in channel_msgs)
    assert {m.note for m in channel_msgs if m.type == "note_on"} <= {36, 38, 42}

    expected = score.onset_times()
    by_note = mido_note_times(path)
    pm_onsets = read_midi_onsets(path, score.instruments)
    for inst in score.instruments:
        want = expected[inst.abbrev]
        assert len(want) > 0
        np.testing.assert_allclose(pm_onsets[inst.abbrev], want, atol=TOL, rtol=0)
        np.testing.assert_allclose(sorted(by_note[inst.gm_note]), want, atol=TOL, rtol=0)

    pm = pretty_midi.PrettyMIDI(str(path))
    assert [i.is_drum for i in pm.instruments] == [True]
    beats = pm.get_beats()
    # Every MIDI quarter is a beat from time zero: audio before the first beat is either lead-in
    # quarters near the song's tempo (half a beat or more) or absorbed by the first quarter.
    first, step = score.beats.times[0], score.beats.times[1] - score.beats.times[0]
    assert beats[0] == 0.0
    n = len(score.beats.times)
    if first >= step / 2:
        n_lead = int(first / step + 0.5)
        np.testing.assert_allclose(beats[n_lead: n_lead + n], score.beats.times, atol=TOL, rtol=0)
        assert np.all(np.diff(beats[: n_lead + 1]) > step / 2) and np.all(np.diff(beats[: n_lead + 1]) < 2 * step)
    else:
        np.testing.assert_allclose(beats[1:n], score.beats.times[1:], atol=TOL, rtol=0)


def test_a_short_lead_in_makes_no_bar_of_its_own(tmp_path: Path) -> None:
    """A first beat at 10 ms used to open the file with a 1/4 bar at 6000 BPM: now the first bar is the first bar."""
    grid = BeatGrid.regular(120.0, 8, start=0.01)
    score = DrumScore(grid, 4, np.ones((3, 32), dtype=bool))
    write_midi(score, tmp_path / "lead.mid")
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "lead.mid"))
    _, tempi = pm.get_tempo_changes()
    assert tempi.max() < 125 and tempi.min() > 115
    assert [(ts.numerator, ts.time) for ts in pm.time_signature_changes] == [(4, 0.0)]
    np.testing.assert_allclose(pm.get_downbeats(), [0.0, 2.01], atol=TOL)
    starts = sorted({round(n.start, 4) for n in pm.instruments[0].notes})
    np.testing.assert_allclose(starts, score.tatum_times, atol=TOL)


def test_midi_velocity_follows_probability(tmp_path: Path) -> None:
    score = regular()
    write_midi(score, tmp_path / "v.mid")
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "v.mid"))
    k = 0
    bd = sorted((n for n in pm.instruments[0].notes if n.pitch == 36), key=lambda n: n.start)
    expected = np.clip(np.round(60 + 67 * score.probabilities[k][score.onsets[k]]), 1, 127)
    assert [n.velocity for n in bd] == expected.astype(int).tolist()
    # Without probabilities every stroke is at the default velocity.
    plain = pickup()
    write_midi(plain, tmp_path / "p.mid")
    assert {n.velocity for n in pretty_midi.PrettyMIDI(str(tmp_path / "p.mid")).instruments[0].notes} == {100}


def time_signatures(path: Path) -> list[tuple[int, float]]:
    return [(ts.numerator, round(ts.time, 4)) for ts in pretty_midi.PrettyMIDI(str(path)).time_signature_changes]


def test_midi_time_signatures_land_on_downbeats(tmp_path: Path) -> None:
    path = tmp_path / "ts.mid"

    write_midi(regular(), path)
    # The lead-in is a 1/4 bar of its own, so the first downbeat starts a bar.
    assert time_signatures(path) == [(1, 0.0), (4, 0.413)]

    write_midi(pickup(), path)
    # The 0.25 s lead-in (under half a beat) is absorbed by the first quarter of the two-beat pickup.
    assert time_signatures(path) == [(2, 0.0), (4, round(0.25 + 2 * 0.52, 4))]

    score = tempo_change_and_three_four()
    write_midi(score, path)
    t = score.beats.times
    # 0.8 s before the first beat at 0.5 s a beat: two lead-in quarters of 0.4 s make a 2/4 bar; the
    # one-beat last bar ends the file without a time signature of its own.
    assert time_signatures(path) == [(2, 0.0), (4, 0.8), (3, round(t[8], 4)), (4, round(t[14], 4))]


def test_midi_without_lead_in_and_with_a_long_one(tmp_path: Path) -> None:
    path = tmp_path / "x.mid"
    grid = BeatGrid.regular(100.0, 8, start=0.0004)
    score = random_score(grid.times, grid.positions, seed=5)
    write_midi(score, path)
    pm = pretty_midi.PrettyMIDI(str(path))
    # No lead-in bar: the first quarter absorbs the 0.4 ms and runs from zero to the second beat.
    assert pm.get_tempo_changes()[1][0] == pytest.approx(60.0 / 0.6004, abs=0.01)
    assert time_signatures(path)[0] == (4, 0.0)
    np.testing.assert_allclose(pm.get_beats()[:8], grid.times, atol=TOL, rtol=0)
    np.testing.assert_allclose(read_midi_onsets(path)["HH"], score.onset_times()["HH"], atol=TOL, rtol=0)

    # Longer than a single set_tempo can hold (16.7 s per quarter).
    grid = BeatGrid.regular(100.0, 8, start=40.0)
    score = random_score(grid.times, grid.positions, seed=6)
    write_midi(score, path)
    for abbrev, want in score.onset_times().items():
        np.testing.assert_allclose(read_midi_onsets(path)[abbrev], want, atol=TOL, rtol=0)


def test_read_midi_onsets_folds_source_notes(tmp_path: Path) -> None:
    pm = pretty_midi.PrettyMIDI()
    kit = pretty_midi.Instrument(0, is_drum=True)
    for pitch, start in [(35, 0.1), (40, 0.2), (46, 0.3), (42, 0.4), (49, 0.5)]:
        kit.notes.append(pretty_midi.Note(100, pitch, start, start + 0.05))
    pm.instruments.append(kit)
    pm.write(str(tmp_path / "k.mid"))
    onsets = read_midi_onsets(tmp_path / "k.mid")
    np.testing.assert_allclose(onsets["BD"], [0.1], atol=TOL)
    np.testing.assert_allclose(onsets["SD"], [0.2], atol=TOL)
    np.testing.assert_allclose(onsets["HH"], [0.3, 0.4], atol=TOL)


# ---------------------------------------------------------------- MusicXML


def parse_musicxml(score: DrumScore, tmp_path: Path):
    path = tmp_path / "out.musicxml"
    write_musicxml(score, path)
    return path, music21.converter.parse(str(path))


def unpitched_notes(part) -> list:
    found = []
    for element in part.flatten().notes:
        for note in element.notes if isinstance(element, music21.chord.ChordBase) else [element]:
            found.append((note, element.offset))
    return found


def test_musicxml_reads_back_in_music21(score: DrumScore, tmp_path: Path) -> None:
    _, parsed = parse_musicxml(score, tmp_path)
    assert len(parsed.parts) == 1
    part = parsed.parts[0]
    measures = list(part.getElementsByClass(music21.stream.Measure))
    bars = score.bars()
    assert len(measures) == len(bars)
    lengths = [stop - start for start, stop in bars]
    for i, (measure, (start, stop)) in enumerate(zip(measures, bars)):
        # A partial first bar is a pickup (measure 0) and a partial last bar is filled with rests: both
        # keep the meter of their neighbour instead of a time signature of their own.
        partial_first = i == 0 and len(bars) > 1 and lengths[0] < lengths[1]
        partial_last = i == len(bars) - 1 and len(bars) > 1 and lengths[-1] < lengths[-2]
        meter = lengths[1] if partial_first else lengths[-2] if partial_last else stop - start
        assert measure.barDuration.quarterLength == meter
        assert measure.number == (i if lengths[0] < lengths[min(1, len(bars) - 1)] else i + 1)
        written = meter if partial_last else stop - start
        assert measure.duration.quarterLength == written
        for voice in measure.voices or [measure]:
            assert voice.duration.quarterLength == written

    tpb = score.tatums_per_beat
    for k, inst in enumerate(score.instruments):
        mine = [(n, off) for n, off in unpitched_notes(part)
                if (n.displayStep, n.displayOctave) == (inst.display_step, inst.display_octave)]
        # Quarter-note offsets map back to the exact tatums, one note per onset.
        tatums = sorted(int(Fraction(off) * tpb) for _, off in mine)
        assert all(Fraction(off) * tpb == int(Fraction(off) * tpb) for _, off in mine)
        assert tatums == np.flatnonzero(score.onsets[k]).tolist()
        assert {n.notehead for n, _ in mine} == {inst.notehead}
        assert {n.stemDirection for n, _ in mine} == {inst.stem}


def test_musicxml_structure(tmp_path: Path) -> None:
    score = tempo_change_and_three_four()
    path, _ = parse_musicxml(score, tmp_path)
    root = ET.parse(path).getroot()
    assert root.get("version") == "4.0"
    assert root.findtext("part-list/score-part/part-name") == "Drum Set"
    midi = {m.get("id"): (m.findtext("midi-channel"), m.findtext("midi-unpitched"))
            for m in root.iterfind("part-list/score-part/midi-instrument")}
    assert midi == {f"P1-I{i.gm_note + 1}": ("10", str(i.gm_note + 1)) for i in score.instruments}
    measures = root.findall("part/measure")
    assert measures[0].findtext("attributes/clef/sign") == "percussion"
    assert measures[0].findtext("attributes/divisions") == "4"
    median_bpm = 60 / np.median(np.diff(score.beats.times))
    assert float(measures[0].find("direction/sound").get("tempo")) == pytest.approx(median_bpm, abs=0.01)
    # Time signatures only where the beat count changes.
    changes = [(i, m.findtext("attributes/time/beats")) for i, m in enumerate(measures) if m.find("attributes/time") is not None]
    # The one-beat last bar is a 4/4 bar filled with rests, as a chart ends, not a bar of 1/4.
    assert changes == [(0, "4"), (2, "3"), (4, "4")]
    bar_beats = [stop - start for start, stop in score.bars()]
    assert bar_beats[-1] == 1
    bar_beats[-1] = 4
    for measure, n_beats in zip(measures, bar_beats):
        length = 4 * n_beats
        per_voice: dict[str, int] = {}
        for note in measure.iter("note"):
            if note.find("chord") is None:
                voice = note.findtext("voice")
                per_voice[voice] = per_voice.get(voice, 0) + int(note.findtext("duration"))
        assert set(per_voice.values()) == {length}


def test_musicxml_accents_a_chord_once_and_fills_a_short_last_bar(tmp_path: Path) -> None:
    from tatumdrum.instruments import SEVEN_CLASSES

    # Five beats of 4/4: a full bar, then one beat; snare and crash struck together, both accented.
    grid = BeatGrid(0.5 + 0.5 * np.arange(5), np.array([1, 2, 3, 4, 1]))
    row = {inst.abbrev: k for k, inst in enumerate(SEVEN_CLASSES)}
    onsets = np.zeros((7, 20), bool)
    velocities = np.zeros((7, 20), np.float32)
    for tatum, drum, velocity in [(0, "SD", 120), (0, "CR", 122), (0, "BD", 110), (8, "SD", 118), (8, "HH", 60),
                                  (16, "SD", 70), (16, "CR", 115)]:
        onsets[row[drum], tatum] = True
        velocities[row[drum], tatum] = velocity / 127
    path, parsed = parse_musicxml(DrumScore(grid, 4, onsets, SEVEN_CLASSES, velocities=velocities), tmp_path)
    # One accent per accented chord of the hands (tatums 0, 8, 16) and one for the kick, its own voice.
    notes = ET.parse(path).getroot().iter("note")
    accents = [(n.findtext("unpitched/display-step"), n.find("chord") is not None) for n in notes
               if n.find("notations/articulations/accent") is not None]
    assert len(accents) == 4 and not any(chord for _, chord in accents)
    # music21 reads the one-beat last bar as a whole 4/4 bar: the stroke, then rests to the bar line.
    measures = list(parsed.parts[0].getElementsByClass(music21.stream.Measure))
    assert [m.duration.quarterLength for m in measures] == [4, 4]
    last = measures[-1]
    assert last.barDuration.quarterLength == 4 and last.timeSignature is None
    for voice in last.voices:
        assert voice.duration.quarterLength == 4
        assert sum(r.quarterLength for r in voice.getElementsByClass(music21.note.Rest)) >= 3


def one_beat_types(tatums_per_beat: int, hits: list[int], tmp_path: Path) -> list[tuple]:
    """(rest?, type, dots, tuplet) of the first beat of a hi-hat-only score struck at `hits`."""
    onsets = np.zeros((3, 2 * tatums_per_beat), bool)
    onsets[2, hits] = True
    score = DrumScore(BeatGrid(np.array([0.0, 0.5]), np.array([1, 2])), tatums_per_beat, onsets)
    path = tmp_path / "beat.musicxml"
    write_musicxml(score, path)
    notes = ET.parse(path).getroot().findall("part/measure/note")
    result, total = [], 0
    for note in notes:
        total += int(note.findtext("duration"))
        if total > tatums_per_beat:
            break
        ratio = note.find("time-modification")
        result.append((note.find("rest") is not None, note.findtext("type"), len(note.findall("dot")),
                       None if ratio is None else (ratio.findtext("actual-notes"), ratio.findtext("normal-notes"))))
    return result


def test_musicxml_note_values(tmp_path: Path) -> None:
    assert one_beat_types(4, [0], tmp_path) == [(False, "quarter", 0, None)]
    assert one_beat_types(4, [0, 3], tmp_path) == [(False, "eighth", 1, None), (False, "16th", 0, None)]
    assert one_beat_types(4, [1], tmp_path) == [(True, "16th", 0, None), (False, "eighth", 1, None)]
    assert one_beat_types(4, [0, 2], tmp_path) == [(False, "eighth", 0, None), (False, "eighth", 0, None)]
    # A silent beat is a quarter rest when the measure has notes elsewhere...
    assert one_beat_types(4, [5], tmp_path) == [(True, "quarter", 0, None)]
    # ...and a silent measure is one whole-measure rest.
    silent = DrumScore(BeatGrid(np.array([0.0, 0.5, 1.0]), np.array([1, 2, 3])), 4, np.zeros((3, 12), bool))
    write_musicxml(silent, tmp_path / "silent.musicxml")
    notes = ET.parse(tmp_path / "silent.musicxml").getroot().findall("part/measure/note")
    assert len(notes) == 1 and notes[0].find("rest").get("measure") == "yes"
    assert notes[0].findtext("duration") == "12"
    assert one_beat_types(3, [0, 1], tmp_path) == [(False, "eighth", 0, ("3", "2")), (False, "quarter", 0, ("3", "2"))]
    assert one_beat_types(3, [2], tmp_path) == [(True, "quarter", 0, ("3", "2")), (False, "eighth", 0, ("3", "2"))]
    assert one_beat_types(3, [0], tmp_path) == [(False, "quarter", 0, None)]
    # Five 32nds cannot be one note: an eighth, then a 32nd rest.
    assert one_beat_types(8, [0, 5], tmp_path)[:2] == [(False, "eighth", 0, None), (True, "32nd", 0, None)]


def test_musicxml_odd_tatum_counts_keep_measure_lengths(tmp_path: Path) -> None:
    for tpb in (1, 2, 5, 6, 8):
        grid = BeatGrid.regular(100.0, 7, beats_per_bar=3, start=0.2)
        score = random_score(grid.times, grid.positions, tatums_per_beat=tpb, seed=tpb)
        _, parsed = parse_musicxml(score, tmp_path)
        measures = list(parsed.parts[0].getElementsByClass(music21.stream.Measure))
        lengths = [stop - start for start, stop in score.bars()]
        # 7 beats in 3/4 from a downbeat: two bars and a last beat filled with rests to a third.
        assert lengths == [3, 3, 1]
        assert [m.duration.quarterLength for m in measures] == [3, 3, 3]
        assert len(unpitched_notes(parsed.parts[0])) == int(score.onsets.sum())


# ---------------------------------------------------------------- JSON


def test_json_round_trip(tmp_path: Path) -> None:
    score = regular()
    write_json(score, tmp_path / "s.json")
    data = json.loads((tmp_path / "s.json").read_text())
    assert data["tatums_per_beat"] == 4
    np.testing.assert_allclose(data["tatum_times"], score.tatum_times, atol=1e-6)
    np.testing.assert_allclose(data["beats"]["times"], score.beats.times, atol=1e-6)
    assert data["beats"]["positions"] == score.beats.positions.tolist()
    assert data["instruments"] == [{"name": "Bass Drum", "abbrev": "BD", "gm_note": 36},
                                   {"name": "Snare Drum", "abbrev": "SD", "gm_note": 38},
                                   {"name": "Hi-Hat", "abbrev": "HH", "gm_note": 42}]
    for abbrev, times in score.onset_times().items():
        np.testing.assert_allclose(data["onsets"][abbrev], times, atol=1e-6)
    # Rounded to 4 places (float32 probabilities: compare within half a unit of the 4th place).
    np.testing.assert_allclose(data["probabilities"], score.probabilities, atol=5e-5 + 1e-7)

    write_json(pickup(), tmp_path / "p.json")
    assert "probabilities" not in json.loads((tmp_path / "p.json").read_text())


# ---------------------------------------------------------------- dispatch


def test_unknown_suffix_is_refused_before_any_work(tmp_path: Path) -> None:
    target = tmp_path / "new" / "out.wav"
    with pytest.raises(UnsupportedFormatError) as info:
        check_output_path(target)
    message = str(info.value)
    assert "\n" not in message and all(s in message for s in (".mid", ".musicxml", ".json"))
    assert isinstance(info.value, ValueError)
    with pytest.raises(UnsupportedFormatError):
        write_score(regular(), target)
    with pytest.raises(UnsupportedFormatError):
        check_output_path(tmp_path / "no_suffix")
    assert not target.parent.exists()
    assert check_output_path(tmp_path / "A.MID") is writers.FORMATS[".mid"]


@pytest.mark.parametrize("suffix", list(writers.FORMATS))
def test_write_score_every_format(suffix: str, tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / f"song{suffix}"
    assert write_score(pickup(), path) == path
    assert path.stat().st_size > 0
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_then_fail(score: DrumScore, path: Path) -> None:
        Path(path).write_text('{"tatum_times": [0.0, ')
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(writers.FORMATS, ".json", half_then_fail)
    path = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        write_score(regular(), path)
    assert list(tmp_path.iterdir()) == []

    # An earlier good file survives a failed rewrite untouched.
    path.write_text("{}")
    with pytest.raises(RuntimeError):
        write_score(regular(), path)
    assert path.read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
