"""Vary a drum performance the way drummers do before it is rendered (and before its targets are made).

GMD's drummers play mostly closed hi-hat grooves. Real songs ride the ride cymbal in choruses (or,
in punk and hard rock, the crash), open the hi-hat on off-beats, crash on the first beat of a
section, scatter snare ghost notes, play the backbeat as a cross-stick (country, ballads), and
leave the time-keeping cymbal out altogether (intros, breakdowns, 80s rock's kick and snare).
Each change is drawn at random per render and edits the MIDI itself, so audio and targets agree.
"""
from __future__ import annotations

import numpy as np
import pretty_midi

from .. import instruments
from .gmd import midi_beat_grid

CLOSED_HH = (22, 42)
OPEN_HH = 46
RIDE = 51
# Every note that reads as a hi-hat (closed, pedal, open) or a ride, as the targets read them.
TIME_KEEPING = instruments.HI_HAT.source_notes + instruments.OPEN_HI_HAT.source_notes + instruments.RIDE.source_notes
CRASHES = (49, 57)
KICK = 36
SNARE = 38
SIDE_STICK = 37

# Probability of each variation per render. "cross_stick" and "no_hats" are off unless a build asks
# for them (build-dataset --variation NAME=P), so that the builds made before them stay reproducible.
VARIATION_PROBABILITY = {"ride": 0.2, "crash_ride": 0.1, "open_hh": 0.3, "crashes": 0.4, "ghosts": 0.3,
                         "cross_stick": 0.0, "no_hats": 0.0, "sparse_hats": 0.0}


def _drum_tracks(pm: pretty_midi.PrettyMIDI) -> list[pretty_midi.Instrument]:
    return [t for t in pm.instruments if t.is_drum]


def _strokes(pm: pretty_midi.PrettyMIDI, pitches: tuple[int, ...]):
    """Each drum track that plays any of `pitches`, with those notes and their start times."""
    for track in _drum_tracks(pm):
        notes = [n for n in track.notes if n.pitch in pitches]
        if notes:
            yield track, notes, np.array([n.start for n in notes])


