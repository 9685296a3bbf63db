"""Synthesis of training data: kits, effects, accompaniment and the split builder (fast)."""
from __future__ import annotations

import csv
import json
from pathlib import Path
import librosa
import numpy as np
import pretty_midi
import pytest
from tatumdrum.data import effects
from tatumdrum.data.accompaniment import generate_arrangement, melodic_soundfonts, random_accompaniment
from tatumdrum.data.build import NPZ_KEYS, build_split
from tatumdrum.data.drumnotes import remap_to_gm
from tatumdrum.data.hydrogen import classify_instrument
from tatumdrum.data.kits import list_kits, render_drums
from tatumdrum.data.synthesis import SAMPLE_RATE
from tatumdrum.instruments import DEFAULT_INSTRUMENTS, note_to_row

KITS = list_kits()
FLUIDR3_KITS = [k for k in KITS if k.name == "FluidR3_GM/Standard"]
# FluidR3 where Debian's fluid-soundfont-gm is installed, else the TimGM6mb that pretty_midi ships.
GM_KIT = (FLUIDR3_KITS or [k for k in KITS if k.name == "TimGM6mb/Standard"])[0]
HYDROGEN_KITS = sorted((k for k in KITS if k.kind == "hydrogen"), key=lambda k: k.name != "hydrogen/The Black Pearl 1.0")

KICKS = [0.3, 1.1, 1.9, 2.45, 3.2]


def hand_made_midi() -> pretty_midi.PrettyMIDI:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    drums = pretty_midi.Instrument(0, is_drum=True)
    for t in KICKS:
        drums.notes.append(pretty_midi.Note(110, 36, t, t + 0.1))
    for t in (0.7, 1.5, 2.7):
        drums.notes.append(pretty_midi.Note(100, 38, t, t + 0.1))
    for t in (0.5, 1.3, 2.1):
        drums.notes.append(pretty_midi.Note(80, 22, t, t + 0.1))  # TD-11 hi-hat edge
    drums.notes.append(pretty_midi.Note(90, 48, 2.9, 3.0))  # tom
    drums.notes.append(pretty_midi.Note(90, 55, 3.5, 3.6))  # TD-11 crash edge
    pm.instruments.append(drums)
    return pm


def assert_kicks_audible(audio: np.ndarray) -> None:
    assert audio.dtype == np.float32 and np.all(np.isfinite(audio))
    assert np.sqrt(np.mean(audio ** 2)) > 1e-3, "render is silent"
    env = librosa.onset.onset_strength(y=audio, sr=SAMPLE_RATE, hop_length=441)
    onsets = librosa.onset.onset_detect(onset_envelope=env, sr=SAMPLE_RATE, hop_length=441, units="time")
    for t in KICKS:
        assert np.min(np.abs(onsets - t)) <= 0.03, f"no onset within 30 ms of the kick at {t} s: {onsets}"
    # The kick itself is loud: the level right after it clearly exceeds the level just before it.
    for t in KICKS:
        i = int(t * SAMPLE_RATE)
        before = np.sqrt(np.mean(audio[i - 1500:i - 300] ** 2)) if i > 1500 else 0.0
        after = np.sqrt(np.mean(audio[i:i + 2000] ** 2))
        assert after > 2 * before


def test_remap_folds_td11_notes_onto_general_midi():
    notes = remap_to_gm(hand_made_midi())
    pitches = {n.pitch for n in notes}
    assert 22 not in pitches and 55 not in pitches
    assert {36, 38, 42, 48, 49} <= pitches


@pytest.mark.parametrize("vary", [False, True])
def test_gm_kit_sounds_the_kicks(vary):
    audio = render_drums(hand_made_midi(), GM_KIT, np.random.default_rng(0), duration=4.5, vary=vary)
    assert len(audio) == int(np.ceil(4.5 * SAMPLE_RATE))
    assert_kicks_audible(audio)


