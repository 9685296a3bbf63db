"""Standard MIDI file output whose tempo map follows the tracked beats, and onset reading back."""
from __future__ import annotations

import math
from pathlib import Path

import mido
import numpy as np

from ..instruments import DEFAULT_INSTRUMENTS, DrumInstrument, note_to_row
from ..score import DrumScore

TICKS_PER_BEAT = 480
DRUM_CHANNEL = 9  # General MIDI channel 10, counted from zero as mido does
STANDARD_KIT = 0
# A set_tempo holds at most 2**24 - 1 microseconds per quarter note.
MAX_TEMPO_US = 0xFFFFFF


def _velocity(p: float | None, velocity: float | None = None) -> int:
    """MIDI velocity: the predicted one (velocity / 127) where the model gives it, else from phi."""
    if velocity is not None:
        return int(np.clip(round(127 * float(velocity)), 1, 127))
    if p is None:
        return 100
    return int(np.clip(round(60 + 67 * float(p)), 1, 127))


SIXTEENTHS_PER_QUARTER = 4


def _first_quarter(beat_times: np.ndarray) -> tuple[int, int]:
    """(lead-in quarters, sixteenths of the first beat as written).

    Audio before the first beat becomes whole lead-in quarters near the song's tempo when it lasts
    half a beat or more (grids not extended over the audio's start). A shorter lead-in is absorbed
    by the first beat, which then runs from time zero. A first beat that starts before zero (a grid
    extended over the audio's start, see extend_beats) keeps only its part after zero, written as
    whole sixteenths. Either way no file opens with a bar of its own at an absurd tempo.
    """
    start, step = float(beat_times[0]), float(beat_times[1] - beat_times[0])
    if start >= 0:
        return max(int(start / step + 0.5), 0), SIXTEENTHS_PER_QUARTER
    return 0, int(np.clip(round(float(beat_times[1]) / (step / SIXTEENTHS_PER_QUARTER)), 1, SIXTEENTHS_PER_QUARTER))


def _tempo_map(beat_times: np.ndarray, n_lead: int, first_16ths: int) -> list[int]:
    """Tempo (us per quarter) of every quarter-note slot from tick 0: lead-in quarters, the first
    beat (its `first_16ths` sixteenths spanning zero to the second beat), then one slot per beat.
    Tempos are differences of beat times rounded to whole microseconds, so errors do not pile up."""
    beat_times = np.asarray(beat_times, dtype=float)
    start = float(beat_times[0])
    edges = np.round(beat_times * 1e6).astype(np.int64)
    # The last beat lasts as long as the one before it, as in interpolate_tatums.
    edges = np.append(edges, 2 * edges[-1] - edges[-2])
    durations = np.diff(edges)
    if n_lead == 0:
        # The first beat's written sixteenths last from zero to the second beat.
        durations[0] = round(edges[1] * SIXTEENTHS_PER_QUARTER / first_16ths)
    lead = np.diff(np.round(np.linspace(0.0, start * 1e6, n_lead + 1)).astype(np.int64)) if n_lead else []
    return [min(int(t), MAX_TEMPO_US) for t in list(lead) + durations.tolist()]


def _onset_tick(score: DrumScore, m: int, tpb: int, n_lead: int, first_16ths: int) -> int:
    """Tick of tatum m: on the grid, but in a first beat that starts at zero rather than on its own time
    (see _first_quarter), in proportion to the time since zero, so that every note keeps its time."""
    tatum_ticks = tpb // score.tatums_per_beat
    first_ticks = tpb * first_16ths // SIXTEENTHS_PER_QUARTER
    if n_lead:
        return (n_lead * score.tatums_per_beat + m) * tatum_ticks
    if m >= score.tatums_per_beat:
        return first_ticks + (m - score.tatums_per_beat) * tatum_ticks
    return int(round(max(float(score.tatum_times[m]), 0.0) / float(score.beats.times[1]) * first_ticks))


def _bar_lengths(score: DrumScore, n_lead: int, first_16ths: int) -> list[tuple[int, int]]:
    """(numerator, denominator) of every MIDI bar. Lead-in quarters and any pickup share the first
    bar; a first beat written short makes the first bar count sixteenths; a short last bar keeps
    the time signature before it (the file simply ends inside it)."""
    lengths = [stop - start for start, stop in score.bars()]
    if len(lengths) > 1 and lengths[-1] < lengths[-2]:
        lengths[-1] = lengths[-2]
    bars = [(n, 4) for n in lengths]
    if n_lead:
        if int(score.beats.positions[0]) == 1:
            bars.insert(0, (n_lead, 4))
        else:
            bars[0] = (bars[0][0] + n_lead, 4)
    elif first_16ths != SIXTEENTHS_PER_QUARTER:
        bars[0] = (SIXTEENTHS_PER_QUARTER * (lengths[0] - 1) + first_16ths, 16)
    return bars


