"""Multi-microphone recorded kits (the DrumGizmo MuldjordKit layout), mixed afresh for every render.

A recorded kit has every stroke captured by every microphone: close mics on each drum, overheads,
room mics, and the bleed of every drum into every other drum's mic. Drawing the faders anew for
each render turns one kit into many recorded-sounding kits: dry and close, overhead-heavy,
roomy, with loud or quiet snare-bottom rattle.

Layout read: `<root>/Samples/<Piece>/<n>-<Piece>-<Mic>.flac` (or .wav, .ogg), one take `n` of one kit piece per
microphone. Takes are ordered by their measured loudness, so a MIDI velocity picks takes near its
own quantile and neighbouring takes act as round robin.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .drumnotes import NOTE_GROUP
from .sampler import mix_hits, pitch_shift
from .synthesis import SAMPLE_RATE

MIC_GROUPS: dict[str, tuple[str, ...]] = {
    "kick": ("KdrumL", "KdrumR"),
    "snare_top": ("Snare_top",),
    "snare_bottom": ("Snare_bottom",),
    "toms": ("Tom1", "Tom2", "Tom3", "Tom4"),
    "hihat": ("Hihat",),
    "ride": ("RideL", "RideR"),
    "overheads": ("OHL", "OHR"),
    "room": ("AmbL", "AmbR"),
}
# Fader ranges in dB per mic group; None mutes the group with the given probability.
MIC_LEVEL_DB: dict[str, tuple[float, float, float]] = {
    # group: (low dB, high dB, probability the group is muted)
    "kick": (-6.0, 3.0, 0.0),
    "snare_top": (-6.0, 3.0, 0.0),
    "snare_bottom": (-24.0, -6.0, 0.3),
    "toms": (-8.0, 2.0, 0.1),
    "hihat": (-12.0, 0.0, 0.3),
    "ride": (-14.0, -2.0, 0.4),
    "overheads": (-10.0, 4.0, 0.05),
    "room": (-24.0, 0.0, 0.3),
}
# GM note (after GMD_TO_GM) to candidate kit pieces; one is drawn per render where there are several.
NOTE_PIECES: dict[int, tuple[str, ...]] = {
    35: ("KdrumL", "KdrumR"), 36: ("KdrumL", "KdrumR"),
    38: ("Snare",), 40: ("Snare",), 37: ("SnareRest", "Snare"),
    42: ("HihatClosed",), 44: ("HihatClosed",), 46: ("HihatOpen",),
    50: ("Tom1",), 48: ("Tom1", "Tom2"), 47: ("Tom2",), 45: ("Tom3",), 43: ("Tom4",), 41: ("Tom4",),
    49: ("CrashL", "CrashR"), 57: ("CrashR", "CrashL"), 55: ("CrashL",),
    51: ("RideL", "RideR"), 53: ("RideRBell", "RideLBell"),
}
_NAME = re.compile(r"^(\d+)-(.+)-([^-]+)\.(flac|wav|ogg)$")


@dataclass(frozen=True)
class MultiMicKit:
    """A recorded kit: for each kit piece, its takes (quietest first), each a map of mic to file."""

    name: str
    pieces: dict[str, tuple[dict[str, Path], ...]]

    @property
    def mics(self) -> tuple[str, ...]:
        return tuple(sorted({m for takes in self.pieces.values() for take in takes for m in take}))


@functools.lru_cache(maxsize=None)
def load_multimic_kit(root: Path) -> MultiMicKit:
    """Index a kit folder; takes are sorted by the energy of their own close (or overhead) mic."""
    root = Path(root)
    samples = root / "Samples"
    if not samples.is_dir():
        raise FileNotFoundError(f"{root}: no Samples/ folder of a multi-mic kit")
    pieces: dict[str, tuple[dict[str, Path], ...]] = {}
    for folder in sorted(p for p in samples.iterdir() if p.is_dir()):
        takes: dict[int, dict[str, Path]] = {}
        for f in folder.iterdir():
            m = _NAME.match(f.name)
            if m and m.group(2) == folder.name and m.group(3) != "Trigger":
                takes.setdefault(int(m.group(1)), {})[m.group(3)] = f
        if takes:
            ordered = [takes[n] for n in sorted(takes)]
            energy = [_take_energy(t) for t in ordered]
            pieces[folder.name] = tuple(t for _, t in sorted(zip(energy, ordered), key=lambda x: x[0]))
    return MultiMicKit(root.name, pieces)


def _take_energy(take: dict[str, Path]) -> float:
    mic = next((m for m in ("OHL", "OHR", "AmbL") if m in take), next(iter(take)))
    audio, _ = sf.read(str(take[mic]), dtype="float32", frames=int(0.1 * SAMPLE_RATE))
    return float(np.sum(np.asarray(audio, dtype=np.float64) ** 2))


@functools.lru_cache(maxsize=6000)
def _mic_audio(path: Path) -> np.ndarray:
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: {sr} Hz, the multi-mic sampler expects {SAMPLE_RATE}")
    return np.ascontiguousarray(audio.mean(axis=1))


def random_mic_mix(rng: np.random.Generator, mics: tuple[str, ...]) -> dict[str, float]:
    """Linear gain of every microphone: one fader per mic group, a little spread within the group."""
    gains: dict[str, float] = {}
    for group, names in MIC_GROUPS.items():
        low, high, p_mute = MIC_LEVEL_DB[group]
        muted = rng.random() < p_mute
        level = float(rng.uniform(low, high))
        for name in names:
            if name in mics:
                gains[name] = 0.0 if muted else 10 ** ((level + rng.uniform(-1.5, 1.5)) / 20.0)
    return gains


def _mixed_take(take: dict[str, Path], gains: dict[str, float]) -> np.ndarray:
    parts = [(_mic_audio(p), gains.get(m, 0.0)) for m, p in take.items() if gains.get(m, 0.0) > 0]
    n = max((len(a) for a, _ in parts), default=0)
    out = np.zeros(n, dtype=np.float32)
    for audio, g in parts:
        out[: len(audio)] += np.float32(g) * audio
    return out


def render_multimic(notes: list, velocities: np.ndarray, levels: dict[str, float], tuning: dict[str, float],
                    kit: MultiMicKit, rng: np.random.Generator, n_samples: int) -> np.ndarray:
    """Mono audio of GM drum `notes` (pretty_midi notes) at `velocities` on a freshly mixed `kit`."""
    gains = random_mic_mix(rng, kit.mics)
    chosen = {note: next((p for p in rng.permutation(np.array(options)) if p in kit.pieces), None)
              for note, options in NOTE_PIECES.items()}
    mixed: dict[tuple[str, int, float], np.ndarray] = {}
    hits = []
    for n, v in zip(notes, velocities):
        piece, group = chosen.get(n.pitch), NOTE_GROUP.get(n.pitch)
        if piece is None or group is None:
            continue
        takes = kit.pieces[str(piece)]
        # The velocity's quantile among the takes, then a neighbour at random: round robin.
        centre = float(v) / 127.0 * (len(takes) - 1)
        idx = int(np.clip(round(centre + rng.normal(0.0, 0.8)), 0, len(takes) - 1))
        key = (str(piece), idx, tuning[group])
        if key not in mixed:
            mixed[key] = pitch_shift(_mixed_take(takes[idx], gains), tuning[group])
        # Takes already carry the dynamics; a gentle extra gain bridges the velocity between takes.
        gain = (0.6 + 0.4 * float(v) / 127.0) * 10 ** (levels[group] / 20.0)
        hits.append((n.start, n.pitch, mixed[key], gain))
    return mix_hits(hits, n_samples)