def test_tinysoundfont_renders_where_libfluidsynth_is_missing():
    """The PyPI-only synthesizer plays the same tracks: kicks where the MIDI has them, and a band."""
    from tatumdrum.data.synthesis import SynthTrack, timgm_path
    from tatumdrum.data.tinysynth import TinySynth

    synth = TinySynth(SAMPLE_RATE)
    kicks = SynthTrack(timgm_path(), 128, 0, [(t, t + 0.1, 36, 110) for t in KICKS], True)
    audio = synth.render([kicks], int(4.5 * SAMPLE_RATE))
    assert len(audio) == int(4.5 * SAMPLE_RATE)
    assert_kicks_audible(audio)
    # A render does not hear the one before it: the same call gives the same audio.
    np.testing.assert_array_equal(audio, synth.render([kicks], int(4.5 * SAMPLE_RATE)))
    # A missing drum kit falls back to the standard kit; a note-off ends a bass note.
    bass = SynthTrack(timgm_path(), 0, 33, [(0.5, 1.0, 40, 100)], False)
    out = synth.render([SynthTrack(timgm_path(), 128, 99, [(0.3, 0.4, 36, 110)], True), bass],
                       int(3.0 * SAMPLE_RATE))
    rms = lambda a, b: float(np.sqrt(np.mean(out[int(a * SAMPLE_RATE):int(b * SAMPLE_RATE)] ** 2)))
    assert rms(0.3, 0.4) > 1e-3 and rms(0.6, 0.9) > 1e-3 and rms(2.0, 3.0) < 0.05 * rms(0.6, 0.9)


@pytest.mark.skipif(not HYDROGEN_KITS, reason="no Hydrogen drum kits installed")
def test_hydrogen_kit_sounds_the_kicks():
    audio = render_drums(hand_made_midi(), HYDROGEN_KITS[0], np.random.default_rng(1), duration=4.5)
    assert_kicks_audible(audio)


def test_hydrogen_names_map_to_roles():
    assert classify_instrument("Kick (Tama Superstar 22\")") == ["kick"]
    assert classify_instrument("Ride (Custom, Zagrebin 22\")") == ["ride"]  # "custom" is not a tom
    assert classify_instrument("Sabian Hat Pedal") == ["hh_pedal"]
    assert classify_instrument("VariBreaks Hat 1 Op") == ["hh_open"]
    assert classify_instrument("Closed HH") == ["hh_closed"]
    assert classify_instrument("Pearl Tom Floor") == ["tom_low"]
    assert classify_instrument("Snare Rimshot") == ["snare_rim"]
    assert classify_instrument("Hand Clap") == [] and classify_instrument("Cowbell") == []


def test_effects_keep_length_and_stay_finite():
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(SAMPLE_RATE) * 0.05).astype(np.float32)
    x[::4410] += 0.8
    ir = effects.reverb_ir(rng, 0.8)
    outputs = [
        effects.apply_sos(x, effects.random_eq(rng)),
        effects.compress(x, -20, 4, 5, 100),
        effects.reverb(x, ir, -10),
        effects.lowpass(x, 9000),
        effects.add_noise(x, rng, 40, pink=True),
        effects.saturate(x, 6),
        effects.gain(x, -3),
        effects.normalize_peak(x, -1),
    ]
    for stage in effects.STAGE_PROBABILITIES:
        for seed in range(8):
            outputs.append(effects.random_chain(np.random.default_rng(seed), stage)(x))
    for y in outputs:
        assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    assert abs(np.max(np.abs(effects.normalize_peak(x, -1))) - 10 ** (-1 / 20)) < 1e-4
    assert np.max(np.abs(effects.random_chain(rng, "master")(np.zeros(1000, np.float32)))) < 1e-6


def test_reverb_decays_like_its_rt60():
    ir = effects.reverb_ir(np.random.default_rng(3), 0.5)
    energy = np.cumsum(ir[::-1] ** 2)[::-1]  # Schroeder backward integration
    db = 10 * np.log10(energy / energy[0] + 1e-12)
    t_minus_20 = np.argmax(db < -20) / SAMPLE_RATE
    assert 0.08 < t_minus_20 < 0.3  # -20 dB after about a third of RT60 (highs decay faster)


