"""A generated band to play along with a drum MIDI: bass, chords and sometimes a melody.

The model has to find drums inside full mixes, so training mixes need pitched instruments whose
onsets fall on the same beats as the drums (the hardest case for a transcriber). Everything here
follows the drum file's own beat times, so the band speeds up and slows down with the drummer's
tempo map. Keys, progressions, patterns, General MIDI programs and the soundfont are random.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .arrangement import Arrangement, Part, melodic_soundfonts, render_arrangement
from .band import render_band
from .synthesis import FluidError

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# Scale degrees (0 = tonic) of common progressions, one chord per harmonic step.
MAJOR_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (1, 4, 0, 0), (0, 3, 0, 4),
                      (0, 0, 3, 3, 0, 0, 4, 3), (0, 2, 3, 4), (3, 4, 0, 5), (0, 6, 3, 0))
MINOR_PROGRESSIONS = ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 5, 3, 4), (0, 3, 6, 2), (0, 0, 3, 4),
                      (5, 6, 0, 0))

BASS_PROGRAMS = (32, 33, 34, 35, 36, 37, 38, 39)
CHORD_FAMILIES: dict[str, tuple[int, ...]] = {
    "piano": (0, 1, 2, 3),
    "epiano": (4, 5, 7),
    "organ": (16, 17, 18, 19),
    "guitar": (24, 25, 26, 27, 28, 29, 30),
    "strings": (48, 49, 50, 51),
    "pad": (88, 89, 90, 91, 92, 94, 95),
    "synth": (62, 63, 80, 81),
    "brass": (61, 62),
}
CHORD_PATTERNS: dict[str, tuple[str, ...]] = {
    "piano": ("sustain", "half", "quarters", "eighths", "pop", "arpeggio", "offbeat"),
    "epiano": ("sustain", "quarters", "offbeat", "pop", "arpeggio"),
    "organ": ("sustain", "half", "offbeat", "quarters"),
    "guitar": ("strum", "strum", "eighths", "offbeat", "arpeggio", "half"),
    "strings": ("sustain", "sustain", "half"),
    "pad": ("sustain",),
    "synth": ("eighths", "offbeat", "arpeggio", "sustain"),
    "brass": ("pop", "offbeat", "half"),
}
MELODY_PROGRAMS = (56, 65, 66, 73, 71, 80, 81, 52, 53, 54, 85, 40, 22, 29, 11, 68)
# Voice-like and bowed leads get vibrato: a steady pitch would sound like no real singer or violinist.
VIBRATO_PROGRAMS = {52, 53, 54, 85, 40, 65, 66, 68, 71, 73}
BASS_PATTERNS = ("whole", "quarters", "root_fifth", "eighths", "syncopated", "kick", "kick", "walking")


class _BeatClock:
    """Beat numbers (float) to seconds along the drum file's beats, extrapolated at both ends."""

    def __init__(self, beat_times: np.ndarray) -> None:
        self.times = np.asarray(beat_times, dtype=float)
        self.index = np.arange(len(self.times), dtype=float)

    def __call__(self, beats: np.ndarray | float) -> np.ndarray:
        b = np.asarray(beats, dtype=float)
        t = np.interp(b, self.index, self.times)
        first = self.times[1] - self.times[0]
        last = self.times[-1] - self.times[-2]
        t = np.where(b < 0, self.times[0] + b * first, t)
        return np.where(b > self.index[-1], self.times[-1] + (b - self.index[-1]) * last, t)

    def beat_of(self, seconds: np.ndarray) -> np.ndarray:
        return np.interp(seconds, self.times, self.index)


def _bars(positions: np.ndarray, n_beats: int) -> list[tuple[int, int]]:
    """(first beat, beats in bar) of every bar; a pickup bar counts from its own first beat."""
    positions = np.asarray(positions, dtype=int)
    meter = int(positions.max()) if len(positions) else 4
    starts = [i for i, p in enumerate(positions) if p == 1]
    if not starts or starts[0] != 0:
        starts = [0] + starts
    # Beats past the annotated grid continue the metre.
    while starts[-1] + meter < n_beats:
        starts.append(starts[-1] + meter)
    bars = []
    for a, b in zip(starts, starts[1:] + [max(n_beats, starts[-1] + meter)]):
        if b > a:
            bars.append((a, b - a))
    return bars


