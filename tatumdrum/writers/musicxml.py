"""MusicXML 4.0 drum-set part: one measure per bar, one voice per stem direction."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..instruments import DrumInstrument
from ..score import DrumScore

PART_ID = "P1"
# Note types by length in quarter notes.
TYPES = {
    Fraction(4): "whole", Fraction(2): "half", Fraction(1): "quarter", Fraction(1, 2): "eighth",
    Fraction(1, 4): "16th", Fraction(1, 8): "32nd", Fraction(1, 16): "64th",
    Fraction(1, 32): "128th", Fraction(1, 64): "256th",
}
# Dynamics written on single strokes, from the velocity (MIDI / 127): an accent at or above
# ACCENT, a ghost note (notehead in parentheses) at or below GHOST; GMD drummers' accents sit
# around 110-127 and their ghost notes under 45.
ACCENT = 105 / 127
GHOST = 45 / 127
DOCTYPE = ('<!DOCTYPE score-partwise PUBLIC "-//Recordare//DTD MusicXML 4.0 Partwise//EN" '
           '"http://www.musicxml.org/dtds/partwise.dtd">')


def _instrument_id(inst: DrumInstrument) -> str:
    return f"{PART_ID}-I{inst.gm_note + 1}"


def _spelling(quarters: Fraction) -> tuple[str, int] | None:
    """(type, dots) that write this length plainly, or None."""
    if quarters in TYPES:
        return TYPES[quarters], 0
    if quarters * 2 / 3 in TYPES:
        return TYPES[quarters * 2 / 3], 1
    return None


def _tuplet_ratio(tatums_per_beat: int) -> tuple[int, int] | None:
    """(actual, normal) for tatums that are not a power-of-two split: 3 -> 3:2, 5 -> 5:4, 6 -> 3:2."""
    odd = tatums_per_beat
    while odd % 2 == 0:
        odd //= 2
    if odd == 1:
        return None
    return odd, 1 << (odd.bit_length() - 1)


def _note_value(tatums: int, tatums_per_beat: int) -> tuple[str, int, tuple[int, int] | None] | None:
    """How to write `tatums` tatums as one note: (type, dots, tuplet ratio), or None if it takes more."""
    quarters = Fraction(tatums, tatums_per_beat)
    plain = _spelling(quarters)
    if plain:
        return (*plain, None)
    ratio = _tuplet_ratio(tatums_per_beat)
    if ratio:
        written = _spelling(quarters * ratio[0] / ratio[1])
        if written:
            return (*written, ratio)
    return None


def _is_tuplet(tatums: int, tatums_per_beat: int) -> bool:
    value = _note_value(tatums, tatums_per_beat)
    return value is not None and value[2] is not None


def _split(tatums: int, tatums_per_beat: int) -> list[int]:
    """Cut a stretch into the fewest writable pieces, longest first (greedy)."""
    pieces = []
    while tatums:
        piece = next(n for n in range(tatums, 0, -1) if _note_value(n, tatums_per_beat))
        pieces.append(piece)
        tatums -= piece
    return pieces


def _sub(parent: ET.Element, tag: str, text: object = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = str(text)
    return element


def _note(measure: ET.Element, tatums: int, tpb: int, voice: int, drum: DrumInstrument | None = None,
          chord: bool = False, velocity: float | None = None, accent: bool = False) -> ET.Element:
    """Append one note (or a rest when `drum` is None) of a writable length; `velocity` marks a ghost
    note and `accent` an accent."""
    value = _note_value(tatums, tpb)
    assert value is not None, "lengths come from _split"
    kind, dots, ratio = value
    note = _sub(measure, "note")
    if chord:
        _sub(note, "chord")
    if drum is None:
        _sub(note, "rest")
    else:
        unpitched = _sub(note, "unpitched")
        _sub(unpitched, "display-step", drum.display_step)
        _sub(unpitched, "display-octave", drum.display_octave)
    _sub(note, "duration", tatums)
    if drum is not None:
        _sub(note, "instrument", id=_instrument_id(drum))
    _sub(note, "voice", voice)
    _sub(note, "type", kind)
    for _ in range(dots):
        _sub(note, "dot")
    if ratio:
        modification = _sub(note, "time-modification")
        _sub(modification, "actual-notes", ratio[0])
        _sub(modification, "normal-notes", ratio[1])
    if drum is not None:
        _sub(note, "stem", drum.stem)
        ghost = velocity is not None and velocity <= GHOST
        if drum.notehead != "normal" or ghost:
            head = _sub(note, "notehead", drum.notehead)
            if ghost:
                head.set("parentheses", "yes")
        if accent:
            _sub(_sub(_sub(note, "notations"), "articulations"), "accent")
    return note


def _mark_tuplets(heads: list[tuple[ET.Element, bool]]) -> None:
    """Bracket each run of tuplet notes inside one beat; `heads` holds (first note of a chord, is tuplet)."""
    runs: list[list[ET.Element]] = [[]]
    for element, is_tuplet in heads:
        if is_tuplet:
            runs[-1].append(element)
        elif runs[-1]:
            runs.append([])
    for run in filter(None, runs):
        for element, kind in ((run[0], "start"), (run[-1], "stop")):
            notations = element.find("notations")
            if notations is None:
                notations = _sub(element, "notations")
            _sub(notations, "tuplet", type=kind, bracket="yes")


def _write_beat(measure: ET.Element, hits: np.ndarray, drums: list[DrumInstrument], tpb: int, voice: int,
                velocities: np.ndarray | None = None) -> None:
    """One beat of one voice; `hits` (and `velocities`) are (drums, tpb). Lengths stop at the next onset or the beat end."""
    onsets = np.flatnonzero(hits.any(axis=0)).tolist()
    heads: list[tuple[ET.Element, bool]] = []

    def rests(n_tatums: int) -> None:
        for piece in _split(n_tatums, tpb):
            heads.append((_note(measure, piece, tpb, voice), _is_tuplet(piece, tpb)))

    rests(onsets[0] if onsets else tpb)
    for start, stop in zip(onsets, onsets[1:] + [tpb]):
        # A stroke is written as long as the notation allows; what is left over becomes rests.
        first, *_ = _split(stop - start, tpb)
        struck = [(k, d) for k, d in enumerate(drums) if hits[k, start]]
        # A chart accents a chord once, above it, not once per notehead.
        accented = velocities is not None and any(velocities[k, start] >= ACCENT for k, _ in struck)
        for j, (k, drum) in enumerate(struck):
            velocity = None if velocities is None else float(velocities[k, start])
            element = _note(measure, first, tpb, voice, drum, chord=j > 0, velocity=velocity,
                            accent=accented and j == 0)
            if j == 0:
                heads.append((element, _is_tuplet(first, tpb)))
        rests(stop - start - first)
    _mark_tuplets(heads)


def _voices(score: DrumScore) -> list[list[int]]:
    """Row indices per voice: stems up (hands) first, then stems down (feet).

    Hands and feet play independent rhythms, so sharing one voice would force their durations
    to agree; drum notation gives each stem direction its own voice instead.
    """
    groups = [[k for k, inst in enumerate(score.instruments) if inst.stem == stem] for stem in ("up", "down")]
    others = [k for k, inst in enumerate(score.instruments) if inst.stem not in ("up", "down")]
    groups[0] += others
    used = [g for g in groups if g and score.onsets[g].any()]
    return used or [groups[0] or groups[1]]


def _written_meters(lengths: list[int]) -> list[int]:
    """The time signature (beats) each bar is written in: its own, except that a partial first bar
    (a pickup) and a partial last bar take their neighbour's, as printed music does."""
    meters = list(lengths)
    if len(meters) > 1:
        if meters[0] < meters[1]:
            meters[0] = meters[1]
        if meters[-1] < meters[-2]:
            meters[-1] = meters[-2]
    return meters


