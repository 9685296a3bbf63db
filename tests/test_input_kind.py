"""Drum stem or full mix: the percussiveness measure on real rendered audio, and a model file that holds a mix
model and a stem model, built by `tatumdrum route` from real networks and used through the real pipeline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from tatumdrum.beats import BeatTracker
from tatumdrum.data import effects
from tatumdrum.data.accompaniment import random_accompaniment
from tatumdrum.data.gmd import midi_beat_grid
from tatumdrum.features import MEL, load_audio, log_mel
from tatumdrum.inference import Transcriber
from tatumdrum.input_kind import STEM_PERCUSSIVENESS, input_kind, percussiveness
from tatumdrum.weights import ModelFileError, load_model, with_stem_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
MODELS = ROOT / "models" / "table2"
# Two real eight-class networks that hear the same clip differently.
MIX, STEM = MODELS / "v21_crnn_bigram.pt", MODELS / "v22_crnn_none.pt"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def audio() -> dict[str, np.ndarray]:
    """The example groove (drums with a band 12 dB below), and the same groove under a band 6 dB above it."""
    groove = load_audio(CLIP)
    grid = midi_beat_grid(pretty_midi.PrettyMIDI(str(CLIP.with_suffix(".mid"))))
    band = random_accompaniment(grid.times, grid.positions, len(groove) / MEL.sample_rate,
                                np.random.default_rng(1), soundfont="TimGM6mb").audio[:len(groove)]
    band = effects.gain(band, effects.rms_db(groove) + 6.0 - effects.rms_db(band))
    return {"stem": groove, "mix": effects.normalize_peak(groove + band, -1.0)}


def test_percussiveness_tells_the_drums_from_the_band_that_buries_them(audio):
    drums, mix = percussiveness(log_mel(audio["stem"])), percussiveness(log_mel(audio["mix"]))
    assert drums >= STEM_PERCUSSIVENESS > mix
    assert input_kind(log_mel(audio["stem"])) == "stem" and input_kind(log_mel(audio["mix"])) == "mix"
    # A level-free measure: the same audio 20 dB quieter reads the same.
    assert abs(percussiveness(log_mel(audio["stem"] * 0.1)) - drums) < 0.01
    assert percussiveness(np.zeros((100, 80), np.float32)) == 0.0


@pytest.fixture(scope="module")
def joined(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("route") / "routed.pt"
    result = run("route", str(MIX), "--stem", str(STEM), "-o", str(out))
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert MIX.name in said and STEM.name in said
    return out


def test_each_file_is_heard_by_the_model_its_sound_calls_for(audio, joined):
    model, mix, stem = load_model(joined), load_model(MIX), load_model(STEM)
    assert model.stem_model is not None and model.stem_percussiveness == pytest.approx(STEM_PERCUSSIVENESS)
    # Each model keeps its own thresholds through the file.
    np.testing.assert_allclose(model.policy.as_array(), mix.policy.as_array())
    np.testing.assert_allclose(model.stem_model.policy.as_array(), stem.policy.as_array())
    beats = BeatTracker()(audio["stem"])
    routed = Transcriber(model)
    for kind, alone in (("stem", stem), ("mix", mix)):
        score, _ = routed.transcribe_audio(audio[kind], beats)
        reference, _ = Transcriber(alone).transcribe_audio(audio[kind], beats)
        assert score.meta["input"] == kind
        np.testing.assert_allclose(score.probabilities, reference.probabilities, atol=1e-5)
        assert np.array_equal(score.onsets, reference.onsets)
    # The two models really differ on this clip, so the test tells them apart.
    other, _ = Transcriber(mix).transcribe_audio(audio["stem"], beats)
    assert np.abs(other.probabilities - routed.transcribe_audio(audio["stem"], beats)[0].probabilities).max() > 0.05
    # Told the kind, the file's own sound is not asked.
    forced, _ = Transcriber(model, input_kind="mix").transcribe_audio(audio["stem"], beats)
    assert forced.meta["input"] == "mix"
    np.testing.assert_allclose(forced.probabilities, other.probabilities, atol=1e-5)


def test_cli_transcribes_with_a_joined_model_and_says_which_heard_it(audio, joined, tmp_path):
    wav = tmp_path / "mix.wav"
    sf.write(wav, audio["mix"], MEL.sample_rate)
    for source, kind in ((CLIP, "stem"), (wav, "mix")):
        out = tmp_path / f"{kind}.json"
        result = run("transcribe", str(source), "-o", str(out), "-m", str(joined))
        assert result.returncode == 0, result.stderr
        assert json.loads(out.read_text())["input"] == kind
    midi = tmp_path / "forced.mid"
    result = run("transcribe", str(CLIP), "-o", str(midi), "-m", str(joined), "--input", "mix")
    assert result.returncode == 0, result.stderr
    assert {36, 38, 42} <= {n.pitch for n in pretty_midi.PrettyMIDI(str(midi)).instruments[0].notes}


def test_bad_joins_and_options_end_in_one_line(joined, tmp_path):
    def one_line(result: subprocess.CompletedProcess, *words: str) -> None:
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and all(w in result.stderr for w in words)

    three = MODELS / "crnn_bigram.pt"
    out = tmp_path / "bad.pt"
    one_line(run("route", str(MIX), "--stem", str(three), "-o", str(out)), three.name, "drums BD/SD/HH")
    one_line(run("route", str(joined), "--stem", str(STEM), "-o", str(out)), joined.name, "already")
    one_line(run("route", str(MIX), "--stem", str(STEM), "-o", str(MIX)), "--out")
    assert not out.exists()
    one_line(run("tune-thresholds", str(joined), "-o", str(out), "--recordings", str(tmp_path)), "--sources", "route")
    one_line(run("tune-thresholds", str(MIX), "-o", str(out), "--sources", "band"), "--sources")
    one_line(run("ensemble", str(joined), str(MIX), "-o", str(out)), joined.name)
    one_line(run("transcribe", str(CLIP), "-o", str(tmp_path / "x.mid"), "--input", "drums"), "--input")
    one_line(run("evaluate", str(tmp_path), "--input", "drums"), "--input")
    one_line(run("evaluate", str(tmp_path), "--sources", "stems"), "--sources")
    assert not out.exists() and not (tmp_path / "x.mid").exists()
    with pytest.raises(ModelFileError):
        with_stem_model(load_model(joined), load_model(STEM), ("joined", "stem"), 0.1)
