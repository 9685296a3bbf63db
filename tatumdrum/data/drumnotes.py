"""Drum notes: GMD's Roland TD-11 notes folded onto General MIDI, the groups a drum mix sets apart,
and the stand-ins for a note a kit lacks."""
from __future__ import annotations

import pretty_midi

# Roland TD-11 notes of GMD whose GM number is another instrument (22 is nothing in GM, 58 is a
# vibraslap, 52 a china...): fold them onto the GM note of the same drum.
GMD_TO_GM: dict[int, int] = {22: 42, 26: 46, 58: 43, 55: 49, 52: 57, 59: 51}

# Groups that get their own random level, like the faders of a drum mix.
GROUPS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 40),
    "hihat": (42, 44, 46),
    "toms": (41, 43, 45, 47, 48, 50),
    "cymbals": (49, 51, 53, 55, 57),
}
NOTE_GROUP: dict[int, str] = {n: g for g, notes in GROUPS.items() for n in notes}
GROUP_LEVEL_DB: dict[str, tuple[float, float]] = {
    "kick": (-5.0, 3.0), "snare": (-5.0, 3.0), "hihat": (-9.0, 2.0), "toms": (-6.0, 2.0), "cymbals": (-10.0, 1.0),
}
# When a soundfont kit has no sound for a note, the nearest drum of the same kind stands in.
GM_FALLBACKS: dict[int, tuple[int, ...]] = {
    35: (36,), 36: (35,), 37: (40, 38), 40: (38,), 38: (40,), 44: (42,), 46: (42,), 42: (44,),
    41: (43, 45), 43: (41, 45), 45: (47, 43), 47: (45, 48), 48: (50, 47), 50: (48, 47),
    49: (57, 55, 51), 57: (49, 55, 51), 55: (49, 57), 51: (59, 53, 49), 53: (51, 59),
}


def remap_to_gm(pm: pretty_midi.PrettyMIDI) -> list[pretty_midi.Note]:
    """The drum notes of `pm` (all tracks marked drum), sorted by start, on General MIDI note numbers."""
    notes = []
    for track in pm.instruments:
        if not track.is_drum:
            continue
        for n in track.notes:
            notes.append(pretty_midi.Note(n.velocity, GMD_TO_GM.get(n.pitch, n.pitch), n.start, n.end))
    notes.sort(key=lambda n: (n.start, n.pitch))
    return notes