def write_musicxml(score: DrumScore, path: Path) -> None:
    """Write `score` as a partwise MusicXML 4.0 file with one percussion part."""
    tpb = score.tatums_per_beat
    root = ET.Element("score-partwise", version="4.0")
    encoding = _sub(_sub(root, "identification"), "encoding")
    _sub(encoding, "software", "tatumdrum")

    score_part = _sub(_sub(root, "part-list"), "score-part", id=PART_ID)
    _sub(score_part, "part-name", "Drum Set")
    for inst in score.instruments:
        _sub(_sub(score_part, "score-instrument", id=_instrument_id(inst)), "instrument-name", inst.name)
    for inst in score.instruments:
        midi = _sub(score_part, "midi-instrument", id=_instrument_id(inst))
        _sub(midi, "midi-channel", 10)
        _sub(midi, "midi-unpitched", inst.gm_note + 1)

    part = _sub(root, "part", id=PART_ID)
    voices = _voices(score)
    hits = score.onsets.reshape(len(score.instruments), -1, tpb)  # (K, beats, tatums)
    velocities = None if score.velocities is None else score.velocities.reshape(hits.shape)
    bpm = 60.0 / float(np.median(np.diff(score.beats.times)))
    bars = score.bars()
    lengths = [stop - start for start, stop in bars]
    meters = _written_meters(lengths)
    number = 0 if len(bars) > 1 and lengths[0] < meters[0] else 1
    previous_meter = None
    for index, ((first_beat, stop_beat), n_beats, meter) in enumerate(zip(bars, lengths, meters)):
        measure = _sub(part, "measure", number=str(number))
        if number == 0:
            # A partial first bar is a pickup: outside the bar count, in the meter of the bars after it.
            measure.set("implicit", "yes")
        number += 1
        if index == 0 or meter != previous_meter:
            attributes = _sub(measure, "attributes")
            if index == 0:
                _sub(attributes, "divisions", tpb)
            time = _sub(attributes, "time")
            _sub(time, "beats", meter)
            _sub(time, "beat-type", 4)
            if index == 0:
                _sub(_sub(attributes, "clef"), "sign", "percussion")
        previous_meter = meter
        if index == 0:
            direction = _sub(measure, "direction", placement="above")
            metronome = _sub(_sub(direction, "direction-type"), "metronome")
            _sub(metronome, "beat-unit", "quarter")
            _sub(metronome, "per-minute", round(bpm))
            _sub(direction, "sound", tempo=f"{bpm:.2f}")
        silent = not hits[:, first_beat:stop_beat].any()
        # A short last bar is filled with rests to its meter, as a chart ends; a pickup stays short.
        filled = meter if index == len(bars) - 1 and index > 0 else n_beats
        for v, rows in enumerate(voices, start=1):
            if v > 1:
                if silent:
                    break  # an empty bar gets one rest, not one per voice
                _sub(_sub(measure, "backup"), "duration", filled * tpb)
            drums = [score.instruments[k] for k in rows]
            if not hits[rows, first_beat:stop_beat].any():
                # A silent voice gets one whole-measure rest rather than a rest per beat.
                rest = _sub(measure, "note")
                _sub(rest, "rest", measure="yes")
                _sub(rest, "duration", filled * tpb)
                _sub(rest, "voice", v)
                continue
            for beat in range(first_beat, stop_beat):
                _write_beat(measure, hits[rows, beat], drums, tpb, v,
                            None if velocities is None else velocities[rows, beat])
            for piece in _split((filled - n_beats) * tpb, tpb):
                _note(measure, piece, tpb, v)

    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    Path(path).write_text(f'<?xml version="1.0" encoding="UTF-8"?>\n{DOCTYPE}\n{body}\n', encoding="utf-8")
