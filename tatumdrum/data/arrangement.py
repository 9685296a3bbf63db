"""A band's arrangement (its parts and their notes) and its rendering through a General MIDI soundfont."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi

from .fluid import fluid
from .synthesis import SAMPLE_RATE, SOUNDFONT_DIRS, FluidError, SynthTrack, timgm_path


def melodic_soundfonts() -> dict[str, Path]:
    """The GM soundfonts on this machine for the band (all three ship full melodic banks)."""
    found = {}
    for name, path in (("FluidR3_GM", SOUNDFONT_DIRS[0] / "FluidR3_GM.sf2"),
                       ("MuseScore_General", SOUNDFONT_DIRS[1] / "MuseScore_General.sf3"),
                       ("TimGM6mb", timgm_path())):
        if path.is_file():
            found[name] = path
    return found


@dataclass
class Part:
    """One instrument of the band: its GM program, a description, notes and pitch bends (seconds)."""

    name: str
    program: int
    notes: list[tuple[float, float, int, int]] = field(default_factory=list)  # start, end, pitch, velocity
    bends: list[tuple[float, int]] = field(default_factory=list)
    volume: int = 100


@dataclass
class Arrangement:
    key: int
    minor: bool
    progression: tuple[int, ...]
    parts: list[Part]

    def describe(self) -> str:
        key = pretty_midi.note_number_to_name(self.key + 60)[:-1] + (" minor" if self.minor else " major")
        return f"{key}; " + ", ".join(p.name for p in self.parts)


def render_arrangement(arrangement: Arrangement, soundfont: Path, duration: float) -> np.ndarray:
    """Float32 mono 44.1 kHz audio of the band through one GM soundfont, fluidsynth's own effects off."""
    tracks = [SynthTrack(soundfont, 0, part.program, [(s, e, p, v) for s, e, p, v in part.notes], False,
                         part.volume, 0, sorted(part.bends)) for part in arrangement.parts]
    n_samples = int(np.ceil(duration * SAMPLE_RATE))
    if not tracks:
        return np.zeros(n_samples, dtype=np.float32)
    try:
        return fluid().render(tracks, n_samples)
    except FluidError:
        # A small soundfont may lack a program; piano is in every GM bank.
        for tr in tracks:
            tr.preset = 0
        return fluid().render(tracks, n_samples)
