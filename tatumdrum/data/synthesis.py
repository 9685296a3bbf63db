"""What every synthesizer back-end shares: the sample rate, the tracks it plays, the kits it can
play, and where the soundfonts are."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi

from ..features import MEL

SAMPLE_RATE = MEL.sample_rate
SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))

class FluidError(RuntimeError):
    """libfluidsynth is missing or refused a soundfont."""



@dataclass
class SynthTrack:
    """One MIDI channel's worth of notes for `FluidSynth.render`.

    `notes` holds (start s, end s or None for no note-off, pitch, velocity). `bends` holds
    (time s, value in -8192..8191), `volume` is CC7 and `bend` a constant pitch bend.
    """

    soundfont: Path
    bank: int
    preset: int
    notes: list[tuple[float, float | None, int, int]]
    is_drum: bool = False
    volume: int = 100
    bend: int = 0
    bends: list[tuple[float, int]] = field(default_factory=list)


def track_events(tracks: list[SynthTrack], sample_rate: int) -> list[tuple[int, int, int, int, int, int]]:
    """Every track's note-ons (kind 1), note-offs (0) and pitch bends (2), track index = channel, as
    (sample, order, kind, channel, a, b) in time order; note-offs sort before note-ons at the same
    sample so that a repeated note is released before it is struck again."""
    events = []
    for ch, tr in enumerate(tracks):
        for start, end, pitch, vel in tr.notes:
            events.append((int(round(start * sample_rate)), 1, 1, ch, int(pitch), int(np.clip(vel, 1, 127))))
            if end is not None:
                events.append((int(round(end * sample_rate)), 0, 0, ch, int(pitch), 0))
        for t, value in tr.bends:
            events.append((int(round(t * sample_rate)), 0, 2, ch, int(np.clip(8192 + value, 0, 16383)), 0))
    return sorted(events)



@dataclass(frozen=True)
class Kit:
    """A drum kit: a soundfont preset (`path` is the .sf2/.sf3) or a Hydrogen kit (`path` is drumkit.xml)."""

    name: str
    kind: str  # "soundfont", "hydrogen" or "multimic" (`path` is the kit folder)
    path: Path
    bank: int = 128
    preset: int = 0
    family: str = ""



def timgm_path() -> Path:
    return Path(pretty_midi.__file__).parent / "TimGM6mb.sf2"