def _delta_track(events: list[tuple[int, int, mido.Message | mido.MetaMessage]], name: str) -> mido.MidiTrack:
    track = mido.MidiTrack([mido.MetaMessage("track_name", name=name, time=0)])
    now = 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    return track


def write_midi(score: DrumScore, path: Path) -> None:
    """Write `score` as a type-1 GM drum file; note times in seconds equal the tatum times."""
    tpb_needed = score.tatums_per_beat
    # Tatums must fall on whole ticks; 480 already does for 1, 2, 3, 4, 5, 6, 8, ... per beat.
    tpb = TICKS_PER_BEAT * tpb_needed // math.gcd(TICKS_PER_BEAT, tpb_needed)
    tatum_ticks = tpb // tpb_needed
    n_lead, first_16ths = _first_quarter(score.beats.times)
    tempos = _tempo_map(score.beats.times, n_lead, first_16ths)
    # Tick where each tempo slot starts: quarters, except a first beat written in fewer sixteenths.
    slot_ticks = [tpb] * len(tempos)
    if not n_lead:
        slot_ticks[0] = tpb * first_16ths // SIXTEENTHS_PER_QUARTER
    slot_starts = np.concatenate([[0], np.cumsum(slot_ticks)[:-1]]).astype(int)

    conductor: list[tuple[int, int, mido.MetaMessage]] = []
    for q, tempo in enumerate(tempos):
        if q == 0 or tempo != tempos[q - 1]:
            conductor.append((int(slot_starts[q]), 1, mido.MetaMessage("set_tempo", tempo=tempo)))
    tick, previous = 0, None
    for numerator, denominator in _bar_lengths(score, n_lead, first_16ths):
        if (numerator, denominator) != previous:
            conductor.append((tick, 0, mido.MetaMessage("time_signature", numerator=numerator,
                                                        denominator=denominator)))
        tick += numerator * tpb * 4 // denominator
        previous = (numerator, denominator)

    # Shorter than a tatum so repeated strokes of one drum never overlap.
    length = max(1, min(tpb // 8, tatum_ticks // 2))
    notes: list[tuple[int, int, mido.Message]] = [
        (0, 0, mido.Message("program_change", channel=DRUM_CHANNEL, program=STANDARD_KIT))
    ]
    for k, inst in enumerate(score.instruments):
        for m in np.flatnonzero(score.onsets[k]):
            on = _onset_tick(score, int(m), tpb, n_lead, first_16ths)
            p = None if score.probabilities is None else score.probabilities[k, m]
            v = None if score.velocities is None else score.velocities[k, m]
            notes.append((on, 2, mido.Message("note_on", channel=DRUM_CHANNEL, note=inst.gm_note,
                                              velocity=_velocity(p, v))))
            # Offs sort before ons at the same tick so a following stroke is not cut short.
            notes.append((on + length, 1, mido.Message("note_off", channel=DRUM_CHANNEL,
                                                       note=inst.gm_note, velocity=0)))

    midi = mido.MidiFile(type=1, ticks_per_beat=tpb)
    midi.tracks.append(_delta_track(conductor, "tatumdrum"))
    midi.tracks.append(_delta_track(notes, "Drums"))
    midi.save(str(path))


def read_midi_onsets(
    path: Path, instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
) -> dict[str, np.ndarray]:
    """Sorted onset times in seconds per instrument abbreviation; other notes are ignored.

    Notes of classes missing from `instruments` fold as `note_to_row` says (open hi-hat into hi-hat).
    """
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    drums = [i for i in pm.instruments if i.is_drum]
    # Some drum files put the kit on another channel; with no channel-10 part, read them all.
    tracks = drums or pm.instruments
    table = {note: instruments[row].abbrev for note, row in note_to_row(instruments).items()}
    for inst in instruments:
        table[inst.gm_note] = inst.abbrev
    found: dict[str, list[float]] = {inst.abbrev: [] for inst in instruments}
    for track in tracks:
        for note in track.notes:
            if note.pitch in table:
                found[table[note.pitch]].append(note.start)
    return {abbrev: np.sort(np.asarray(times, dtype=float)) for abbrev, times in found.items()}