def _chord_tones(key: int, scale: tuple[int, ...], degree: int, seventh: bool) -> list[int]:
    """Pitch classes above the key's C as semitone offsets (may exceed 12), root first."""
    steps = (0, 2, 4, 6) if seventh else (0, 2, 4)
    return [key + scale[(degree + s) % 7] + 12 * ((degree + s) // 7) for s in steps]


def _place(pitch_class: int, low: int, high: int) -> int:
    """The pitch of `pitch_class` inside [low, high)."""
    p = low + (pitch_class - low) % 12
    return p if p < high else p - 12


def _voicing(tones: list[int], centre: int, rng: np.random.Generator) -> list[int]:
    """Close-position voicing around `centre`, sometimes with the root doubled an octave below."""
    voiced = sorted(_place(t, centre - 6, centre + 6) for t in tones)
    if rng.random() < 0.3:
        voiced.insert(0, _place(tones[0], centre - 18, centre - 6))
    return voiced


def _humanise(t: float, rng: np.random.Generator, spread: float = 0.008) -> float:
    return t + float(rng.normal(0.0, spread))


def generate_arrangement(beat_times: np.ndarray, beat_positions: np.ndarray, end_time: float,
                         rng: np.random.Generator, kick_times: np.ndarray | None = None,
                         melody: bool | None = None) -> Arrangement:
    """Compose bass, one or two chord parts and maybe a melody on the beats, up to `end_time` seconds."""
    beat_times = np.asarray(beat_times, dtype=float)
    clock = _BeatClock(beat_times)
    last_step = beat_times[-1] - beat_times[-2]
    overhang = max(end_time - beat_times[-1], 0.0)
    n_beats = len(beat_times) + int(np.ceil(overhang / last_step))
    bars = _bars(beat_positions, n_beats)
    minor = bool(rng.random() < 0.45)
    scale = MINOR if minor else MAJOR
    key = int(rng.integers(12))
    progs = MINOR_PROGRESSIONS if minor else MAJOR_PROGRESSIONS
    progression = progs[rng.integers(len(progs))]
    sevenths = bool(rng.random() < 0.3)
    # Harmonic rhythm: chords per bar (2), per bar (1) or every other bar (0.5).
    per_bar = float(rng.choice([0.5, 1.0, 1.0, 1.0, 2.0]))

    # (start beat, end beat, degree) for each chord span.
    chords: list[tuple[float, float, int]] = []
    step = 0
    for bar_start, length in bars:
        if per_bar == 0.5:
            degree = progression[(step // 2) % len(progression)]
            chords.append((bar_start, bar_start + length, degree))
            step += 1
        elif per_bar == 2.0 and length >= 4 and length % 2 == 0:
            half = length // 2
            for h in range(2):
                chords.append((bar_start + h * half, bar_start + (h + 1) * half,
                               progression[step % len(progression)]))
                step += 1
        else:
            chords.append((bar_start, bar_start + length, progression[step % len(progression)]))
            step += 1

    end_beat = float(clock.beat_of(np.array([end_time]))[0]) if end_time <= beat_times[-1] else \
        len(beat_times) - 1 + overhang / last_step
    kick_beats = clock.beat_of(np.asarray(kick_times, dtype=float)) if kick_times is not None and len(kick_times) \
        else np.zeros(0)

    def seconds(b: float) -> float:
        return float(clock(b))

    def add(part: Part, start_b: float, dur_b: float, pitch: int, vel: int, jitter: float = 0.008) -> None:
        if start_b >= end_beat or dur_b <= 0:
            return
        stop_b = min(start_b + dur_b, end_beat)
        s = max(_humanise(seconds(start_b), rng, jitter), 0.0)
        e = max(seconds(stop_b), s + 0.03)
        part.notes.append((s, e, int(np.clip(pitch, 0, 127)), int(np.clip(vel, 1, 127))))

    parts: list[Part] = []

    if rng.random() < 0.9:
        program = int(rng.choice(BASS_PROGRAMS))
        pattern = str(rng.choice(BASS_PATTERNS)) if len(kick_beats) else str(rng.choice(BASS_PATTERNS[:5]))
        bass = Part(f"bass {pattern} (program {program})", program)
        base_vel = int(rng.integers(70, 110))
        for i, (b0, b1, degree) in enumerate(chords):
            tones = _chord_tones(key, scale, degree, False)
            root = _place(tones[0], 31, 43)
            fifth = root + 7
            length = b1 - b0
            if pattern == "whole":
                hits = [(0.0, length - 0.05, root)]
            elif pattern == "quarters":
                hits = [(float(k), 0.9, root) for k in range(int(length))]
            elif pattern == "root_fifth":
                hits = [(float(k), 0.9, root if k % 2 == 0 else fifth) for k in range(int(length))]
            elif pattern == "eighths":
                hits = [(k / 2, 0.45, root + (12 if k == 2 * length - 1 and rng.random() < 0.3 else 0))
                        for k in range(int(2 * length))]
            elif pattern == "syncopated":
                hits = [(0.0, 1.4, root), (1.5, 0.5, root), (2.0, 1.0, fifth), (3.5, 0.45, root + 12)]
                hits = [h for h in hits if h[0] < length]
            elif pattern == "walking":
                nxt = _place(_chord_tones(key, scale, chords[(i + 1) % len(chords)][2], False)[0], 31, 43)
                walk = [root, tones[1] - tones[0] + root, fifth, nxt + (1 if rng.random() < 0.5 else -1)]
                hits = [(float(k), 0.95, walk[k % 4]) for k in range(int(length))]
            else:  # "kick": the bass doubles the kick drum, as in most rock and funk
                in_span = kick_beats[(kick_beats >= b0 - 0.1) & (kick_beats < b1 - 0.1)] - b0
                hits = []
                for j, kb in enumerate(in_span):
                    nxt_b = in_span[j + 1] if j + 1 < len(in_span) else length
                    hits.append((max(float(kb), 0.0), float(min(nxt_b - kb, 1.0)) * 0.9, root))
            for off, dur, pitch in hits:
                add(bass, b0 + off, dur, pitch, base_vel + int(rng.integers(-10, 10)), 0.006)
        bass.volume = int(rng.integers(85, 127))
        parts.append(bass)

    n_chord_parts = 1 if rng.random() < 0.6 else 2
    families = list(CHORD_FAMILIES)
    for _ in range(n_chord_parts):
        family = families[rng.integers(len(families))]
        program = int(rng.choice(CHORD_FAMILIES[family]))
        pattern = str(rng.choice(CHORD_PATTERNS[family]))
        part = Part(f"{family} {pattern} (program {program})", program)
        centre = int(rng.integers(55, 70))
        base_vel = int(rng.integers(55, 100))
        sub = 0.25 if rng.random() < 0.3 else 0.5
        for b0, b1, degree in chords:
            length = b1 - b0
            voiced = _voicing(_chord_tones(key, scale, degree, sevenths), centre, rng)
            if pattern == "sustain":
                spans = [(0.0, length - 0.02)]
            elif pattern == "half":
                spans = [(float(k), min(2.0, length - k) - 0.05) for k in range(0, int(length), 2)]
            elif pattern == "quarters":
                spans = [(float(k), 0.8) for k in range(int(length))]
            elif pattern == "eighths":
                spans = [(k / 2, 0.4) for k in range(int(2 * length))]
            elif pattern == "offbeat":
                spans = [(k + 0.5, 0.35) for k in range(int(length))]
            elif pattern == "pop":
                spans = [s for s in ((0.0, 1.4), (1.5, 1.0), (2.5, 1.4)) if s[0] < length]
            elif pattern == "strum":
                rhythm = [(k / 2, 0.45) for k in range(int(2 * length)) if k % 2 == 0 or rng.random() < 0.6]
                for off, dur in rhythm:
                    down = (off * 2) % 2 == 0
                    order = voiced if down else voiced[::-1]
                    spread = rng.uniform(0.004, 0.015)
                    vel = base_vel + (8 if down else -8) + int(rng.integers(-6, 6))
                    for j, pitch in enumerate(order):
                        s = seconds(b0 + off) + j * spread
                        add(part, float(clock.beat_of(np.array([s]))[0]), dur, pitch, vel, 0.003)
                continue
            else:  # "arpeggio"
                k = 0
                pos = 0.0
                while pos < length - 1e-6:
                    add(part, b0 + pos, sub * 1.8, voiced[k % len(voiced)], base_vel + int(rng.integers(-8, 8)), 0.005)
                    k += 1
                    pos += sub
                continue
            for off, dur in spans:
                vel = base_vel + int(rng.integers(-8, 8))
                for pitch in voiced:
                    add(part, b0 + off, dur, pitch, vel, 0.004)
        part.volume = int(rng.integers(70, 120))
        parts.append(part)

    if melody if melody is not None else rng.random() < 0.55:
        program = int(rng.choice(MELODY_PROGRAMS))
        lead = Part(f"melody (program {program})", program)
        low = int(rng.integers(60, 72))
        pitches = [p for p in range(low, low + 19) if (p - key) % 12 in scale]
        idx = len(pitches) // 2
        base_vel = int(rng.integers(60, 105))
        # The melody often enters after an intro, as a singer would.
        pos = float(bars[min(int(rng.integers(0, 3)), len(bars) - 1)][0]) if bars else 0.0
        chord_starts = np.array([c[0] for c in chords])
        while pos < end_beat:
            dur = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0, 3.0]))
            if rng.random() < 0.25:
                pos += dur
                continue
            c = chords[max(int(np.searchsorted(chord_starts, pos, side="right")) - 1, 0)]
            if abs(pos - c[0]) < 1e-6:
                # On a chord change, land on a chord tone.
                tones = {t % 12 for t in _chord_tones(key, scale, c[2], False)}
                near = [i for i, p in enumerate(pitches) if p % 12 in tones]
                idx = min(near, key=lambda i: abs(i - idx)) if near else idx
            else:
                idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, len(pitches) - 1))
            before = len(lead.notes)
            add(lead, pos, dur * 0.95, pitches[idx], base_vel + int(rng.integers(-10, 10)), 0.012)
            if program in VIBRATO_PROGRAMS and len(lead.notes) > before:
                s, e, _, _ = lead.notes[-1]
                if e - s > 0.35:
                    rate, depth = rng.uniform(4.5, 6.5), rng.uniform(300, 900)  # depth in bend units (2 semitone range)
                    for t in np.arange(s + 0.2, e, 0.02):
                        lead.bends.append((float(t), int(depth * np.sin(2 * np.pi * rate * (t - s - 0.2)))))
                    lead.bends.append((e, 0))
            pos += dur
        lead.volume = int(rng.integers(70, 115))
        parts.append(lead)

    return Arrangement(key, minor, progression, parts)


