"""Model v2: seven drum classes, velocities, recorded multi-mic kits, sampled pianos, varied playing,
and per-crop remixing, each through the real code path on real files."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import music21
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

from tatumdrum.data.gmd import drum_hits, quantize_onsets
from tatumdrum.data.multimic import load_multimic_kit, render_multimic
from tatumdrum.data.playing import (cross_stick_backbeat, drop_time_keeping, ghost_notes, open_hihats, ride_for_hihat, section_crashes,
                                    sparse_hihats, vary_playing)
from tatumdrum.data.sampled import load_sampled_instruments, parse_sample_name, render_sampled
from tatumdrum.data.drumnotes import GROUPS
from tatumdrum.data.kits import multimic_kits, render_drums
from tatumdrum.dataset import remix_mel
from tatumdrum.features import log_mel
from tatumdrum.instruments import SEVEN_CLASSES, THREE_CLASSES, note_to_row
from tatumdrum.writers.jsonout import score_to_dict
from tatumdrum.metrics import group_onsets, score_onsets
from tatumdrum.tatums import BeatGrid
from tatumdrum.writers.midi import read_midi_onsets, write_midi
from tatumdrum.model import CRNNConfig, TatumCRNN
from tatumdrum.writers.musicxml import write_musicxml
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid
from tatumdrum.weights import TrainedModel, load_model
from tatumdrum.decisions import DecisionPolicy

SR = 44100
GM_OF = {i.abbrev: i.gm_note for i in SEVEN_CLASSES}


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


def test_folding_keeps_three_class_models_whole():
    # An open hi-hat is a hi-hat to a three-class model, and a class of its own to a seven-class one.
    three, seven = note_to_row(THREE_CLASSES), note_to_row(SEVEN_CLASSES)
    assert three[46] == three[42] == 2 and 49 not in three and 47 not in three
    assert seven[46] == 3 and seven[42] == 2 and seven[43] == seven[50] == 4 and seven[55] == 5 and seven[59] == 6
    # Scoring groups follow MDB Drums' classes: HH = closed + open, CY = crash + ride.
    grouped = group_onsets({"HH": np.array([1.0, 2.0]), "OH": np.array([2.0, 3.0]), "CR": np.array([4.0]),
                            "RD": np.array([5.0])})
    assert set(grouped) == {"HH", "CY"} and grouped["HH"].tolist() == [1.0, 2.0, 3.0]
    counts = score_onsets({"BD": np.array([1.0]), "HH": np.array([2.0]), "TT": np.array([3.0])},
                          {"BD": np.array([1.0]), "OH": np.array([2.01]), "TT": np.array([3.3])})
    assert counts["all"].correct == 2 and counts["all"].reference == 2 and counts["TT"].correct == 0
    assert counts["kit"].reference == 3


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


def test_velocity_head_round_trips_through_a_model_file(tmp_path):
    net = TatumCRNN(CRNNConfig(n_instruments=7, velocity=True))
    path = tmp_path / "v.pt"
    TrainedModel(net, "tatum", SEVEN_CLASSES, DecisionPolicy.uniform(SEVEN_CLASSES, 0.2)).save(path)
    model = load_model(path)
    assert model.instruments == SEVEN_CLASSES and model.net.velocity_fc is not None
    mel = torch.zeros(1, 300, 80)
    spans = [torch.tensor([[i * 10, i * 10 + 10] for i in range(30)])]
    logits, velocity = model.net.forward_with_velocity(mel, spans)
    assert logits.shape == velocity.shape == (1, 7, 30)


def _write_multimic_kit(root: Path) -> Path:
    """A tiny recorded-kit folder in the MuldjordKit layout: decaying tones per piece, take and mic."""
    rng = np.random.default_rng(0)
    kit = root / "TinyKit"
    t = np.arange(int(0.2 * SR)) / SR
    for piece, freq in (("KdrumL", 60), ("Snare", 200), ("HihatClosed", 6000), ("HihatOpen", 7000),
                        ("Tom2", 150), ("CrashL", 5000), ("RideL", 4000)):
        folder = kit / "Samples" / piece
        folder.mkdir(parents=True)
        for take in (1, 2, 3):
            loud = 0.2 * take  # take 3 is the loudest
            for mic, gain in (("OHL", 1.0), ("OHR", 0.9), ("AmbL", 0.3), ("Snare_top", 0.5)):
                tone = loud * gain * np.sin(2 * np.pi * freq * t) * np.exp(-t * 20)
                sf.write(folder / f"{take}-{piece}-{mic}.flac", (tone + 1e-4 * rng.standard_normal(len(t))), SR)
        sf.write(folder / f"1-{piece}-Trigger.flac", np.zeros(100), SR)
    return kit


def test_multimic_kit_is_indexed_and_rendered_with_its_takes(tmp_path):
    kit_dir = _write_multimic_kit(tmp_path)
    kit = load_multimic_kit(kit_dir)
    assert set(kit.pieces) == {"KdrumL", "Snare", "HihatClosed", "HihatOpen", "Tom2", "CrashL", "RideL"}
    assert "Trigger" not in kit.mics and set(kit.mics) == {"OHL", "OHR", "AmbL", "Snare_top"}
    # Takes are ordered quietest first by measured energy.
    first, last = kit.pieces["Snare"][0], kit.pieces["Snare"][-1]
    assert first["OHL"].name.startswith("1-") and last["OHL"].name.startswith("3-")
    notes = [pretty_midi.Note(v, p, t, t + 0.1) for t, p, v in [(0.1, 36, 127), (0.5, 38, 20), (0.9, 38, 127)]]
    levels = {g: 0.0 for g in GROUPS}
    audio = render_multimic(notes, np.array([n.velocity for n in notes]), levels, levels, kit,
                            np.random.default_rng(1), SR)
    assert audio.shape == (SR,) and np.all(np.isfinite(audio))
    soft, loud = (np.max(np.abs(audio[int(t * SR): int(t * SR) + 4000])) for t in (0.5, 0.9))
    assert loud > 1.5 * soft > 0  # velocity picks the take
    # Through the kit registry and render_drums, as build-dataset uses it.
    (registered,) = multimic_kits([tmp_path])
    pm = pretty_midi.PrettyMIDI()
    track = pretty_midi.Instrument(0, is_drum=True)
    track.notes = notes
    pm.instruments.append(track)
    assert np.max(np.abs(render_drums(pm, registered, np.random.default_rng(2), duration=1.5))) > 0


def test_sampled_piano_plays_the_nearest_sample_at_the_right_pitch(tmp_path):
    folder = tmp_path / "piano"
    folder.mkdir()
    t = np.arange(SR) / SR
    for name, note, amp in (("PP A4", 69, 0.1), ("FF A4", 69, 0.8), ("PP A3", 57, 0.1), ("FF A3", 57, 0.8)):
        sf.write(folder / f"{name}.flac", amp * np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * t), SR)
    assert parse_sample_name("FF A#2") == ("FF", 46) and parse_sample_name("LEVEL1 CLOSE 102") == ("LEVEL1 CLOSE", 102)
    (piano,) = load_sampled_instruments(folder)
    assert len(piano.layers) == 2
    audio = render_sampled(piano, [(0.0, 0.5, 71, 120)], SR)  # B4: A4 two semitones up
    spectrum = np.abs(np.fft.rfft(audio[: SR // 2]))
    assert abs(np.argmax(spectrum) * 2 - 493.9) < 4  # bins of 2 Hz over half a second
    quiet = render_sampled(piano, [(0.0, 0.5, 69, 10)], SR)
    assert np.max(np.abs(quiet)) < 0.3 * np.max(np.abs(audio))


def _groove() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    for i in range(32):  # 4 bars of 8th-note hats, kick on 1 and 3, snare on 2 and 4
        t = i * 0.25
        drums.notes.append(pretty_midi.Note(80, 42, t, t + 0.05))
        if i % 4 == 0:
            drums.notes.append(pretty_midi.Note(100, 36 if i % 8 == 0 else 38, t, t + 0.05))
    pm.instruments.append(drums)
    return pm


def test_playing_variations_edit_the_midi_that_becomes_targets():
    pm = _groove()
    ride_for_hihat(pm)
    pitches = [n.pitch for n in pm.instruments[0].notes]
    assert 42 not in pitches and pitches.count(51) == 32
    pm = _groove()
    ride_for_hihat(pm, 49)  # riding the crash
    pitches = [n.pitch for n in pm.instruments[0].notes]
    assert 42 not in pitches and pitches.count(49) == 32 and 51 not in pitches
    assert note_to_row(SEVEN_CLASSES)[49] == 5  # targets: crash, not hi-hat
    drawn = set()
    for seed in range(60):
        drawn.update(vary_playing(_groove(), np.random.default_rng(seed)))
    assert {"ride", "crash_ride", "open_hh", "crashes", "ghosts"} <= drawn
    assert not {"no_hats", "cross_stick", "sparse_hats"} & drawn  # off unless a build asks for them
    pm = _groove()
    pm.instruments[0].notes.append(pretty_midi.Note(30, 38, 1.375, 1.4))  # a ghost note between beats
    cross_stick_backbeat(pm)
    assert [n.start for n in pm.instruments[0].notes if n.pitch == 37] == [1.0, 3.0, 5.0, 7.0]
    assert [n.start for n in pm.instruments[0].notes if n.pitch == 38] == [1.375]
    pm = _groove()
    assert "no_hats" in vary_playing(pm, np.random.default_rng(0), {"no_hats": 1.0})
    assert not any(n.pitch in (42, 44, 46, 51) for n in pm.instruments[0].notes)
    pm = _groove()
    drop_time_keeping(pm)
    assert sorted({n.pitch for n in pm.instruments[0].notes}) == [36, 38]
    hat_row = [i.abbrev for i in SEVEN_CLASSES].index("HH")
    assert not drum_hits(pm, SEVEN_CLASSES)[hat_row][0].size  # no hi-hat target either
    kept = set()
    for seed in range(8):
        pm = _groove()
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
    pm = _groove()
    sparse_hihats(pm, np.random.default_rng(0))
    assert not any(n.pitch == 42 and (n.start / 0.5) % 1 for n in pm.instruments[0].notes)
    pm = _groove()
    open_hihats(pm, np.random.default_rng(0))
    opened = [n.start for n in pm.instruments[0].notes if n.pitch == 46]
    assert opened and all(abs((t / 0.5) % 1 - 0.5) < 1e-6 for t in opened)  # only on the "and"
    pm = _groove()
    section_crashes(pm, np.random.default_rng(0))
    crashes = [n.start for n in pm.instruments[0].notes if n.pitch in (49, 57)]
    assert crashes and crashes[0] == 0.0
    assert not any(n.pitch == 42 and n.start == 0.0 for n in pm.instruments[0].notes)
    pm = _groove()
    ghost_notes(pm, np.random.default_rng(0), rate=1.0)
    ghosts = [n for n in pm.instruments[0].notes if n.pitch == 38 and n.velocity < 40]
    assert len(ghosts) >= 8
    # The targets follow the edited MIDI.
    hits = drum_hits(pm, SEVEN_CLASSES)
    assert len(hits[1][0]) == 4 + len(ghosts)  # the groove's 4 backbeats and the ghosts


def test_remix_adds_band_power_and_gain_in_the_mel_domain():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    drums = log_mel((np.sin(2 * np.pi * 100 * t) * (t % 0.5 < 0.05)).astype(np.float32))
    band = log_mel((0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    only_drums = remix_mel(drums, band, np.random.default_rng(1), 0.0, None)
    with_band = remix_mel(drums, band, np.random.default_rng(1), 0.0, 0.0)
    assert with_band.shape == drums.shape and np.all(np.isfinite(with_band))
    assert np.all(with_band >= only_drums - 1e-5)  # power only adds
    louder_band = remix_mel(drums, band, np.random.default_rng(1), -20.0, 0.0)
    drum_bins = slice(0, 8)
    assert louder_band[:, drum_bins].mean() < with_band[:, drum_bins].mean()
    assert rng is not None


def _two_stem_piece():
    """A 4-s v2 piece whose drums (100 Hz clicks) and band (a 3 kHz tone) sit in separate mel bins."""
    from tatumdrum.dataset import Piece

    t = np.arange(4 * SR) / SR
    drums = log_mel((np.sin(2 * np.pi * 100 * t) * (t % 0.5 < 0.05)).astype(np.float32)).astype(np.float16)
    band = log_mel((0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)).astype(np.float16)
    grid = BeatGrid.regular(120.0, 8)
    return Piece("p", {"drums": drums, "mix": drums, "band": band}, np.arange(32) * 0.125,
                 np.zeros((7, 32), np.uint8), np.full(32, 16), np.arange(0, 32, 16), {}, grid, 4, SEVEN_CLASSES)


def test_remix_crops_take_their_drum_level_from_the_range_asked_for():
    from tatumdrum.dataset import source_mel

    piece = _two_stem_piece()
    drums = piece.mels["drums"]

    def drum_to_band(level: float) -> float:
        mel = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(2), (level, level))
        return float(np.expm1(mel[:, :12]).mean() / np.expm1(mel[:, 40:]).mean())

    # The same draw of EQ and gain; only the drum level moves, by the range given (20 dB: 10x).
    low, mid, high = drum_to_band(-20.0), drum_to_band(0.0), drum_to_band(20.0)
    assert 5 * low < mid and 5 * mid < high


def test_band_eq_colours_the_band_apart_from_the_drums():
    from tatumdrum.dataset import source_mel

    piece = _two_stem_piece()
    drums = piece.mels["drums"]

    def log_balance(band_eq: float, seed: int) -> float:
        mel = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(seed), (0.0, 0.0), band_eq)
        return float(np.log(np.expm1(mel[:, :12]).mean() / np.expm1(mel[:, 40:]).mean()))

    # The common EQ already tilts drums against band; a band EQ of its own widens that spread
    # (two independent curves instead of one), and never touches crops when it is off.
    common = np.std([log_balance(0.0, seed) for seed in range(200)])
    own = np.std([log_balance(1.0, seed) for seed in range(200)])
    assert own > 1.15 * common  # 1.25 with these seeds; exactly 1 if the band EQ did nothing
    plain = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(5), (0.0, 0.0))
    assert np.array_equal(plain, source_mel(piece, "remix", 0, len(drums), np.random.default_rng(5), (0.0, 0.0), 0.0))


def test_v2_build_and_training_with_velocity(tmp_path, fake_gmd_v2):
    """build-dataset --v2 pieces (real fluidsynth renders) train a 7-class CRNN with a velocity head."""
    from tatumdrum.data.build import BuildOptions, build_split
    from tatumdrum.training import TrainConfig, train

    options = BuildOptions(instruments=tuple(i.abbrev for i in SEVEN_CLASSES), renders=2, v2=True, vary=True,
                           record_like=True)
    stats = build_split(fake_gmd_v2, "train", tmp_path, max_seconds=6.0, workers=1, seed=3, options=options)
    assert stats["files"] == 2 and stats["failed"] == 0
    files = sorted((tmp_path / "train").glob("*.npz"))
    assert [f.stem for f in files] == ["d1_s1_1_rock_120_beat_4-4", "d1_s1_1_rock_120_beat_4-4__r1"]
    with np.load(files[0]) as z:
        assert {"mel_band", "velocities", "instruments"} <= set(z.files)
        assert [str(a) for a in z["instruments"]] == [i.abbrev for i in SEVEN_CLASSES]
        assert z["mel_band"].shape == z["mel_drums"].shape == z["mel_mix"].shape
        on = z["targets"].astype(bool)
        assert np.all(z["velocities"][on] > 0) and np.all(z["velocities"][~on] == 0)
    (tmp_path / "validation").mkdir()
    for f in files:
        (tmp_path / "validation" / f.name).write_bytes(f.read_bytes())
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "m.pt"), epochs=1, steps_per_epoch=2, batch_size=2,
                      crop_tatums=16, max_valid=2)
    state = train(cfg)
    assert state["history"][0]["l_vel"] > 0
    model = load_model(tmp_path / "m.pt")
    assert model.instruments == SEVEN_CLASSES and model.net.velocity_fc is not None
    assert tuple(model.info["train_config"]["sources"]) == ("drums", "mix", "remix")
    # --init: a fresh run starts from that model's weights (a step at a vanishing rate leaves them so).
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "m2.pt"), epochs=1, steps_per_epoch=1, batch_size=2,
                      crop_tatums=16, max_valid=2, lr=1e-12, init=str(tmp_path / "m.pt"), class_gamma={"TT": 4.0})
    train(cfg)
    assert load_model(tmp_path / "m2.pt").info["train_config"]["class_gamma"] == {"TT": 4.0}
    started = load_model(tmp_path / "m2.pt").net.state_dict()
    for name, tensor in model.net.state_dict().items():
        if tensor.dtype.is_floating_point and "running" not in name:
            assert torch.allclose(started[name], tensor, atol=1e-6), name


@pytest.fixture(scope="module")
def fake_gmd_v2(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gmd_v2")
    pm = _groove()
    pm.instruments[0].notes += [pretty_midi.Note(110, 49, 0.0, 0.5), pretty_midi.Note(90, 45, 7.5, 7.6),
                                pretty_midi.Note(90, 46, 6.75, 6.9)]
    path = root / "d1" / "s1" / "1_rock_120_beat_4-4.mid"
    path.parent.mkdir(parents=True)
    pm.write(str(path))
    (root / "info.csv").write_text("drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,"
                                   "audio_filename,duration,split\n"
                                   "d1,d1/s1,x,rock,120,beat,4-4,d1/s1/1_rock_120_beat_4-4.mid,,8.0,train\n")
    return root


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


def test_stems_train_a_separator_that_resumes(tmp_path, fake_gmd_v2):
    """build-dataset --v2 --keep-audio writes the stems; train-separator learns from them and resumes."""
    import json
    import shutil

    from tatumdrum.data.build import BuildOptions, build_split
    from tatumdrum.separation import DrumSeparator
    from tatumdrum.separator_training import SeparatorConfig, stem_pairs, train_separator

    options = BuildOptions(instruments=tuple(i.abbrev for i in SEVEN_CLASSES), v2=True, record_like=True)
    build_split(fake_gmd_v2, "train", tmp_path / "audio", max_seconds=6.0, workers=1, seed=5, keep_audio=True,
                options=options)
    shutil.copytree(tmp_path / "audio" / "train", tmp_path / "audio" / "validation")
    pairs = stem_pairs(tmp_path / "audio" / "train")
    assert len(pairs) == 1
    drums, sr = sf.read(str(pairs[0][0]))
    band, _ = sf.read(str(pairs[0][1]))
    assert sr == 44100 and len(drums) == len(band) and np.abs(drums).max() > 0.01 and np.abs(band).max() > 0.01
    cfg = SeparatorConfig(data=str(tmp_path / "audio"), out=str(tmp_path / "sep"), hidden_size=16, epochs=1,
                          steps_per_epoch=2, batch_size=2, seq_seconds=2.0)
    state = train_separator(cfg)
    assert len(state["history"]) == 1 and np.isfinite(state["history"][0]["valid_sdr"])
    conf = json.loads((tmp_path / "sep" / "separator.json").read_text())
    assert conf["nb_channels"] == 1 and conf["nfft"] == 4096
    assert json.loads((tmp_path / "sep" / "drums.json").read_text())["args"]["hidden_size"] == 16
    cfg.epochs = 2
    assert len(train_separator(cfg)["history"]) == 2  # resumed from drums.chkpnt: one more epoch
    est = DrumSeparator.load(weights=tmp_path / "sep").separate(drums.astype(np.float32), sr)
    assert est.shape == (1, len(drums)) and np.all(np.isfinite(est))


def test_the_drum_to_band_level_of_a_build_is_an_option(tmp_path, fake_gmd_v2):
    """BuildOptions.drum_to_band_db sets the mixes' level: drums buried 22 dB under the band, or 6 dB over it."""
    import json

    from tatumdrum.data.build import BuildOptions, build_split
    from tatumdrum.separator_training import stem_pairs

    measured = {}
    for level in (-22.0, 6.0):
        options = BuildOptions(instruments=tuple(i.abbrev for i in SEVEN_CLASSES), v2=True, record_like=True,
                               drum_to_band_db=(level, level))
        out = tmp_path / str(level)
        build_split(fake_gmd_v2, "train", out, max_seconds=6.0, workers=1, seed=5, keep_audio=True, options=options)
        stats = json.loads((out / "train" / "stats.json").read_text())
        assert {e["drum_to_band_db"] for e in stats["examples"]} == {level}
        drums, _ = sf.read(str(stem_pairs(out / "train")[0][0]))
        band, _ = sf.read(str(stem_pairs(out / "train")[0][1]))
        rms = lambda x: 20 * np.log10(np.sqrt(np.mean(np.square(x))))
        measured[level] = rms(drums) - rms(band)
    # The stems are written at their level in the mix (before mastering).
    assert abs(measured[-22.0] + 22.0) < 1.0 and abs(measured[6.0] - 6.0) < 1.0, measured