def test_arrangement_follows_the_beats():
    beats = np.arange(17) * 0.5 + 0.2
    positions = np.arange(17) % 4 + 1
    arr = generate_arrangement(beats, positions, beats[-1] + 0.5, np.random.default_rng(5), melody=True)
    assert arr.parts
    starts = np.array([s for p in arr.parts for s, *_ in p.notes])
    assert starts.min() >= 0.1 and starts.max() < beats[-1] + 0.5
    # Most notes start near an eighth-note position of the grid (jitter and strums are a few ms).
    eighths = np.arange(0, 40) * 0.25 + 0.2
    near = np.min(np.abs(starts[:, None] - eighths[None, :]), axis=1) < 0.06
    assert near.mean() > 0.8


@pytest.mark.skipif(not melodic_soundfonts(), reason="no GM soundfont installed")
def test_accompaniment_renders():
    beats = np.arange(9) * 0.6
    band = random_accompaniment(beats, np.arange(9) % 4 + 1, 6.0, np.random.default_rng(2), end_time=5.4)
    assert len(band.audio) == int(np.ceil(6.0 * SAMPLE_RATE))
    assert np.sqrt(np.mean(band.audio ** 2)) > 1e-4 and np.all(np.isfinite(band.audio))


@pytest.mark.skipif(not melodic_soundfonts(), reason="no GM soundfont installed")
def test_band_percussion_is_an_unlabelled_layer_on_the_grid():
    from scipy.signal import butter, sosfiltfilt

    from tatumdrum.data.band import band_percussion

    beats = np.arange(13) * 0.5 + 0.2
    steps = {"quarters": 1, "eighths": 2, "sixteenths": 4, "backbeat": 1}
    patterns = set()
    for seed in range(40):
        name, notes = band_percussion(beats, 6.5, np.random.default_rng(seed))
        pattern = name.split()[-1]
        patterns.add(pattern)
        starts = np.array([n[0] for n in notes])
        assert len(notes) == (6 if pattern == "backbeat" else 12 * steps[pattern])
        assert {n[2] for n in notes} <= {54, 69, 70}
        grid = beats[:-1, None] + np.arange(steps[pattern])[None, :] * 0.5 / steps[pattern]
        assert np.min(np.abs(starts[:, None] - grid.ravel()[None, :]), axis=1).max() < 0.03
        if pattern == "backbeat":  # every other beat: 2 and 4 of each bar
            assert np.allclose(np.round((starts - 0.2) / 0.5) % 2, 1)
    assert patterns == set(steps)
    # Rendered: the same band with and without the layer differs by the layer alone (it is drawn last, so
    # the draws before it and the band are unchanged), and its energy above 4 kHz rises on the pattern.
    kw = dict(end_time=6.3, soundfont="TimGM6mb", record_like=True)
    with_it = random_accompaniment(beats, np.arange(13) % 4 + 1, 6.5, np.random.default_rng(3), percussion=1.0, **kw)
    without = random_accompaniment(beats, np.arange(13) % 4 + 1, 6.5, np.random.default_rng(3), **kw)
    added = [layer for layer in with_it.layers if layer not in without.layers]
    assert len(added) == 1 and added[0].split()[0] in {"tambourine", "cabasa", "maracas"}
    layer = with_it.audio - without.audio
    high = sosfiltfilt(butter(4, 4000, "highpass", fs=SAMPLE_RATE, output="sos"), layer)
    envelope = np.sqrt(np.convolve(high ** 2, np.ones(220) / 220, "same"))[::220]  # 5 ms steps
    rises = np.flatnonzero((envelope[1:] > 0.3 * envelope.max()) & (envelope[:-1] <= 0.3 * envelope.max())) * 220 / SAMPLE_RATE
    pattern = added[0].split()[-1]
    grid = (beats[:-1, None] + np.arange(steps[pattern])[None, :] * 0.5 / steps[pattern]).ravel()
    if pattern == "backbeat":
        grid = beats[1:-1:2]
    # Every stroke of the pattern starts a rise within 30 ms; every rise follows a stroke (a tambourine's
    # jingles ring a second time some 80 ms after the hit).
    assert np.all(np.min(np.abs(grid[:, None] - rises[None, :]), axis=1) < 0.03), (pattern, rises)
    lag = rises[:, None] - grid[None, :]
    assert np.all(np.any((lag > -0.03) & (lag < 0.15), axis=1)), (pattern, rises)


