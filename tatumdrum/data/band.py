"""A band that sounds more like a record: sampled pianos, a distorted guitar and a voice over the GM band.

`render_band` plays an `Arrangement` (accompaniment.py): piano parts through recorded piano samples
where sample folders are given, the rest through the GM soundfont; then, drawn per song, a
power-chord guitar through an amp and cabinet (effects.amp_sim) doubling the bass line, a
vocal-like part (vocals.py) and, where a build asks for it, hand percussion (`band_percussion`). Each
added layer is balanced against the rest of the band in RMS.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from . import effects
from .arrangement import Arrangement, Part, render_arrangement
from .sampled import load_sampled_instruments, render_sampled
from .fluid import fluid
from .synthesis import SAMPLE_RATE, FluidError, SynthTrack
from .vocals import espeak_path, vocal_track

PIANO_PROGRAMS = range(0, 8)
# Hand percussion a band plays beside the kit (GM drum notes): tambourine, cabasa, maracas. It stays in the
# band stem, unlabelled, as in MDB Drums, whose annotations cover the kit alone.
PERCUSSION_NOTES = {54: "tambourine", 69: "cabasa", 70: "maracas"}
PERCUSSION_PATTERNS = ("quarters", "eighths", "sixteenths", "backbeat")
PERCUSSION_DB = (-16.0, -2.0)
GUITAR_PROGRAMS = (29, 30, 30, 27)  # overdriven, distortion, clean electric (driven by the amp)
P_SAMPLED_PIANO = 0.7
P_GUITAR = 0.45
P_VOCAL = 0.6
GUITAR_DB = (-6.0, 4.0)
VOCAL_DB = (-4.0, 6.0)


def power_chords(bass: Part, rng: np.random.Generator) -> Part:
    """Root-fifth-octave chords on the bass line's notes, an octave up, as a rhythm guitarist plays them."""
    program = int(rng.choice(GUITAR_PROGRAMS))
    part = Part(f"distorted guitar (program {program})", program)
    palm_mute = rng.random() < 0.4
    for start, end, pitch, velocity in bass.notes:
        root = pitch + 12
        while root < 40:
            root += 12
        stop = start + min(end - start, 0.12) if palm_mute else end
        for interval in (0, 7, 12):
            part.notes.append((start + rng.uniform(0, 0.006), stop, root + interval, int(np.clip(velocity + 10, 1, 127))))
    return part


def band_percussion(beat_times: np.ndarray, end_time: float, rng: np.random.Generator
                    ) -> tuple[str, list[tuple[float, float, int, int]]]:
    """A hand-percussion part on the beat grid: its name and its notes (start, end, GM note, velocity).

    A shaker or tambourine puts a bright transient on every beat or subdivision, often louder above
    4 kHz than the kit's hi-hat; a model that never heard one beside the drums calls it a cymbal.
    """
    note = int(rng.choice(list(PERCUSSION_NOTES)))
    pattern = str(rng.choice(PERCUSSION_PATTERNS))
    per_beat = {"quarters": 1, "eighths": 2, "sixteenths": 4, "backbeat": 1}[pattern]
    base = int(rng.integers(60, 110))
    notes = []
    for i, (b0, b1) in enumerate(zip(beat_times[:-1], beat_times[1:])):
        if pattern == "backbeat" and i % 2 == 0:
            continue
        for k in range(per_beat):
            t = b0 + k * (b1 - b0) / per_beat + float(rng.normal(0.0, 0.006))
            if t >= end_time:
                break
            t = max(t, 0.0)
            velocity = base + (12 if k == 0 else 0) + int(rng.integers(-10, 10))
            notes.append((t, t + 0.1, note, int(np.clip(velocity, 1, 127))))
    return f"{PERCUSSION_NOTES[note]} {pattern}", notes


def _balanced(layer: np.ndarray, reference: np.ndarray, db: float) -> np.ndarray:
    if not np.any(layer) or not np.any(reference):
        return layer
    return effects.gain(layer, effects.rms_db(reference) + db - effects.rms_db(layer))


def render_band(arrangement: Arrangement, soundfont: Path, duration: float, rng: np.random.Generator,
                beat_times: np.ndarray, beat_positions: np.ndarray, end_time: float,
                piano_dirs: tuple[Path, ...] = (), record_like: bool = True, percussion: float = 0.0
                ) -> tuple[np.ndarray, list[str]]:
    """Mono 44.1 kHz band audio and the names of the record-like layers drawn; `percussion` is the chance
    of a hand-percussion layer (`band_percussion`), drawn last so that builds without it stay as they were."""
    n = int(np.ceil(duration * SAMPLE_RATE))
    pianos = [inst for d in piano_dirs for inst in load_sampled_instruments(Path(d))]
    gm_parts, sampled, layers = [], np.zeros(n, dtype=np.float32), []
    for part in arrangement.parts:
        if record_like and pianos and part.program in PIANO_PROGRAMS and rng.random() < P_SAMPLED_PIANO:
            inst = pianos[int(rng.integers(len(pianos)))]
            sampled += render_sampled(inst, part.notes, n) * np.float32(part.volume / 127)
            layers.append(f"sampled piano {inst.name}")
        else:
            gm_parts.append(part)
    band = render_arrangement(replace(arrangement, parts=gm_parts), soundfont, duration) if gm_parts \
        else np.zeros(n, dtype=np.float32)
    if np.any(sampled):
        band = band + _balanced(sampled, band, float(rng.uniform(-4, 2))) if np.any(band) else sampled
    if not record_like:
        return band, layers
    bass = next((p for p in arrangement.parts if p.name.startswith("bass") and p.notes), None)
    if bass is not None and rng.random() < P_GUITAR:
        guitar_part = power_chords(bass, rng)
        guitar = render_arrangement(Arrangement(arrangement.key, arrangement.minor, arrangement.progression,
                                                [guitar_part]), soundfont, duration)
        guitar = effects.amp_sim(guitar, rng)
        band = band + _balanced(guitar, band, float(rng.uniform(*GUITAR_DB)))
        layers.append(guitar_part.name)
    if espeak_path() and rng.random() < P_VOCAL:
        voice = vocal_track(beat_times, beat_positions, duration, end_time, rng)
        if rng.random() < 0.7:
            voice = effects.reverb(voice, effects.reverb_ir(rng, rng.uniform(0.4, 2.0)), rng.uniform(-18, -6))
        band = band + _balanced(voice, band, float(rng.uniform(*VOCAL_DB)))
        layers.append("vocal")
    if percussion > 0 and rng.random() < percussion:
        name, notes = band_percussion(beat_times, end_time, rng)
        try:
            hand = fluid().render([SynthTrack(soundfont, 128, 0, notes, True)], n)
        except FluidError:  # a soundfont without a drum kit: no percussion layer
            hand = np.zeros(n, dtype=np.float32)
        if np.any(hand):
            band = band + _balanced(hand, band, float(rng.uniform(*PERCUSSION_DB)))
            layers.append(name)
    return band.astype(np.float32), layers
