"""Recorded multi-mic kits: indexed by take and loudness, rendered from their takes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from tatumdrum.data.drumnotes import GROUPS
from tatumdrum.data.kits import folder_kits, render_drums
from tatumdrum.data.multimic import load_multimic_kit, render_multimic
from recorded import write_multimic_kit

SR = 44100


def test_multimic_kit_is_indexed_and_rendered_with_its_takes(tmp_path):
    kit_dir = write_multimic_kit(tmp_path)
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
    (registered,) = folder_kits([tmp_path])
    pm = pretty_midi.PrettyMIDI()
    track = pretty_midi.Instrument(0, is_drum=True)
    track.notes = notes
    pm.instruments.append(track)
    assert np.max(np.abs(render_drums(pm, registered, np.random.default_rng(2), duration=1.5))) > 0
