"""build-dataset --v2 end to end on GMD-like files, and what trains on its output (the CRNN with
velocities, the separator)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

from grooves import four_bar_groove
from tatumdrum.instruments import SEVEN_CLASSES
from tatumdrum.weights import load_model


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
    pm = four_bar_groove()
    pm.instruments[0].notes += [pretty_midi.Note(110, 49, 0.0, 0.5), pretty_midi.Note(90, 45, 7.5, 7.6),
                                pretty_midi.Note(90, 46, 6.75, 6.9)]
    path = root / "d1" / "s1" / "1_rock_120_beat_4-4.mid"
    path.parent.mkdir(parents=True)
    pm.write(str(path))
    (root / "info.csv").write_text("drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,"
                                   "audio_filename,duration,split\n"
                                   "d1,d1/s1,x,rock,120,beat,4-4,d1/s1/1_rock_120_beat_4-4.mid,,8.0,train\n")
    return root


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


def test_separated_builds_train_a_model_for_separation(tmp_path, fake_gmd_v2):
    """--separated stores the bundled separator's drums of each mix; training then hears them as a source."""
    from tatumdrum.data.build import BuildOptions, build_split
    from tatumdrum.dataset import load_piece, source_mel
    from tatumdrum.training import TrainConfig, train

    options = BuildOptions(instruments=tuple(i.abbrev for i in SEVEN_CLASSES), v2=True, record_like=True,
                           drum_to_band_db=(-6.0, -6.0), separated=True)
    build_split(fake_gmd_v2, "train", tmp_path, max_seconds=6.0, workers=1, seed=5, keep_audio=True, options=options)
    piece = load_piece(next((tmp_path / "train").glob("*.npz")))
    sep, mix, drums = (piece.mels[s].astype(float) for s in ("separated", "mix", "drums"))
    assert sep.shape == mix.shape
    corr = lambda a, b: np.corrcoef(a.ravel(), b.ravel())[0, 1]
    # The separator takes the band away: its output is closer to the clean drum stem than the mix is.
    assert corr(sep, drums) > corr(mix, drums) + 0.02
    crop = source_mel(piece, "separated", 10, 110, np.random.default_rng(0))
    assert crop.shape == (100, mix.shape[1]) and np.all(np.isfinite(crop))
    (tmp_path / "validation").mkdir()
    for f in (tmp_path / "train").glob("*.npz"):
        (tmp_path / "validation" / f.name).write_bytes(f.read_bytes())
    cfg = TrainConfig(data=str(tmp_path), out=str(tmp_path / "m.pt"), epochs=1, steps_per_epoch=2, batch_size=2,
                      crop_tatums=16, max_valid=1)
    state = train(cfg)
    assert tuple(load_model(tmp_path / "m.pt").info["train_config"]["sources"]) == ("drums", "mix", "remix", "separated")
    assert "separated" in state["history"][0]["valid"]
    # Thresholds for separated audio: the pieces' separated spectrograms, and the mix of annotated audio
    # through the separator (a rendered folder with its audio is such a set).
    from typer.testing import CliRunner

    from tatumdrum.cli import app

    plain = Path(__file__).resolve().parents[1] / "models" / "table2" / "v24_crnn_bigram.pt"
    result = CliRunner().invoke(app, ["tune-thresholds", str(plain), "-o", str(tmp_path / "t.pt"), "--valid",
                                      str(tmp_path / "train"), "--recordings", str(tmp_path / "train"),
                                      "--sources", "separated"])
    assert result.exit_code == 0, result.output
    assert load_model(tmp_path / "t.pt").info["thresholds_sources"] == ["separated"]


def test_tuning_on_separated_audio_needs_pieces_built_with_it(tmp_path, fake_gmd_v2):
    from typer.testing import CliRunner

    from tatumdrum.cli import app
    from tatumdrum.data.build import BuildOptions, build_split

    options = BuildOptions(instruments=tuple(i.abbrev for i in SEVEN_CLASSES), v2=True, record_like=True)
    build_split(fake_gmd_v2, "train", tmp_path, max_seconds=6.0, workers=1, seed=5, options=options)
    plain = Path(__file__).resolve().parents[1] / "models" / "table2" / "v24_crnn_bigram.pt"
    result = CliRunner().invoke(app, ["tune-thresholds", str(plain), "-o", str(tmp_path / "t.pt"), "--valid",
                                      str(tmp_path / "train"), "--sources", "separated"])
    assert result.exit_code == 1 and "build them with --separated" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "t.pt").exists()
    result = CliRunner().invoke(app, ["tune-thresholds", str(plain), "-o", str(tmp_path / "t.pt"), "--valid",
                                      str(tmp_path / "train"), "--sources", "stems"])
    assert result.exit_code == 2 and "--sources stems: choose from drums, mix, separated" in result.output
