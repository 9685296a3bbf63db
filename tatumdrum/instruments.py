"""The drum classes a model transcribes, and how each is written and read.

One `DrumInstrument` per row of the K x M score. A model file stores its own list of abbreviations,
so nothing else in the package assumes a K: v1 models have three rows (`THREE_CLASSES`), the first v2
models seven (`SEVEN_CLASSES`), models with a side stick eight (`EIGHT_CLASSES`). A class a model
lacks folds into the one named by `folds_into` (an open hi-hat is a hi-hat to a three-class model, a
side stick a snare) or, with no such class, is not transcribed.
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
    # The class that takes this one's notes when a model does not have it.
    folds_into: str | None = None
    # The class of annotations (MDB Drums: KD, SD, HH, TT, CY) this one is scored against.
    group: str = ""


BASS_DRUM = DrumInstrument("Bass Drum", "BD", 36, (35, 36), "F", 4, stem="down", group="BD")
SNARE = DrumInstrument("Snare Drum", "SD", 38, (38, 40), "C", 5, group="SD")
# The cross-stick (stick laid across the snare, its shaft clicking on the rim) is its own sound and its
# own notation; MDB Drums files it under "other", not snare. Models without it hear it as a snare.
SIDE_STICK = DrumInstrument("Side Stick", "SS", 37, (37,), "C", 5, notehead="x", folds_into="SD", group="SS")
HI_HAT = DrumInstrument("Hi-Hat", "HH", 42, (22, 42, 44), "G", 5, notehead="x", group="HH")
OPEN_HI_HAT = DrumInstrument("Open Hi-Hat", "OH", 46, (26, 46), "G", 5, notehead="circle-x", folds_into="HH",
                             group="HH")
# One class for all toms: MDB Drums and most real-music corpora annotate toms as one class.
TOMS = DrumInstrument("Toms", "TT", 47, (41, 43, 45, 47, 48, 50, 58), "D", 5, group="TT")
CRASH = DrumInstrument("Crash Cymbal", "CR", 49, (49, 52, 55, 57), "A", 5, notehead="x", group="CY")
RIDE = DrumInstrument("Ride Cymbal", "RD", 51, (51, 53, 59), "F", 5, notehead="x", group="CY")

THREE_CLASSES: tuple[DrumInstrument, ...] = (BASS_DRUM, SNARE, HI_HAT)
SEVEN_CLASSES: tuple[DrumInstrument, ...] = (BASS_DRUM, SNARE, HI_HAT, OPEN_HI_HAT, TOMS, CRASH, RIDE)
EIGHT_CLASSES: tuple[DrumInstrument, ...] = (BASS_DRUM, SNARE, SIDE_STICK, HI_HAT, OPEN_HI_HAT, TOMS, CRASH, RIDE)
# Every drum tatumdrum knows; what `build-dataset --v2` writes and v2 models are trained on.
ALL_INSTRUMENTS: tuple[DrumInstrument, ...] = EIGHT_CLASSES
# The classes of the paper and of v1; scores, tests and the LM default to them.
DEFAULT_INSTRUMENTS = THREE_CLASSES

# Annotation labels of MDB Drums and similar corpora, to the scoring group of `DrumInstrument.group`.
ANNOTATION_LABELS = {"KD": "BD", "BD": "BD", "SD": "SD", "HH": "HH", "TT": "TT", "CY": "CY"}
# Groups whose F-measure sums to the headline "all" (the paper's three drums).
HEADLINE_GROUPS = ("BD", "SD", "HH")


def by_abbrev(abbrev: str, instruments: tuple[DrumInstrument, ...] = ALL_INSTRUMENTS) -> int:
    """Row index of the instrument with this abbreviation."""
    for k, inst in enumerate(instruments):
        if inst.abbrev == abbrev:
            return k
    raise KeyError(f"no instrument {abbrev!r} among {[i.abbrev for i in instruments]}")


def instruments_from_abbrevs(abbrevs: list[str] | tuple[str, ...]) -> tuple[DrumInstrument, ...]:
    """The instruments of a model file's list, in its order."""
    return tuple(ALL_INSTRUMENTS[by_abbrev(a)] for a in abbrevs)


def fold_row(inst: DrumInstrument, instruments: tuple[DrumInstrument, ...]) -> int | None:
    """Row of `inst` among `instruments`: its own, else that of the class it folds into, else None."""
    for abbrev in (inst.abbrev, inst.folds_into):
        for k, other in enumerate(instruments):
            if other.abbrev == abbrev:
                return k
    return None


def note_to_row(instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS) -> dict[int, int]:
    """Map each MIDI note that folds into an instrument to that instrument's row.

    Notes of a class missing from `instruments` go to its `folds_into` class when that is present.
    """
    table: dict[int, int] = {}
    for inst in ALL_INSTRUMENTS:
        row = fold_row(inst, instruments)
        if row is None:
            continue
        for note in inst.source_notes:
            table[note] = row
    # Instruments outside the registry (none today) keep their own notes.
    for k, inst in enumerate(instruments):
        for note in inst.source_notes:
            table.setdefault(note, k)
    return table


def group_rows(instruments: tuple[DrumInstrument, ...]) -> dict[str, list[int]]:
    """Rows of each scoring group (`DrumInstrument.group`), in first-seen order."""
    groups: dict[str, list[int]] = {}
    for k, inst in enumerate(instruments):
        groups.setdefault(inst.group or inst.abbrev, []).append(k)
    return groups
