"""The band's sampled pianos: the nearest sample, at the right pitch."""
from __future__ import annotations

import numpy as np
import soundfile as sf

from tatumdrum.data.sampled import load_sampled_instruments, parse_sample_name, render_sampled

SR = 44100


def test_sampled_piano_plays_the_nearest_sample_at_the_right_pitch(tmp_path):
    folder = tmp_path / "piano"
    folder.mkdir()
    t = np.arange(SR) / SR
    for name, note, amp in (("PP A4", 69, 0.1), ("FF A4", 69, 0.8), ("PP A3", 57, 0.1), ("FF A3", 57, 0.8)):
        sf.write(folder / f"{name}.flac", amp * np.sin(2 * np.pi * 440 * 2 ** ((note - 69) / 12) * t), SR)
    assert parse_sample_name("FF A#2") == ("FF", 46) and parse_sample_name("LEVEL1 CLOSE 102") == ("LEVEL1 CLOSE", 102)
    (piano,) = load_sampled_instruments(folder)
    assert len(piano.layers) == 2
    audio = render_sampled(piano, [(0.0, 0.5, 71, 120)], SR)  # B4: A4 two semitones up
    spectrum = np.abs(np.fft.rfft(audio[: SR // 2]))
    assert abs(np.argmax(spectrum) * 2 - 493.9) < 4  # bins of 2 Hz over half a second
    quiet = render_sampled(piano, [(0.0, 0.5, 69, 10)], SR)
    assert np.max(np.abs(quiet)) < 0.3 * np.max(np.abs(audio))
