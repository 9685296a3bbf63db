"""Refactors keep every output: `tatumdrum transcribe` on the example clip and on a rendered song (drums
and a band through TinySoundFont) gives the MIDI, MusicXML and JSON kept in tests/golden/.

MusicXML must match byte for byte. MIDI and JSON are compared event by event and key by key, with
float slack only where a CPU's rounding can move the last digit (a beat's microseconds, phi's
fourth place). A deliberate change of the outputs (a new model, a writer change) regenerates them:
`TATUMDRUM_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py`, and the diff is reviewed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("TATUMDRUM_UPDATE_GOLDEN") == "1"

# A song of our own: 12 bars at 104 bpm of kick, snare, 8th hats, an open hat, a tom fill and crashes,
# with a band, rendered with pretty_midi's TimGM6mb through TinySoundFont (the renderer CI has).
RENDER = r"""
import sys
import numpy as np, pretty_midi, soundfile as sf
from tatumdrum.data.accompaniment import random_accompaniment
from tatumdrum.data.kits import render_drums
from tatumdrum.data.synthesis import SAMPLE_RATE, Kit, timgm_path

bpm, bars = 104.0, 12
beat = 60.0 / bpm
pm = pretty_midi.PrettyMIDI()
kit = pretty_midi.Instrument(0, is_drum=True)
def hit(pitch, t, v):
    kit.notes.append(pretty_midi.Note(v, pitch, 0.5 + t * beat, 0.5 + t * beat + 0.1))
for bar in range(bars):
    b = 4 * bar
    for e in range(8):
        if bar % 4 == 3 and e >= 4:
            continue
        hit(46 if e == 7 and bar % 2 else 42, b + e / 2, 70 + 20 * (e % 2 == 0))
    hit(36, b, 110); hit(36, b + 2.5, 95); hit(38, b + 1, 115); hit(38, b + 3, 118)
    if bar % 4 == 3:
        for i, p in enumerate((50, 47, 45, 43)):
            hit(p, b + 2 + i / 2, 105)
    if bar % 4 == 0:
        hit(49, b, 120)
pm.instruments.append(kit)
times = 0.5 + beat * np.arange(4 * bars + 1)
duration = times[-1] + 1.0
drums = render_drums(pm, Kit("TimGM6mb/Standard", "soundfont", timgm_path(), 128, 0, "TimGM6mb"),
                     np.random.default_rng(0), duration, vary=False)
band = random_accompaniment(times, np.arange(len(times)) % 4 + 1, duration, np.random.default_rng(1),
                            soundfont="TimGM6mb").audio
n = min(len(drums), len(band))
mix = drums[:n] / np.sqrt(np.mean(drums ** 2)) + 0.7 * band[:n] / np.sqrt(np.mean(band ** 2))
sf.write(sys.argv[1], (0.1 * mix).astype(np.float32), SAMPLE_RATE)
"""


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("golden_songs")
    song = folder / "song.wav"
    env = {**os.environ, "TATUMDRUM_SYNTH": "tinysoundfont"}
    subprocess.run([sys.executable, "-c", RENDER, str(song)], check=True, env=env, timeout=600)
    return {"groove": ROOT / "examples" / "groove.wav", "song": song}


def transcribe(audio: Path, out: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "tatumdrum", "transcribe", str(audio), "-o", str(out), "-q"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr


def midi_events(path: Path) -> list[tuple]:
    events = []
    for track in mido.MidiFile(str(path)).tracks:
        for msg in track:
            events.append(tuple(sorted(msg.dict().items())))
    return events


def assert_same_midi(new: Path, old: Path) -> None:
    a, b = midi_events(new), midi_events(old)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        dx, dy = dict(x), dict(y)
        if dx.get("type") == dy.get("type") == "set_tempo":
            assert abs(dx.pop("tempo") - dy.pop("tempo")) <= 2  # microseconds per beat
        assert dx == dy
    np.testing.assert_allclose(pretty_midi.PrettyMIDI(str(new)).get_beats(),
                               pretty_midi.PrettyMIDI(str(old)).get_beats(), atol=1e-4)


def assert_same_json(new: Path, old: Path) -> None:
    a, b = json.loads(new.read_text()), json.loads(old.read_text())
    assert a.pop("source").endswith(Path(b.pop("source")).name)
    np.testing.assert_allclose(a.pop("probabilities"), b.pop("probabilities"), atol=2e-4)
    for key in ("tatum_times", "tempo_bpm"):
        np.testing.assert_allclose(a.pop(key), b.pop(key), atol=1e-5)
    np.testing.assert_allclose(a["beats"].pop("times"), b["beats"].pop("times"), atol=1e-5)
    for bar_a, bar_b in zip(a["bars"], b["bars"]):
        assert abs(bar_a.pop("start") - bar_b.pop("start")) < 1e-5
    for drum in list(b["onsets"]):
        np.testing.assert_allclose(a["onsets"].pop(drum), b["onsets"].pop(drum), atol=1e-5)
    assert a == b


@pytest.mark.parametrize("name", ["groove", "song"])
def test_outputs_are_those_kept_in_golden(name, songs, tmp_path):
    outputs = {fmt: tmp_path / f"{name}.{fmt}" for fmt in ("mid", "musicxml", "json")}
    for path in outputs.values():
        transcribe(songs[name], path)
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        for fmt, path in outputs.items():
            (GOLDEN / path.name).write_bytes(path.read_bytes())
    kept = {fmt: GOLDEN / f"{name}.{fmt}" for fmt in outputs}
    assert outputs["musicxml"].read_bytes() == kept["musicxml"].read_bytes()
    assert_same_midi(outputs["mid"], kept["mid"])
    assert_same_json(outputs["json"], kept["json"])
    # Real transcriptions, not empty ones (the song holds 24 kicks, 24 snares and 84 hi-hats).
    found = json.loads(outputs["json"].read_text())["onsets"]
    assert min(len(found["BD"]), len(found["SD"]), len(found["HH"])) >= (15 if name == "song" else 3)
