"""A vocal-like part: nonsense lyrics spoken by espeak-ng, placed on the song's bars.

Real vocals are the loudest thing in most mixes, and their consonants are drum-like: sibilants
(s, sh, ch, z) fill the hi-hat's 5-15 kHz band, plosives (p, t, k, b) have snare- and kick-like
attacks. A transcriber trained without a voice in its mixes calls them drums. espeak-ng (Debian
package espeak-ng, GPL-3; its speech is generated, no recorded voice) says random syllables rich in
those consonants, at random voices, pitches and speeds; its 22 kHz output gets its sibilants
extended above 11 kHz with shaped noise, as a real voice and microphone have them.
"""
from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile

import numpy as np
import soundfile as sf
from scipy import signal

from .synthesis import SAMPLE_RATE

ONSETS = ("s", "sh", "t", "k", "p", "b", "ch", "st", "tr", "f", "th", "z", "d", "g", "l", "m", "n", "r", "w",
          "y", "", "sk", "sp", "pl", "cl", "br", "j")
VOWELS = ("a", "e", "i", "o", "u", "ee", "oo", "ay", "ai", "ow", "ea", "ie")
CODAS = ("s", "t", "ts", "st", "k", "n", "ng", "sh", "z", "", "", "", "ch", "x", "ps", "d")
VOICES = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "de", "es", "fr", "it", "pt")
VARIANTS = ("", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m5", "+m7", "+croak", "+klatt")


@functools.lru_cache(maxsize=1)
def espeak_path() -> str | None:
    return shutil.which("espeak-ng")


def nonsense_line(rng: np.random.Generator, n_words: int) -> str:
    words = []
    for _ in range(n_words):
        n_syll = int(rng.integers(1, 4))
        words.append("".join(str(rng.choice(ONSETS)) + str(rng.choice(VOWELS)) + str(rng.choice(CODAS))
                             for _ in range(n_syll)))
    return " ".join(words)


def speak(text: str, voice: str, pitch: int, speed: int) -> np.ndarray:
    """espeak-ng's speech of `text` as mono float32 at 44.1 kHz."""
    exe = espeak_path()
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (Debian package espeak-ng)")
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run([exe, "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", tmp.name, text],
                       check=True, capture_output=True, timeout=30)
        audio, sr = sf.read(tmp.name, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        audio = signal.resample_poly(audio, SAMPLE_RATE, sr).astype(np.float32)
    return audio


def extend_sibilance(audio: np.ndarray, rng: np.random.Generator, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Add noise above ~10 kHz that follows the 5-10 kHz envelope (fricatives reach 16 kHz in real voices)."""
    band = signal.sosfilt(signal.butter(4, [5000, 10000], "bandpass", fs=sr, output="sos"), audio)
    env = signal.sosfilt(signal.butter(2, 60, "lowpass", fs=sr, output="sos"), np.abs(band))
    noise = signal.sosfilt(signal.butter(4, 9000, "highpass", fs=sr, output="sos"),
                           rng.standard_normal(len(audio)))
    return (audio + rng.uniform(0.5, 2.0) * env * noise).astype(np.float32)


def vocal_track(beat_times: np.ndarray, beat_positions: np.ndarray, duration: float, end_time: float,
                rng: np.random.Generator) -> np.ndarray:
    """A singer's worth of phrases: one every one or two bars, starting on or just before a downbeat."""
    n = int(np.ceil(duration * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float32)
    voice = str(rng.choice(VOICES)) + str(rng.choice(VARIANTS))
    pitch = int(rng.integers(20, 95))
    beat = float(np.median(np.diff(beat_times))) if len(beat_times) > 1 else 0.5
    speed = int(np.clip(rng.normal(60.0 / beat * 1.2, 25), 90, 260))
    downbeats = np.asarray(beat_times)[np.asarray(beat_positions) == 1]
    # The singer may enter after an intro.
    first = int(rng.integers(0, 3))
    every = int(rng.choice([1, 1, 2]))
    for t in downbeats[first::every]:
        if t >= end_time or rng.random() < 0.2:
            continue
        start = t - (beat / 2 if rng.random() < 0.3 else 0.0) + rng.normal(0, 0.01)
        line = nonsense_line(rng, int(rng.integers(2, 7)))
        audio = speak(line, voice, int(np.clip(pitch + rng.integers(-15, 16), 0, 99)), speed)
        audio = audio[: max(int((end_time - start) * SAMPLE_RATE), 0)]
        s = max(int(start * SAMPLE_RATE), 0)
        audio = audio[: n - s]
        out[s: s + len(audio)] += audio
    return extend_sibilance(out, rng)