@dataclass
class Accompaniment:
    audio: np.ndarray
    soundfont: str
    arrangement: Arrangement
    layers: list[str] = field(default_factory=list)  # record-like layers drawn (band.py)


def random_accompaniment(beat_times: np.ndarray, beat_positions: np.ndarray, duration: float,
                         rng: np.random.Generator, kick_times: np.ndarray | None = None,
                         soundfont: str | None = None, end_time: float | None = None,
                         melody: bool | None = None, record_like: bool = False,
                         piano_dirs: tuple[Path, ...] = (), percussion: float = 0.0) -> Accompaniment:
    """Compose and render a band over `beat_times`; the audio lasts `duration` s, the notes stop at `end_time`.

    `record_like` adds the layers of band.py (sampled pianos from `piano_dirs`, a distorted guitar, a voice).
    """
    fonts = melodic_soundfonts()
    if not fonts:
        raise FluidError("no General MIDI soundfont installed for the accompaniment")
    if soundfont is None:
        names = sorted(fonts)
        soundfont = names[rng.integers(len(names))]
    end = duration if end_time is None else end_time
    arrangement = generate_arrangement(beat_times, beat_positions, end, rng, kick_times, melody)
    if not record_like and not piano_dirs:
        return Accompaniment(render_arrangement(arrangement, fonts[soundfont], duration), soundfont, arrangement)
    audio, layers = render_band(arrangement, fonts[soundfont], duration, rng, beat_times, beat_positions, end,
                                piano_dirs, record_like, percussion)
    return Accompaniment(audio, soundfont, arrangement, layers)
