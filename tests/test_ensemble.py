"""Ensembles: one model file that averages the onset probabilities of several trained networks, built by
`tatumdrum ensemble` from real model files and used through the real transcription path."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
import numpy as np
import pretty_midi
import pytest
from tatumdrum.beats import BeatTracker
from tatumdrum.features import load_audio, log_mel
from tatumdrum.inference import Transcriber, tatum_outputs
from tatumdrum.model import TatumEnsemble
from tatumdrum.score import DrumScore
from tatumdrum.weights import ModelFileError, ensemble, load_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
MODELS = ROOT / "models"
# Two trained eight-class networks: v2.1 (bi-gram regulariser) and v2.2's twin trained without an LM.
A, B = MODELS / "table2" / "v21_crnn_bigram.pt", MODELS / "table2" / "v22_crnn_none.pt"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def clip() -> tuple[np.ndarray, np.ndarray]:
    """The example's log-mel spectrogram and its tatums from real madmom beats."""
    audio = load_audio(CLIP)
    beats = BeatTracker()(audio)
    return log_mel(audio), DrumScore(beats, 4, np.zeros((0, len(beats.times) * 4), bool), ()).tatum_times


def test_ensemble_phi_and_velocity_are_the_members_mean(clip, tmp_path):
    mel, tatums = clip
    a, b = load_model(A), load_model(B)
    path = tmp_path / "ens.pt"
    ensemble([a, b], [A.name, B.name]).save(path)
    model = load_model(path)
    assert isinstance(model.net, TatumEnsemble) and len(model.net.members) == 2
    phi, velocity = tatum_outputs(model, mel, tatums)
    (phi_a, vel_a), (phi_b, vel_b) = tatum_outputs(a, mel, tatums), tatum_outputs(b, mel, tatums)
    np.testing.assert_allclose(phi, (phi_a + phi_b) / 2, atol=1e-5)
    np.testing.assert_allclose(velocity, (vel_a + vel_b) / 2, atol=1e-5)
    # The members really differ, so the mean is not either of them.
    assert np.abs(phi_a - phi_b).max() > 0.05
    # Until tuned, each drum's threshold is the members' mean.
    np.testing.assert_allclose(model.policy.as_array(), (a.policy.as_array() + b.policy.as_array()) / 2, atol=1e-4)
    assert [m["name"] for m in model.info["members"]] == [A.name, B.name]


def test_an_ensemble_of_an_ensemble_holds_its_networks_once(tmp_path):
    a, b = load_model(A), load_model(B)
    nested = ensemble([ensemble([a, b], ["a", "b"]), a], ["ab", "a"])
    assert len(nested.net.members) == 3
    nested.save(tmp_path / "n.pt")
    assert len(load_model(tmp_path / "n.pt").net.members) == 3


def test_cli_builds_tunes_and_transcribes_with_an_ensemble(tmp_path):
    ens = tmp_path / "ens.pt"
    result = run("ensemble", str(A), str(B), "-o", str(ens))
    assert result.returncode == 0, result.stderr
    said = result.stdout + result.stderr
    assert "2 networks" in said and "tune-thresholds" in said
    midi = tmp_path / "drums.mid"
    result = run("transcribe", str(CLIP), "-o", str(midi), "-m", str(ens), "--separation", "none")
    assert result.returncode == 0, result.stderr
    notes = pretty_midi.PrettyMIDI(str(midi)).instruments[0].notes
    assert {36, 38, 42} <= {n.pitch for n in notes}
    # The same song through the Python API gives the same strokes.
    score = Transcriber.load(ens).transcribe(CLIP)
    assert len(notes) == int(score.onsets.sum())


@pytest.mark.parametrize("other, message", [
    (MODELS / "table2" / "crnn_frame.pt", "frame-level model"),
    (MODELS / "table2" / "crnn_bigram.pt", "drums BD/SD/HH"),
])
def test_cli_refuses_networks_that_cannot_be_averaged(tmp_path, other, message):
    out = tmp_path / "bad.pt"
    result = run("ensemble", str(A), str(other), "-o", str(out))
    assert result.returncode != 0 and not out.exists()
    assert message in result.stderr and other.name in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_cli_refuses_one_model_and_training_from_an_ensemble(tmp_path):
    result = run("ensemble", str(A), "-o", str(tmp_path / "one.pt"))
    assert result.returncode != 0 and "two or more" in result.stderr and not (tmp_path / "one.pt").exists()
    ens = tmp_path / "ens.pt"
    ensemble([load_model(A), load_model(B)], ["a", "b"]).save(ens)
    result = run("train", str(tmp_path), "--out", str(tmp_path / "m.pt"), "--init", str(ens))
    assert result.returncode != 0 and "--init" in result.stderr and "ensemble" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_ensemble_needs_two_networks_of_the_same_classes():
    with pytest.raises(ValueError):
        TatumEnsemble([load_model(A).net])
    with pytest.raises(ModelFileError):
        ensemble([load_model(A), load_model(MODELS / "table2" / "crnn_none.pt")], ["a", "none"])
