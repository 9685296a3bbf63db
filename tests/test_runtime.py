"""The ONNX runtime: exports hear what their torch models hear, and transcription needs no torch.

Real audio, real madmom beats, real onnxruntime sessions and real torch networks; the outputs are read
back as bytes. Without torch is tested by a process whose import system finds no torch, torchaudio,
openunmix or onnx (a fresh `pip install .` was also checked by hand: bench/PROCESS.md).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tatumdrum.decisions import DecisionPolicy
from tatumdrum.export import export_model
from tatumdrum.features import load_audio, log_mel
from tatumdrum.inference import Transcriber, encode, tatum_outputs
from tatumdrum.instruments import SEVEN_CLASSES
from tatumdrum.model import CRNNConfig, FrameCRNN, TatumCRNN, tatum_max_pool as torch_pool
from tatumdrum.runtime import OnnxEnsemble, tatum_max_pool
from tatumdrum.tatums import interpolate_tatums, tatum_frame_spans
from tatumdrum.weights import DEFAULT_EXPORT, TrainedModel, bundled_model_path, load_model
from tatumdrum.writers import write_score

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
# A process without the optional packages: its import system finds none of them.
NO_TORCH = """
import sys
class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"torch", "torchaudio", "openunmix", "onnx"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Blocker())
from tatumdrum.__main__ import main
sys.argv = ["tatumdrum", *sys.argv[1:]]
main()
"""


def run(*args: str, light: bool = False) -> subprocess.CompletedProcess:
    prefix = ["-c", NO_TORCH] if light else ["-m", "tatumdrum"]
    return subprocess.run([sys.executable, *prefix, *args], capture_output=True, text=True, timeout=600)


def one_error_line(result: subprocess.CompletedProcess, *names: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode != 0 and len(lines) == 1, result.stderr
    assert all(name in lines[0] for name in names), lines[0]
    assert "Traceback" not in result.stderr


def test_numpy_pooling_is_eq1_as_torch_computes_it():
    rng = np.random.default_rng(0)
    frames = rng.standard_normal((700, 12)).astype(np.float32)
    # Tatums past both ends of the frames (clipped spans) and a fast stretch (one-frame spans).
    beats = np.concatenate([np.arange(-0.3, 3.0, 0.5), 3.0 + np.arange(0, 4.5, 0.09)])
    spans = tatum_frame_spans(interpolate_tatums(beats), 100.0, len(frames))
    expected = torch_pool(torch.from_numpy(frames), torch.from_numpy(spans).long()).numpy()
    assert np.array_equal(tatum_max_pool(frames, spans), expected)


def test_the_bundled_export_is_the_bundled_model():
    """phi and velocities of both routes within 1e-4 on real audio, the encoder exact across chunks."""
    torch_model, onnx_model = load_model(bundled_model_path("crnn.pt")), load_model()
    assert bundled_model_path(DEFAULT_EXPORT).is_file() and isinstance(onnx_model.net, OnnxEnsemble)
    mel = log_mel(load_audio(CLIP))
    tatums = interpolate_tatums(np.arange(0.49, 21.8, 0.6))
    for a, b in ((torch_model, onnx_model), (torch_model.stem_model, onnx_model.stem_model)):
        assert a.policy == b.policy and a.instruments == b.instruments
        (phi_a, vel_a), (phi_b, vel_b) = tatum_outputs(a, mel, tatums), tatum_outputs(b, mel, tatums)
        assert phi_a.shape == phi_b.shape == (8, len(tatums)) and phi_a.max() > 0.5
        assert np.abs(phi_a - phi_b).max() < 1e-4 and np.abs(vel_a - vel_b).max() < 1e-4
    member = onnx_model.net.members[0]
    whole = member.encode_song(mel[:1500])
    assert np.allclose(member.encode_song(mel[:1500], chunk_frames=400), whole, atol=1e-5)
    assert np.abs(encode(onnx_model, mel) - encode(torch_model, mel).numpy()).max() < 1e-4


def test_every_output_of_the_export_equals_the_torch_models(tmp_path):
    """The CLI (onnxruntime) writes the bytes the torch model's transcription writes, beats tracked by madmom."""
    formats = ("mid", "musicxml")
    for fmt in formats:
        assert run("transcribe", str(CLIP), "-o", str(tmp_path / f"onnx.{fmt}"), "-q").returncode == 0
    transcriber = Transcriber.load(bundled_model_path("crnn.pt"))
    transcriber.model.info["name"] = "bundled crnn.pt"
    score, _ = transcriber.transcribe_audio(load_audio(CLIP))
    score.meta["source"] = str(CLIP)
    for fmt in formats:
        write_score(score, tmp_path / f"torch.{fmt}")
        assert (tmp_path / f"onnx.{fmt}").read_bytes() == (tmp_path / f"torch.{fmt}").read_bytes()
    assert score.onsets.sum() > 50