# --------------------------------------------------------------------------------------------
# build_split on a fake GMD folder

TATUM_NOTES_A = {  # tatum index (16th notes at 120 bpm) -> TD-11 notes struck there
    0: [36, 42, 49], 2: [42], 4: [38, 42], 6: [36, 42], 8: [36, 42], 10: [22], 12: [38, 42], 14: [42],
    16: [36, 51], 18: [51], 20: [40, 44], 22: [36, 51], 24: [48], 25: [45], 26: [46], 27: [43], 28: [37, 44],
    30: [36, 42], 31: [38],
}


def _write_midi(path: Path, bpm: float, tatum_notes: dict[int, list[int]], jitter: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    tatum = 60.0 / bpm / 4
    for m, notes in tatum_notes.items():
        for note in notes:
            t = max(m * tatum + rng.uniform(-jitter, jitter), 0.0)
            drums.notes.append(pretty_midi.Note(int(rng.integers(40, 120)), note, t, t + 0.05))
    pm.instruments.append(drums)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))


def _expected_targets(tatum_notes: dict[int, list[int]], n_tatums: int) -> np.ndarray:
    rows = note_to_row(DEFAULT_INSTRUMENTS)  # open hi-hat (46) folds into the hi-hat row
    expected = np.zeros((len(DEFAULT_INSTRUMENTS), n_tatums), dtype=np.uint8)
    for m, notes in tatum_notes.items():
        for note in notes:
            if note in rows and m < n_tatums:
                expected[rows[note], m] = 1
    return expected


@pytest.fixture(scope="module")
def fake_gmd(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gmd")
    _write_midi(root / "drummer1/session1/1_rock_120_beat_4-4.mid", 120.0, TATUM_NOTES_A, 0.012, 0)
    # 90 bpm for 4 bars (10.7 s): longer than max_seconds = 6, so cropped at the downbeat at 5.33 s.
    long_b = {m: ([36, 42] if m % 8 == 0 else [38, 42] if m % 8 == 4 else [42]) for m in range(0, 64, 2)}
    _write_midi(root / "drummer2/session1/1_rock_90_beat_4-4.mid", 90.0, long_b, 0.008, 1)
    (root / "drummer2/session1/2_broken_90_fill_4-4.mid").write_bytes(b"not a midi file")
    rows = [("drummer1/session1/1_rock_120_beat_4-4.mid", 120, "train"),
            ("drummer2/session1/1_rock_90_beat_4-4.mid", 90, "train"),
            ("drummer2/session1/2_broken_90_fill_4-4.mid", 90, "validation"),
            ("drummer1/session1/1_rock_120_beat_4-4.mid", 120, "validation")]
    with open(root / "info.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature", "midi_filename",
                    "audio_filename", "duration", "split"])
        for i, (name, bpm, split) in enumerate(rows):
            w.writerow([name.split("/")[0], "session1", str(i), "rock", bpm, "beat", "4-4", name, "", "8.0", split])
    return root


