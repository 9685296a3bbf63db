"""Recorded multi-mic kits: indexed by take and loudness, rendered from their takes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from tatumdrum.data.drumnotes import GROUPS
from tatumdrum.data.kits import multimic_kits, render_drums
from tatumdrum.data.multimic import load_multimic_kit, render_multimic

SR = 44100


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
