"""Drum separation: the real Open-Unmix loaders and Separator on a tiny randomly initialised model.

The real weights cannot be fetched here (no network), so the tests save a small `OpenUnmix` in
the layout Open-Unmix's own loaders read and check the offline failure paths separately.
"""
from __future__ import annotations

import inspect
import json
import socket
import threading
import time
from pathlib import Path
import numpy as np
import openunmix
import pytest
import torch
from openunmix.model import OpenUnmix
from tatumdrum import separation
from tatumdrum.separation import HUB_DRUMS_FILES, DrumSeparator, SeparationUnavailable

NFFT, NHOP, RATE = 4096, 1024, 44100
HIDDEN, MAX_BIN = 16, 64
TARGET = "drums"


def _tiny_drums_model() -> OpenUnmix:
    torch.manual_seed(0)
    model = OpenUnmix(nb_bins=NFFT // 2 + 1, nb_channels=2, hidden_size=HIDDEN, max_bin=MAX_BIN)
    with torch.no_grad():
        # Non-trivial normalisation, so the mask depends on the input like a trained model's.
        model.input_mean.normal_(0.0, 0.5)
        model.input_scale.uniform_(0.5, 2.0)
        model.output_scale.uniform_(0.5, 1.5)
        model.output_mean.uniform_(-0.2, 0.8)
    return model


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as Open-Unmix's training script writes it and `load_separator` reads it."""
    folder = tmp_path_factory.mktemp("umx-tiny")
    torch.save(_tiny_drums_model().state_dict(), folder / "drums-0123abcd.pth")
    args = {"nfft": NFFT, "nhop": NHOP, "nb_channels": 2, "hidden_size": HIDDEN, "target": TARGET}
    (folder / "drums.json").write_text(json.dumps({"args": args}))
    separator_conf = {"nfft": NFFT, "nhop": NHOP, "sample_rate": float(RATE), "nb_channels": 2}
    (folder / "separator.json").write_text(json.dumps(separator_conf))
    return folder



@pytest.fixture(scope="module")
def separator(weights_dir: Path) -> DrumSeparator:
    return DrumSeparator.load(weights=weights_dir)


def _music(seconds: float, sr: int, channels: int, seed: int = 1) -> np.ndarray:
    """Decaying noise bursts (drum-like) over two tones."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    tones = 0.2 * np.sin(2 * np.pi * 220 * t) + 0.1 * np.sin(2 * np.pi * 330 * t)
    hits = np.zeros_like(t)
    for onset in np.arange(0.1, seconds, 0.25):
        i = int(onset * sr)
        n = min(len(t) - i, int(0.1 * sr))
        hits[i : i + n] += rng.standard_normal(n) * np.exp(-np.arange(n) / (0.02 * sr))
    mono = (tones + 0.3 * hits).astype(np.float32)
    if channels == 1:
        return mono
    return np.stack([mono, 0.8 * mono + 0.01 * rng.standard_normal(len(t)).astype(np.float32)])


def test_folder_goes_through_openunmix_loader(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = openunmix.utils.load_separator
    monkeypatch.setattr(openunmix.utils, "load_separator", lambda *a, **k: calls.append(k) or real(*a, **k))
    sep = DrumSeparator.load(weights=weights_dir)
    assert calls and calls[0]["targets"] == ["drums"]
    assert list(sep._separator.target_models) == ["drums"]
    saved = torch.load(weights_dir / "drums-0123abcd.pth", weights_only=True)
    assert torch.equal(sep._separator.target_models["drums"].fc1.weight, saved["fc1.weight"])
    assert sep.sample_rate == RATE
    assert not sep._separator.training


def test_bare_state_dict_gives_the_same_separator(weights_dir: Path, separator: DrumSeparator, tmp_path: Path) -> None:
    audio = _music(2.0, RATE, 2)
    expected = separator.separate(audio, RATE)
    bare_folder = tmp_path / "only-pth"
    bare_folder.mkdir()
    (bare_folder / "drums-0123abcd.pth").write_bytes((weights_dir / "drums-0123abcd.pth").read_bytes())
    for weights in (weights_dir / "drums-0123abcd.pth", bare_folder):
        np.testing.assert_allclose(DrumSeparator.load(weights=weights).separate(audio, RATE), expected, atol=1e-6)


def test_mono_22k(separator: DrumSeparator) -> None:
    audio = _music(3.0, 22050, 1)
    drums = separator.separate(audio, 22050)
    assert drums.shape == (1, len(audio)) and drums.dtype == np.float32
    assert np.isfinite(drums).all()
    assert not np.allclose(drums[0], audio, atol=1e-3)
    assert np.abs(drums).max() > 1e-3


def test_stereo_44k(separator: DrumSeparator) -> None:
    audio = _music(3.0, RATE, 2)
    drums = separator.separate(audio, RATE)
    assert drums.shape == audio.shape and drums.dtype == np.float32
    assert np.isfinite(drums).all()
    assert not np.allclose(drums, audio, atol=1e-3)


def test_short_and_empty_clips(separator: DrumSeparator) -> None:
    assert separator.separate(np.zeros((2, 0), np.float32), RATE).shape == (2, 0)
    clip = _music(0.01, 48000, 2)
    assert separator.separate(clip, 48000).shape == clip.shape


def test_rejects_more_than_two_channels(separator: DrumSeparator) -> None:
    with pytest.raises(ValueError, match="channels"):
        separator.separate(np.zeros((1000, 2), np.float32), RATE)


# 48 kHz chunk starts can only sit on model-rate STFT hops every 3.41 s, hence its longer chunks.
@pytest.mark.parametrize("sr, channels, chunk", [(RATE, 2, 4.0), (22050, 1, 4.0), (48000, 2, 8.0)])
def test_chunked_equals_unchunked(separator: DrumSeparator, sr: int, channels: int, chunk: float) -> None:
    audio = _music(10.0, sr, channels)
    whole = DrumSeparator(separator._separator, separator.source, chunk_seconds=None).separate(audio, sr)
    chunked = DrumSeparator(separator._separator, separator.source, chunk_seconds=chunk, overlap_seconds=chunk / 4)
    pieces = chunked.separate(audio, sr)
    # They are not bit-identical: each chunk's BiLSTM sees only its own chunk, and frames near a
    # chunk edge are computed from reflect-padded (and, off 44.1 kHz, edge-resampled) audio.
    # Both matter mostly inside the overlaps, where the crossfade gives each chunk's damaged edge
    # little weight.
    error = np.linalg.norm(pieces - whole) / np.linalg.norm(whole)
    assert error < 0.02, error
    # Away from the overlaps only the BiLSTM context differs, and that must be slight.
    first = slice(0, int(2.5 * sr))
    assert np.linalg.norm(pieces[:, first] - whole[:, first]) / np.linalg.norm(whole[:, first]) < 1e-3


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch.hub cache and a network that refuses every connection."""
    hub = tmp_path / "hub"
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))

    def refuse(*args: object, **kwargs: object) -> None:
        raise OSError("network disabled by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    return hub


def _assert_says_how_to_fix(message: str) -> None:
    assert "\n" not in message
    assert "tatumdrum separator download" in message and "--separator-weights" in message


def test_offline_load_raises_quickly(offline: Path) -> None:
    assert separation.hub_cache_path("umxl") == offline / "checkpoints" / "drums-69e0ebd4.pth"
    started = time.monotonic()
    with pytest.raises(SeparationUnavailable) as caught:
        DrumSeparator.load("umxl", download_timeout=5.0)
    assert time.monotonic() - started < 5.0
    _assert_says_how_to_fix(str(caught.value))


def test_offline_download_raises(offline: Path) -> None:
    with pytest.raises(SeparationUnavailable) as caught:
        separation.download("umxhq", timeout=5.0)
    _assert_says_how_to_fix(str(caught.value))


def test_hanging_network_hits_the_deadline(offline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()

    def hang(*args: object, **kwargs: object) -> None:
        release.wait(30)  # name resolution that never answers; socket timeouts do not cover it
        raise OSError("released")

    monkeypatch.setattr(socket, "getaddrinfo", hang)
    started = time.monotonic()
    try:
        with pytest.raises(SeparationUnavailable, match="TimeoutError") as caught:
            DrumSeparator.load("umxl", download_timeout=0.5)
        assert time.monotonic() - started < 3.0
        _assert_says_how_to_fix(str(caught.value))
    finally:
        release.set()


def test_unknown_model_name() -> None:
    with pytest.raises(SeparationUnavailable, match="umxl"):
        DrumSeparator.load("umxse")


def test_bad_weights_paths(tmp_path: Path, weights_dir: Path) -> None:
    with pytest.raises(SeparationUnavailable, match="do not exist") as caught:
        DrumSeparator.load(weights=tmp_path / "missing.pth")
    _assert_says_how_to_fix(str(caught.value))

    garbage = tmp_path / "drums-garbage.pth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(SeparationUnavailable, match="cannot load"):
        DrumSeparator.load(weights=garbage)

    not_umx = tmp_path / "other.pth"
    torch.save({"weight": torch.zeros(3)}, not_umx)
    with pytest.raises(SeparationUnavailable, match="not an Open-Unmix"):
        DrumSeparator.load(weights=not_umx)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SeparationUnavailable, match=r"no drums\*\.pth"):
        DrumSeparator.load(weights=empty)

    no_target_config = tmp_path / "no-drums-json"
    no_target_config.mkdir()
    for name in ("drums-0123abcd.pth", "separator.json"):
        (no_target_config / name).write_bytes((weights_dir / name).read_bytes())
    with pytest.raises(SeparationUnavailable, match="drums.json"):
        DrumSeparator.load(weights=no_target_config)


def test_hub_file_names_match_installed_openunmix() -> None:
    for model, file_name in HUB_DRUMS_FILES.items():
        assert f"/{file_name}" in inspect.getsource(getattr(openunmix, f"{model}_spec"))


# ---------------------------------------------------------------------------------------------
# The bundled separator (models/separator, trained by `tatumdrum train-separator`)

def _drums_and_band(seconds: float = 8.0) -> tuple[np.ndarray, np.ndarray]:
    """A rendered groove (TimGM6mb kit) and a bass-and-piano band, as separate stems."""
    from tatumdrum.data.fluid import fluid
    from tatumdrum.data.synthesis import SynthTrack, timgm_path

    beat = 0.5
    drums, bass, piano = [], [], []
    for i in range(int(seconds / beat)):
        t = 0.25 + i * beat
        drums += [(t, t + 0.1, 42, 90), (t + beat / 2, t + beat / 2 + 0.1, 42, 70)]
        drums.append((t, t + 0.1, 36 if i % 2 == 0 else 38, 110))
        bass.append((t, t + beat * 0.9, [40, 43, 45, 38][(i // 4) % 4], 100))
        if i % 2 == 0:
            piano += [(t, t + 2 * beat, p, 80) for p in (64, 67, 71)]
    n = int(seconds * RATE)
    d = fluid().render([SynthTrack(timgm_path(), 128, 0, drums, True)], n)
    b = fluid().render([SynthTrack(timgm_path(), 0, 33, bass), SynthTrack(timgm_path(), 0, 0, piano)], n)
    return d, b


def test_bundled_separator_loads_through_openunmix_and_finds_the_drums():
    from openunmix.utils import load_separator

    from tatumdrum.separator_training import sdr

    folder = separation.bundled_separator_path()
    assert {"separator.json", "drums.json", "drums.pth"} <= {p.name for p in folder.iterdir()}
    # Open-Unmix's own loader reads the folder: the official layout.
    umx = load_separator(str(folder), targets=[TARGET], niter=0, pretrained=True)
    assert umx.sample_rate.item() == RATE and len(umx.target_models) == 1
    sep = DrumSeparator.load("bundled")
    assert sep.source == "bundled"
    drums, band = _drums_and_band()
    mix = drums + band
    est = sep.separate(mix, RATE)
    assert est.shape == (1, len(mix)) and np.all(np.isfinite(est))
    # Separation brings the estimate much closer to the true drum stem than the mixture is.
    assert sdr(drums, est[0]) > sdr(drums, mix) + 3.0
    # Stereo input is folded for the mono model and comes back stereo.
    assert sep.separate(np.stack([mix, mix]), RATE).shape == (2, len(mix))


def test_auto_separation_offline_uses_the_bundled_separator_without_a_word(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from tatumdrum.cli import app

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-cache"))  # no official weights cached
    example = Path(__file__).resolve().parents[1] / "examples" / "groove.wav"
    runner = CliRunner()
    for flags, expected in (([], None), (["--separation", "auto"], "bundled"),
                            (["--separation", "required"], "bundled")):
        out = tmp_path / f"{flags[-1] if flags else 'default'}.json"
        result = runner.invoke(app, ["transcribe", str(example), "-o", str(out), "--quiet", *flags])
        assert result.exit_code == 0, result.output
        assert "warning" not in result.output.lower() and "download" not in result.output.lower()
        assert json.loads(out.read_text())["separation"] == expected
    assert not (tmp_path / "empty-cache").exists() or not any((tmp_path / "empty-cache").rglob("*.pth"))


def test_separator_score_and_evaluate_with_separation(tmp_path):
    """The CLI measures the bundled separator on MDB-style folders: SDR against the true stem, and F."""
    import soundfile as sf
    from typer.testing import CliRunner

    from tatumdrum.cli import app

    drums, band = _drums_and_band()
    track = tmp_path / "mdb" / "Groove"
    track.mkdir(parents=True)
    sf.write(track / "drums.wav", drums, RATE)
    sf.write(track / "rawsum.wav", drums + band, RATE)
    beats = 0.25 + 0.5 * np.arange(16)
    (track / "beats.tsv").write_text("".join(f"{t:.3f}\t{i % 4 + 1}\n" for i, t in enumerate(beats)))
    (track / "onsets.tsv").write_text("".join(f"{t:.3f}\t{'KD' if i % 2 == 0 else 'SD'}\n" for i, t in enumerate(beats)))
    runner = CliRunner()
    result = runner.invoke(app, ["separator", "score", str(tmp_path / "mdb")])
    assert result.exit_code == 0, result.output
    mean = [line for line in result.output.splitlines() if line.startswith("| mean")][0]
    sdr_mix, sdr_sep = (float(v) for v in mean.split("|")[2:4])
    assert sdr_sep > sdr_mix + 3.0
    result = runner.invoke(app, ["evaluate", str(tmp_path / "mdb"), "--sources", "mix", "--beats", "given",
                                 "--separation", "auto"])
    assert result.exit_code == 0, result.output
    row = [line for line in result.output.splitlines() if line.startswith("| mix | given")][0]
    assert float(row.split("|")[4].split()[0]) > 80.0  # BD F on the separated drums