@pytest.fixture(scope="module")
def built(fake_gmd, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("built")
    stats = build_split(fake_gmd, "train", out, max_seconds=6.0, workers=2, keep_audio=True, seed=7)
    return out / "train", stats


def test_build_writes_exact_keys_and_shapes(built):
    folder, stats = built
    assert stats["files"] == 2 and stats["failed"] == 0
    assert json.loads((folder / "stats.json").read_text())["files"] == 2
    for stem in ("drummer1_session1_1_rock_120_beat_4-4", "drummer2_session1_1_rock_90_beat_4-4"):
        with np.load(folder / f"{stem}.npz") as z:
            assert set(z.files) == set(NPZ_KEYS)
            d = {k: z[k] for k in z.files}
        assert d["mel_drums"].dtype == np.float16 and d["mel_mix"].dtype == np.float16
        assert d["mel_drums"].shape == d["mel_mix"].shape and d["mel_drums"].shape[1] == 80
        assert d["tatum_times"].dtype == np.float32 and d["beat_times"].dtype == np.float32
        assert d["beat_positions"].dtype == np.int16 and d["targets"].dtype == np.uint8
        assert int(d["tatums_per_beat"]) == 4 and isinstance(d["kit"].item(), str)
        assert d["kit"].item() in {k.name for k in KITS}
        n_beats, tpb = len(d["beat_times"]), 4
        assert d["targets"].shape == (3, n_beats * tpb) == (3, len(d["tatum_times"]))
        # The mel covers every tatum and at most the tail (1 s) after the grid.
        grid_end = d["beat_times"][-1] + (d["beat_times"][-1] - d["beat_times"][-2])
        frames = d["mel_mix"].shape[0]
        assert grid_end * 100 <= frames <= (grid_end + 1.2) * 100
        audio, sr = librosa.load(folder / f"{stem}_mix.flac", sr=None)
        assert sr == SAMPLE_RATE and len(audio) // 441 + 1 == frames
        for inst in DEFAULT_INSTRUMENTS:
            assert d[f"onset_times_{inst.abbrev}"].dtype == np.float32


def test_build_targets_match_the_midi(built):
    folder, _ = built
    with np.load(folder / "drummer1_session1_1_rock_120_beat_4-4.npz") as z:
        d = {k: z[k] for k in z.files}
    offset = float(d["beat_times"][0])  # the file's first beat is at 0 s before the random lead-in
    np.testing.assert_allclose(d["beat_times"] - offset, np.arange(len(d["beat_times"])) * 0.5, atol=1e-4)
    assert len(d["beat_times"]) == 8  # 31 sixteenths of notes: the grid stops at the file's end
    np.testing.assert_array_equal(d["targets"], _expected_targets(TATUM_NOTES_A, 32))
    kicks = sorted(m * 0.125 for m, notes in TATUM_NOTES_A.items() if 36 in notes)
    np.testing.assert_allclose(np.sort(d["onset_times_BD"]) - offset, kicks, atol=0.013)
    assert len(d["onset_times_HH"]) == sum(n in (42, 22, 44, 46) for ns in TATUM_NOTES_A.values() for n in ns)

    with np.load(folder / "drummer2_session1_1_rock_90_beat_4-4.npz") as z:
        d = {k: z[k] for k in z.files}
    offset = float(d["beat_times"][0])
    # Cropped to 2 whole bars (the downbeat at 5.33 s is the last one within 6 s).
    assert len(d["beat_times"]) == 8 and d["targets"].shape == (3, 32)
    np.testing.assert_array_equal(d["beat_positions"], [1, 2, 3, 4, 1, 2, 3, 4])
    assert d["targets"][2].sum() == 16 and d["targets"][0].sum() == 4 and d["targets"][1].sum() == 4
    assert np.all(d["onset_times_HH"] - offset < 5.34)


def test_build_is_deterministic_and_counts_failures(fake_gmd, built, tmp_path):
    folder, stats = built
    # Same seed, one worker instead of two: the same examples.
    stats_again = build_split(fake_gmd, "train", tmp_path, max_seconds=6.0, workers=1, seed=7, max_files=1)
    assert stats_again["files"] == 1
    stem = "drummer1_session1_1_rock_120_beat_4-4"
    with np.load(folder / f"{stem}.npz") as a, np.load(tmp_path / "train" / f"{stem}.npz") as b:
        for key in NPZ_KEYS:
            np.testing.assert_array_equal(a[key], b[key])
    calls = []
    val = build_split(fake_gmd, "validation", tmp_path, max_seconds=6.0, workers=1,
                      progress=lambda done, total: calls.append((done, total)))
    assert val["files"] == 1 and val["failed"] == 1 and "broken" in val["failures"][0]["stem"]
    assert calls[-1] == (2, 2)
    assert set(val["quantization"]) == {"conflict", "far", "conflict_or_far"}