def _grid_position(times: np.ndarray, beats: np.ndarray, per_beat: int) -> tuple[np.ndarray, np.ndarray]:
    """Each time's nearest 1/per_beat subdivision: the index of its beat and of the subdivision within it
    (0 = on the beat). A stroke played just before a beat belongs to that beat."""
    i = np.clip(np.searchsorted(beats, times, side="right") - 1, 0, len(beats) - 2)
    step = np.round((times - beats[i]) / (beats[i + 1] - beats[i]) * per_beat).astype(int)
    return np.clip(i + step // per_beat, 0, len(beats) - 1), step % per_beat


def ride_for_hihat(pm: pretty_midi.PrettyMIDI, cymbal: int = RIDE) -> None:
    """Play the closed hi-hat's part on the ride, or on a crash (the pedal hi-hat stays with the foot)."""
    for track in _drum_tracks(pm):
        for n in track.notes:
            if n.pitch in CLOSED_HH:
                n.pitch = cymbal


def open_hihats(pm: pretty_midi.PrettyMIDI, rng: np.random.Generator) -> None:
    """Open the hi-hat on the "and" of one drawn beat of every bar, or of every beat."""
    grid = midi_beat_grid(pm)
    beats = grid.times
    if len(beats) < 2:
        return
    beat_in_bar = int(rng.integers(1, 5))
    every_beat = rng.random() < 0.4
    for _, hats, times in _strokes(pm, CLOSED_HH):
        beat_idx, sub = _grid_position(times, beats, 2)
        for n, is_and, b in zip(hats, sub == 1, beat_idx):
            if is_and and (every_beat or grid.positions[b] == beat_in_bar):
                n.pitch = OPEN_HH


def section_crashes(pm: pretty_midi.PrettyMIDI, rng: np.random.Generator) -> None:
    """A crash (with a kick) on the first downbeat and every 4 or 8 bars, replacing the hi-hat there."""
    tracks = _drum_tracks(pm)
    downbeats = pm.get_downbeats()
    if not tracks or not len(downbeats):
        return
    every = int(rng.choice([2, 4, 4, 8]))
    end = max(n.start for t in tracks for n in t.notes) if any(t.notes for t in tracks) else 0.0
    track = tracks[0]
    for bar, t in enumerate(downbeats):
        if bar % every or t > end:
            continue
        near = [n for tr in tracks for n in tr.notes if abs(n.start - t) < 0.03]
        for tr in tracks:
            tr.notes = [n for n in tr.notes if not (abs(n.start - t) < 0.03 and n.pitch in CLOSED_HH + (RIDE,))]
        velocity = int(rng.integers(90, 128))
        track.notes.append(pretty_midi.Note(velocity, int(rng.choice(CRASHES)), float(t), float(t) + 0.5))
        if not any(n.pitch in (35, 36) for n in near):
            track.notes.append(pretty_midi.Note(int(rng.integers(80, 120)), KICK, float(t), float(t) + 0.1))
    track.notes.sort(key=lambda n: n.start)


def cross_stick_backbeat(pm: pretty_midi.PrettyMIDI) -> None:
    """Play the snare strokes that fall on a beat as cross-sticks; fills and ghost notes between beats
    stay on the snare. A kit without a cross-stick sound plays them as snares, labelled so (build.py)."""
    beats = midi_beat_grid(pm).times
    if len(beats) < 2:
        return
    for _, snares, times in _strokes(pm, instruments.SNARE.source_notes):
        on_beat = _grid_position(times, beats, 4)[1] == 0
        for n, hit in zip(snares, on_beat):
            if hit:
                n.pitch = SIDE_STICK


def drop_time_keeping(pm: pretty_midi.PrettyMIDI) -> None:
    """Leave out every hi-hat (closed, pedal, open) and ride stroke: kick and snare alone.

    GMD's kicks almost always sound with a hi-hat or ride, so a model trained on it learns to write
    a hi-hat on every kick; real songs with no time-keeping cymbal show it wrong.
    """
    for track in _drum_tracks(pm):
        track.notes = [n for n in track.notes if n.pitch not in TIME_KEEPING]


def sparse_hihats(pm: pretty_midi.PrettyMIDI, rng: np.random.Generator) -> None:
    """Keep the hi-hat (closed, pedal, open) on every beat, or on every other beat, and drop its strokes
    in between: quarter-note hats, or hats with the kick on 1 and 3 only.

    All or none of a groove's hats (no_hats) still lets a model learn that a groove with hats has one
    on every 8th; then it writes a hi-hat on an off-beat kick, or under a cross-stick backbeat, where
    a drummer who keeps time in quarters has none.
    """
    beats = midi_beat_grid(pm).times
    if len(beats) < 2:
        return
    every = int(rng.choice([1, 2]))
    hat_notes = instruments.HI_HAT.source_notes + instruments.OPEN_HI_HAT.source_notes
    for track, hats, times in _strokes(pm, hat_notes):
        beat, sub = _grid_position(times, beats, 4)
        keep = {id(n) for n, b, ok in zip(hats, beat, sub == 0) if ok and b % every == 0}
        track.notes = [n for n in track.notes if n.pitch not in hat_notes or id(n) in keep]


def ghost_notes(pm: pretty_midi.PrettyMIDI, rng: np.random.Generator, rate: float | None = None) -> None:
    """Quiet snare strokes on free 16ths, as funk and rock drummers fill the gaps of a groove."""
    tracks = _drum_tracks(pm)
    beats = pm.get_beats()
    if not tracks or len(beats) < 2:
        return
    rate = float(rng.uniform(0.05, 0.2)) if rate is None else rate
    snares = np.array(sorted(n.start for t in tracks for n in t.notes if n.pitch in (37, 38, 40)))
    end = max(n.start for t in tracks for n in t.notes) if any(t.notes for t in tracks) else 0.0
    track = tracks[0]
    for b0, b1 in zip(beats[:-1], beats[1:]):
        for j in range(4):
            t = b0 + j * (b1 - b0) / 4
            if t > end:
                break
            if len(snares) and np.min(np.abs(snares - t)) < 0.6 * (b1 - b0) / 4:
                continue
            if rng.random() < rate:
                track.notes.append(pretty_midi.Note(int(rng.integers(12, 40)), SNARE, float(t), float(t) + 0.05))
    track.notes.sort(key=lambda n: n.start)


def vary_playing(pm: pretty_midi.PrettyMIDI, rng: np.random.Generator,
                 probability: dict[str, float] | None = None) -> list[str]:
    """Apply a random subset of the variations in place; returns their names for the build's statistics.

    `probability` overrides VARIATION_PROBABILITY per variation name.
    """
    p = {**VARIATION_PROBABILITY, **(probability or {})}
    applied = []
    draw = rng.random()
    if draw < p["ride"]:
        ride_for_hihat(pm)
        applied.append("ride")
    elif draw < p["ride"] + p["crash_ride"]:
        # Riding the crash: a wash that real mixes have and a hi-hat-trained model calls an open hi-hat.
        ride_for_hihat(pm, CRASHES[0])
        applied.append("crash_ride")
    elif rng.random() < p["open_hh"]:
        open_hihats(pm, rng)
        applied.append("open_hh")
    if rng.random() < p["crashes"]:
        section_crashes(pm, rng)
        applied.append("crashes")
    if rng.random() < p["ghosts"]:
        ghost_notes(pm, rng)
        applied.append("ghosts")
    # Drawn last and only when asked for, so that the draws above stay those of older builds.
    if p["cross_stick"] > 0 and rng.random() < p["cross_stick"]:
        cross_stick_backbeat(pm)
        applied.append("cross_stick")
    if p["no_hats"] > 0 and rng.random() < p["no_hats"]:
        drop_time_keeping(pm)
        applied.append("no_hats")
    elif p["sparse_hats"] > 0 and rng.random() < p["sparse_hats"]:
        sparse_hihats(pm, rng)
        applied.append("sparse_hats")
    return applied
