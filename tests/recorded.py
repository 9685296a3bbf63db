"""Tiny recorded-instrument folders in the layouts the samplers read, for tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

SR = 44100


def write_multimic_kit(root: Path) -> Path:
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


def write_hydrogen_kit(root: Path) -> Path:
    """A tiny Hydrogen kit: kick (two velocity layers, 48 kHz, a name that XML must escape), snare and
    closed hi-hat, in the layered drumkit.xml format."""
    kit = root / "TinyHydrogen"
    kit.mkdir(parents=True)
    instruments = []
    for name, freq, layers, sr in (("Kick", 60, (("Kick & Co soft.wav", 0.0, 0.5, 0.3), ("Kick & Co hard.wav", 0.5, 1.0, 0.9)), 48000),
                                   ("Snare", 200, (("Snare.flac", 0.0, 1.0, 0.7),), SR),
                                   ("Hihat Closed", 6000, (("Hat.flac", 0.0, 1.0, 0.4),), SR)):
        t = np.arange(int(0.3 * sr)) / sr
        xml_layers = []
        for fname, vmin, vmax, amp in layers:
            sf.write(kit / fname, amp * np.sin(2 * np.pi * freq * t) * np.exp(-t * 15), sr)
            escaped = fname.replace("&", "&amp;")
            xml_layers.append(f"<layer><filename>{escaped}</filename><min>{vmin}</min><max>{vmax}</max>"
                              "<gain>1</gain><pitch>0</pitch></layer>")
        instruments.append(f"<instrument><name>{name}</name><volume>1</volume>{''.join(xml_layers)}</instrument>")
    (kit / "drumkit.xml").write_text("<drumkit_info><name>TinyHydrogen</name><license>CC0</license><instrumentList>"
                                     + "".join(instruments) + "</instrumentList></drumkit_info>\n")
    return kit