@pytest.mark.parametrize("kind", ["tatum", "frame"])
def test_export_command_on_a_model_of_our_own(tmp_path, kind):
    """`tatumdrum export` on a small network with weights of our own (no velocity head, one GRU layer);
    the export loads and runs `transcribe --model` without torch."""
    torch.manual_seed(3)
    cfg = CRNNConfig(n_instruments=7, channels=(4, 8), gru_hidden=16, gru_layers=1, velocity=False)
    net = (TatumCRNN if kind == "tatum" else FrameCRNN)(cfg).eval()
    with torch.no_grad():  # batch-norm statistics of a trained network, not the identity of a fresh one
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    model = TrainedModel(net, kind, SEVEN_CLASSES, DecisionPolicy.uniform(SEVEN_CLASSES, 0.5))
    model.save(tmp_path / "m.pt")
    result = run("export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "m.onnx.zip"))
    assert result.returncode == 0, result.stderr
    exported = load_model(tmp_path / "m.onnx.zip")
    mel = log_mel(load_audio(CLIP))[:900]
    tatums = interpolate_tatums(np.arange(0.49, 9.0, 0.6))
    phi_a, vel_a = tatum_outputs(load_model(tmp_path / "m.pt"), mel, tatums)
    phi_b, vel_b = tatum_outputs(exported, mel, tatums)
    assert vel_a is None and vel_b is None and np.abs(phi_a - phi_b).max() < 1e-4
    light = run("transcribe", str(CLIP), "--model", str(tmp_path / "m.onnx.zip"), "-o", str(tmp_path / "x.mid"),
                light=True)
    assert light.returncode == 0 and (tmp_path / "x.mid").is_file(), light.stderr
    # An export is not exported again, and the model file is never written over.
    one_error_line(run("export", str(tmp_path / "m.onnx.zip"), "-o", str(tmp_path / "n.onnx.zip")), "m.onnx.zip", ".pt")
    one_error_line(run("export", str(tmp_path / "m.pt"), "-o", str(tmp_path / "m.pt")), "m.pt", "new file")
    assert load_model(tmp_path / "m.pt").kind == kind and not (tmp_path / "n.onnx.zip").exists()


def test_transcription_needs_no_torch_and_each_extra_is_named(tmp_path):
    result = run("transcribe", str(CLIP), "-o", str(tmp_path / "light.mid"), "-q", light=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "light.mid").read_bytes() == (ROOT / "tests" / "golden" / "groove.mid").read_bytes()
    one_error_line(run("transcribe", str(CLIP), "-o", str(tmp_path / "s.mid"), "--separation", "auto", light=True),
                   "--separation", "tatumdrum[separation]")
    one_error_line(run("transcribe", str(CLIP), "-o", str(tmp_path / "p.mid"), "--model",
                       str(bundled_model_path("crnn.pt")), light=True), "crnn.pt", "tatumdrum[train]")
    one_error_line(run("train", str(tmp_path), "--out", str(tmp_path / "m.pt"), light=True), "tatumdrum[train]")
    one_error_line(run("export", str(bundled_model_path("crnn.pt")), "-o", str(tmp_path / "e.onnx.zip"), light=True),
                   "tatumdrum[train]")
    assert not any(tmp_path.glob("[spme]*.*"))