def test_negative_crops_have_empty_scores_and_no_attacks():
    from tatumdrum.dataset import Piece, make_batch, steady_sound
    from tatumdrum.features import log_mel

    rng = np.random.default_rng(0)
    for _ in range(8):
        x = steady_sound(3 * 44100, rng)
        assert x.dtype == np.float32 and np.all(np.isfinite(x))
        # Steady: the level of what is above the bass (first difference) never jumps; a stroke rises by
        # tens of dB within 20 ms.
        hf = np.diff(x.astype(np.float64))
        rms = np.sqrt(np.mean(hf[: len(hf) // 441 * 441].reshape(-1, 441) ** 2, axis=1))
        assert np.max(20 * np.log10(rms[2:] / rms[:-2])) < 6.0
    score = np.zeros((7, 64), np.uint8)
    score[0, ::4] = 1
    grid = BeatGrid(np.arange(17) * 0.5, np.arange(17) % 4 + 1)
    mel = np.full((900, 80), 0.5, np.float16)
    piece = Piece("p", {"drums": mel, "mix": mel, "band": mel}, np.arange(64) * 0.125, score,
                  np.full(64, 16), np.arange(0, 64, 16), {}, grid, 4, SEVEN_CLASSES, score * 100)
    batch = make_batch([piece], 8, 32, rng, ("drums", "mix", "remix"), negatives=1.0)
    assert batch.targets.sum() == 0 and batch.velocities.sum() == 0
    assert make_batch([piece], 8, 32, rng, ("drums", "mix", "remix"), negatives=0.0).targets.sum() > 0


def test_balanced_crops_hold_a_stroke_of_the_drawn_class():
    from tatumdrum.dataset import Piece, make_batch, pieces_by_class

    grid = BeatGrid(np.arange(33) * 0.5, np.arange(33) % 4 + 1)
    mel = np.full((1700, 80), 0.5, np.float16)
    common = np.zeros((7, 128), np.uint8)
    common[0, ::4] = 1  # a kick on every beat
    rare = common.copy()
    rare[4, 120] = 1  # one tom stroke, in the last bar
    pieces = [Piece(f"p{i}", {"drums": mel, "mix": mel}, np.arange(128) * 0.125, s, np.full(128, 16),
                    np.arange(0, 128, 16), {}, grid, 4, SEVEN_CLASSES, s * 100)
              for i, s in enumerate([common] * 9 + [rare])]
    by_class = pieces_by_class(pieces)
    assert by_class[0].tolist() == list(range(10)) and by_class[4].tolist() == [9] and by_class[1].size == 0
    toms = [make_batch(pieces, 16, 32, np.random.default_rng(seed), ("drums", "mix"), balance=share,
                       by_class=by_class).targets[:, 4].sum().item() for share in (0.0, 1.0) for seed in range(5)]
    # Plain crops find the one tom stroke in about 1 of 40 crops; class-first crops in every crop drawn
    # for the toms: half of them, as only the kick and the toms have strokes here.
    assert sum(toms[:5]) < 10 and sum(toms[5:]) > 20


def test_per_drum_thresholds_are_tuned_saved_and_applied(tmp_path):
    """tune-thresholds on annotated audio writes a model whose per-drum deltas decide the onsets."""
    import json

    from typer.testing import CliRunner

    from tatumdrum.cli import app
    from tatumdrum.metrics import OnsetCounts
    from tatumdrum.thresholds import DELTAS, choose

    examples = Path(__file__).resolve().parents[1] / "examples"
    # One eight-class network (the bundled file holds a stem and a mix model, each tuned on its own audio).
    plain = examples.parent / "models" / "table2" / "v24_crnn_bigram.pt"
    tuned = tmp_path / "tuned.pt"
    result = CliRunner().invoke(app, ["tune-thresholds", str(plain), "-o", str(tuned),
                                      "--recordings", str(examples)])
    assert result.exit_code == 0, result.output
    model = load_model(tuned)
    assert len(model.policy.thresholds) == len(model.instruments)
    assert all(d in DELTAS for d in model.policy.thresholds)
    # Open and closed hi-hat share the HH group's delta.
    abbrevs = [i.abbrev for i in model.instruments]
    assert model.policy.thresholds[abbrevs.index("OH")] == model.policy.thresholds[abbrevs.index("HH")]
    # Applied per drum: make the deltas very different and read the score back from JSON.
    model.policy = DecisionPolicy(model.instruments, tuple(0.05 if a == "HH" else 0.95 for a in abbrevs))
    model.save(tmp_path / "odd.pt")
    out = tmp_path / "odd.json"
    result = CliRunner().invoke(app, ["transcribe", str(examples / "groove.wav"), "-o", str(out), "-m",
                                      str(tmp_path / "odd.pt"), "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["threshold"]["HH"] == 0.05 and doc["threshold"]["BD"] == 0.95
    phi = np.asarray(doc["probabilities"])
    for k, abbrev in enumerate(abbrevs):
        # (JSON rounds phi to 4 decimals; no tatum sits that close to these deltas here.)
        assert len(doc["onsets"][abbrev]) == int(np.sum(phi[k] >= doc["threshold"][abbrev]))
    assert len(doc["onsets"]["HH"]) > 0
    # choose(): the delta with the best mean F over the sets, each set one vote.
    a = {0.3: {"BD": OnsetCounts(9, 10, 10)}, 0.5: {"BD": OnsetCounts(8, 8, 10)}}
    b = {0.3: {"BD": OnsetCounts(5, 20, 10)}, 0.5: {"BD": OnsetCounts(9, 10, 10)}}
    assert choose([a, b])["BD"][0] == 0.5 and choose([a])["BD"][0] == 0.3
