"""Training packs: sound sources shrunk to travel to a GPU machine, which renders and trains from them alone."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from grooves import four_bar_groove
from recorded import SR, write_hydrogen_kit, write_multimic_kit
from tatumdrum.data.multimic import _mixed_take, load_multimic_kit
from tatumdrum.data.pack import PackOptions, audible_length, pack_gmd, pack_multimic_kit, pack_pianos
from tatumdrum.data.sampled import load_sampled_instruments


def test_audible_length_ends_where_every_channel_has_decayed():
    t = np.arange(SR) / SR
    fast = np.exp(-t * 40).astype(np.float32)  # -60 dB after 0.173 s
    slow = 0.5 * np.exp(-t * 20).astype(np.float32)  # reaches -60 dB of the peak at about 0.31 s
    n = audible_length([fast, slow], -60.0)
    assert abs(n / SR - np.log(0.5 / 1e-3) / 20) < 0.002
    assert audible_length([np.zeros(100, np.float32)], -60.0) == 0


def test_a_packed_kit_keeps_its_pieces_groups_and_dynamics(tmp_path):
    kit_dir = write_multimic_kit(tmp_path / "src")
    original = load_multimic_kit(kit_dir)
    written = pack_multimic_kit(kit_dir, tmp_path / "pack" / "TinyKit", PackOptions(max_takes=2))
    assert written == 2 * len(original.pieces)
    packed = load_multimic_kit(tmp_path / "pack" / "TinyKit")
    assert set(packed.pieces) == set(original.pieces)
    # OHL and OHR are one group (one fader), so they travel as one channel, named after OHL.
    assert set(packed.mics) == {"OHL", "AmbL", "Snare_top"}
    assert all(p.suffix == ".ogg" for takes in packed.pieces.values() for take in takes for p in take.values())
    # The quietest and the loudest take were kept, and every group at one fader sounds as before.
    gains = {m: 1.0 for m in original.mics}
    for packed_take, source_take in zip(packed.pieces["Snare"], (original.pieces["Snare"][0], original.pieces["Snare"][-1])):
        before, after = _mixed_take(source_take, gains), _mixed_take(packed_take, gains)
        n = min(len(before), len(after))
        err = np.sum((before[:n] - after[:n]) ** 2) / np.sum(before[:n] ** 2)
        assert err < 0.01
    quiet, loud = (np.max(np.abs(_mixed_take(t, gains))) for t in packed.pieces["Snare"])
    assert loud > 2 * quiet


def _write_pianos(root: Path) -> Path:
    folder = root / "piano"
    folder.mkdir(parents=True)
    t = np.arange(int(6 * SR)) / SR
    for layer, amp in (("PP", 0.1), ("MF", 0.3), ("FF", 0.8)):
        for note in range(60, 68):
            tone = amp * np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * t) * np.exp(-t)
            sf.write(folder / f"{layer} {note}.flac", tone, SR)
    return folder


def test_packed_pianos_keep_spread_keys_of_the_outer_and_middle_layers_shortened(tmp_path):
    folder = _write_pianos(tmp_path / "src")
    written = pack_pianos(folder, tmp_path / "pack" / "piano", PackOptions(piano_step=4, max_piano_layers=2,
                                                                           piano_seconds=2.0))
    (instrument,) = load_sampled_instruments(tmp_path / "pack" / "piano")
    assert written == 4 and len(instrument.layers) == 2
    assert [[note for note, _ in layer] for layer in instrument.layers] == [[60, 64], [60, 64]]
    loud = sf.read(str(instrument.layers[-1][0][1]))[0]
    quiet = sf.read(str(instrument.layers[0][0][1]))[0]
    assert len(loud) == 2 * SR and np.max(np.abs(loud)) > 4 * np.max(np.abs(quiet))


def _write_gmd(root: Path) -> Path:
    rows = []
    for i, split in enumerate(("train", "validation", "test")):
        path = root / "d1" / "s1" / f"{i}_rock_120_beat_4-4.mid"
        path.parent.mkdir(parents=True, exist_ok=True)
        four_bar_groove().write(str(path))
        rows.append(f"d1,d1/s1,{i},rock,120,beat,4-4,d1/s1/{path.name},,8.0,{split}")
    (root / "info.csv").write_text("drummer,session,id,style,bpm,beat_type,time_signature,midi_filename,"
                                   "audio_filename,duration,split\n" + "\n".join(rows) + "\n")
    (root / "LICENSE").write_text("CC BY 4.0\n")
    return root


def test_a_packed_gmd_holds_the_chosen_splits_only(tmp_path):
    gmd = _write_gmd(tmp_path / "gmd")
    assert pack_gmd(gmd, tmp_path / "pack", ("train", "validation")) == 2
    lines = (tmp_path / "pack" / "info.csv").read_text().splitlines()
    assert len(lines) == 3 and lines[0].startswith("drummer,") and not any(l.endswith(",test") for l in lines)
    assert len(list((tmp_path / "pack").rglob("*.mid"))) == 2 and (tmp_path / "pack" / "LICENSE").is_file()


def _tatumdrum(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def test_a_pack_renders_and_trains_without_the_full_sources_or_fluidsynth(tmp_path):
    """The GPU recipe on the CPU: pack, then build from the pack alone with TinySoundFont, then train
    with crop workers."""
    pytest.importorskip("tinysoundfont")
    gmd = _write_gmd(tmp_path / "gmd")
    write_multimic_kit(tmp_path / "kits")
    write_hydrogen_kit(tmp_path / "kits")
    pianos = _write_pianos(tmp_path / "pianos")
    pack = tmp_path / "pack"
    done = _tatumdrum("pack", str(gmd), str(pack), "--kit-dir", str(tmp_path / "kits"), "--piano-dir", str(pianos))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MiB" in done.stderr and (pack / "pack.json").is_file()
    assert sorted(p.name for p in (pack / "kits").iterdir()) == ["TinyHydrogen", "TinyKit"]
    data = tmp_path / "data"
    built = _tatumdrum("build-dataset", str(pack / "gmd"), str(data), "--splits", "train,validation", "--v2",
                       "--kit-dir", str(pack / "kits"), "--piano-dir", str(pack / "pianos"), "--max-seconds", "6",
                       "--workers", "1", env={"TATUMDRUM_SYNTH": "tinysoundfont"})
    assert built.returncode == 0, built.stdout + built.stderr
    assert len(list((data / "train").glob("*.npz"))) == 1 and len(list((data / "validation").glob("*.npz"))) == 1
    trained = _tatumdrum("train", str(data), "--out", str(tmp_path / "m.pt"), "--epochs", "1", "--steps-per-epoch",
                         "2", "--batch-size", "2", "--crop-tatums", "16", "--channels", "8,8", "--gru-hidden", "16",
                         "--crop-workers", "1")
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert (tmp_path / "m.pt").is_file()


def test_pack_refuses_an_existing_folder_and_a_pack_over_its_limit_leaving_nothing(tmp_path):
    gmd = _write_gmd(tmp_path / "gmd")
    kit = write_multimic_kit(tmp_path / "kits")
    (tmp_path / "taken").mkdir()
    done = _tatumdrum("pack", str(gmd), str(tmp_path / "taken"))
    assert done.returncode == 1 and "already exists" in done.stderr and "Traceback" not in done.stdout + done.stderr
    done = _tatumdrum("pack", str(gmd), str(tmp_path / "big"), "--kit-dir", str(kit), "--max-mib", "0.001")
    assert done.returncode == 1 and "--max-mib" in done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gmd", "kits", "taken"]
    done = _tatumdrum("pack", str(tmp_path / "kits"), str(tmp_path / "p"))
    assert done.returncode == 1 and "no info.csv" in done.stderr


def test_a_packed_hydrogen_kit_points_at_its_ogg_samples_and_renders(tmp_path):
    from tatumdrum.data.hydrogen import hydrogen_kit
    from tatumdrum.data.kits import folder_kits, render_drums
    from tatumdrum.data.pack import pack_hydrogen_kit

    source = write_hydrogen_kit(tmp_path / "src")
    assert pack_hydrogen_kit(source, tmp_path / "pack" / "TinyHydrogen") == 4
    before, after = hydrogen_kit(source / "drumkit.xml"), hydrogen_kit(tmp_path / "pack" / "TinyHydrogen" / "drumkit.xml")
    assert set(after.roles) == set(before.roles) and after.usable
    kick = after.roles["kick"][0]
    assert [layer.path.name for layer in kick.layers] == ["Kick & Co soft.ogg", "Kick & Co hard.ogg"]
    assert sf.info(str(kick.layers[0].path)).samplerate == SR  # resampled from 48 kHz when packed
    (kit,) = folder_kits([tmp_path / "pack"])
    assert kit.kind == "hydrogen"
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, p, t, t + 0.1) for t, p in ((0.0, 36), (0.5, 38), (0.25, 42))]
    pm.instruments.append(drums)
    audio = render_drums(pm, kit, np.random.default_rng(0), duration=1.0)
    assert np.max(np.abs(audio[: int(0.2 * SR)])) > 0.05 and np.max(np.abs(audio[int(0.5 * SR): int(0.7 * SR)])) > 0.05
