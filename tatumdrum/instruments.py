"""The drum classes a model transcribes, and how each is written and read.

One `DrumInstrument` per row of the K x M score. The order of `DEFAULT_INSTRUMENTS` is the row
order of every model shipped with tatumdrum; a model stores its own list, so nothing else in the
package assumes K = 3.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DrumInstrument:
    """One drum class: its General MIDI note, the notes that fold into it, and its notation."""

    name: str
    abbrev: str
    gm_note: int
    # Notes of a GM / Roland TD-11 kit that count as this instrument when reading drum MIDI.
    source_notes: tuple[int, ...]
    # MusicXML unpitched display position on the percussion staff (standard drum-set key).
    display_step: str
    display_octave: int
    notehead: str = "normal"
    stem: str = "up"


BASS_DRUM = DrumInstrument("Bass Drum", "BD", 36, (35, 36), "F", 4, stem="down")
SNARE = DrumInstrument("Snare Drum", "SD", 38, (37, 38, 40), "C", 5)
HI_HAT = DrumInstrument("Hi-Hat", "HH", 42, (22, 26, 42, 44, 46), "G", 5, notehead="x")

DEFAULT_INSTRUMENTS: tuple[DrumInstrument, ...] = (BASS_DRUM, SNARE, HI_HAT)

# Annotation labels used by MDB Drums and similar corpora.
ANNOTATION_LABELS = {"KD": "BD", "BD": "BD", "SD": "SD", "HH": "HH"}


def by_abbrev(abbrev: str, instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS) -> int:
    """Row index of the instrument with this abbreviation."""
    for k, inst in enumerate(instruments):
        if inst.abbrev == abbrev:
            return k
    raise KeyError(f"no instrument {abbrev!r} among {[i.abbrev for i in instruments]}")


def note_to_row(instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS) -> dict[int, int]:
    """Map each MIDI note that folds into an instrument to that instrument's row."""
    table: dict[int, int] = {}
    for k, inst in enumerate(instruments):
        for note in inst.source_notes:
            table[note] = k
    return table
