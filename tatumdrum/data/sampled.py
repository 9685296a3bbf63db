"""Pitched instruments from folders of recorded samples (sampled pianos), played from MIDI-like notes.

File names carry the note, as a number (`... 60.flac`) or a name (`FF A#2.flac`), and the rest of the
name tells the dynamic layer and microphone. Layers are ordered by measured loudness; a note plays the
nearest sampled key of the layer its velocity selects, varispeeded to its pitch.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .sampler import pitch_shift
from .synthesis import SAMPLE_RATE

_NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
_NAME_NOTE = re.compile(r"^(.*?)[ _-]*([A-Ga-g])([#b]?)(-?\d)$")
_NUMBER_NOTE = re.compile(r"^(.*?)[ _-]*(\d{2,3})$")
_DYNAMIC = re.compile(r"\b(LEVEL\s*\d+|PPP|PP|P|MP|MF|F|FF|FFF)\b", re.IGNORECASE)
RELEASE_SECONDS = 0.25


def parse_sample_name(stem: str) -> tuple[str, int] | None:
    """(rest of the name, MIDI note) of a sample file stem, or None when it names no note."""
    m = _NAME_NOTE.match(stem)
    if m:
        step = _NOTE_NAMES[m.group(2).upper()] + {"#": 1, "b": -1, "": 0}[m.group(3)]
        return m.group(1).strip(), 12 * (int(m.group(4)) + 1) + step
    m = _NUMBER_NOTE.match(stem)
    if m and 12 <= int(m.group(2)) <= 120:
        return m.group(1).strip(), int(m.group(2))
    return None


@dataclass(frozen=True)
class SampledInstrument:
    """Layers (quietest first), each a sorted tuple of (note, file)."""

    name: str
    layers: tuple[tuple[tuple[int, Path], ...], ...]


@functools.lru_cache(maxsize=None)
def load_sampled_instruments(folder: Path) -> tuple[SampledInstrument, ...]:
    """The instruments in a folder of samples: one per microphone (the name without its dynamic)."""
    folder = Path(folder)
    files = [f for f in folder.rglob("*") if f.suffix.lower() in (".flac", ".wav", ".ogg")]
    by_mic: dict[str, dict[str, list[tuple[int, Path]]]] = {}
    for f in files:
        parsed = parse_sample_name(f.stem)
        if parsed is None:
            continue
        rest, note = parsed
        dynamic = _DYNAMIC.search(rest)
        mic = _DYNAMIC.sub("", rest).strip() or "main"
        by_mic.setdefault(mic, {}).setdefault(dynamic.group(0).upper() if dynamic else "", []).append((note, f))
    instruments = []
    for mic, layers in sorted(by_mic.items()):
        ordered = sorted(layers.values(), key=_layer_loudness)
        instruments.append(SampledInstrument(f"{folder.name}/{mic}", tuple(tuple(sorted(l)) for l in ordered)))
    return tuple(instruments)


def _layer_loudness(layer: list[tuple[int, Path]]) -> float:
    note, path = min(layer, key=lambda x: abs(x[0] - 60))
    audio, _ = sf.read(str(path), dtype="float32", frames=SAMPLE_RATE)
    return float(np.sqrt(np.mean(np.asarray(audio, np.float64) ** 2)))


@functools.lru_cache(maxsize=256)
def _sample(path: Path) -> np.ndarray:
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        from scipy.signal import resample_poly

        audio = resample_poly(audio, SAMPLE_RATE, sr).astype(np.float32)
    # Up to 8 s is kept: held chords ring no longer in a band.
    return np.ascontiguousarray(audio[: 8 * SAMPLE_RATE])


def render_sampled(instrument: SampledInstrument, notes: list[tuple[float, float, int, int]],
                   n_samples: int) -> np.ndarray:
    """Mono audio of (start s, end s, pitch, velocity) notes, each released over RELEASE_SECONDS."""
    out = np.zeros(n_samples, dtype=np.float32)
    pitched: dict[tuple[Path, int], np.ndarray] = {}
    n_layers = len(instrument.layers)
    fade = int(RELEASE_SECONDS * SAMPLE_RATE)
    for start, end, pitch, velocity in notes:
        layer = instrument.layers[min(int(velocity) * n_layers // 128, n_layers - 1)]
        key_note, path = min(layer, key=lambda x: abs(x[0] - pitch))
        key = (path, int(pitch) - key_note)
        if key not in pitched:
            pitched[key] = pitch_shift(_sample(path), float(key[1]))
        s = int(round(start * SAMPLE_RATE))
        if s >= n_samples:
            continue
        length = min(int(round((end - start) * SAMPLE_RATE)) + fade, len(pitched[key]), n_samples - s)
        piece = pitched[key][:length] * np.float32(0.3 + 0.7 * velocity / 127)
        tail = min(fade, length)
        piece[length - tail:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
        out[s: s + length] += piece
    return out
