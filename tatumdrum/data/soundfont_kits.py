"""Soundfont kits: each (note, velocity band) is rendered once by fluidsynth and then sampled, which
is an order of magnitude faster than letting fluidsynth play every song (its long cymbal voices
pile up) and lets the soundfont kits share the sampler's tuning and choke."""
from __future__ import annotations

import functools
from collections import OrderedDict

import numpy as np
import pretty_midi

from .drumnotes import GM_FALLBACKS, NOTE_GROUP
from .fluid import fluid
from .sampler import mix_hits, pitch_shift
from .synthesis import SAMPLE_RATE, Kit, SynthTrack

VELOCITY_BANDS = 12
SHOT_SECONDS = 4.0
PROBE_NOTES = tuple(sorted(NOTE_GROUP))
_SHOTS: "OrderedDict[Kit, dict[tuple[int, int], np.ndarray]]" = OrderedDict()
# All 23 soundfont kits' shots take about 1 GB; past this the least recently used kit is dropped.
SHOT_CACHE_BYTES = 1_500_000_000


def _band_velocity(band: int) -> int:
    return int(round((band + 0.5) * 127 / VELOCITY_BANDS))


def _trim(audio: np.ndarray) -> np.ndarray:
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0:
        return audio[:0]
    loud = np.flatnonzero(np.abs(audio) > peak * 1e-3)
    # Leading silence is cut too, as for Hydrogen samples, so that every kit sounds at the note time.
    out = audio[max(int(loud[0]) - 8, 0): min(int(loud[-1]) + 1 + 256, len(audio))].copy()
    tail = min(2048, len(out))
    out[-tail:] *= np.linspace(1.0, 0.0, tail, dtype=np.float32)
    return out


def soundfont_shot(kit: Kit, note: int, band: int) -> np.ndarray:
    """The kit's sound for `note` at the centre velocity of `band`, as a one-shot sample."""
    table = _SHOTS.get(kit)
    if table is None:
        table = _SHOTS[kit] = {}
    _SHOTS.move_to_end(kit)
    while len(_SHOTS) > 1 and sum(a.nbytes for t in _SHOTS.values() for a in t.values()) > SHOT_CACHE_BYTES:
        _SHOTS.popitem(last=False)
    key = (note, band)
    if key not in table:
        audio = fluid().render([SynthTrack(kit.path, kit.bank, kit.preset,
                                           [(0.0, SHOT_SECONDS - 0.5, note, _band_velocity(band))], True)],
                               int(SHOT_SECONDS * SAMPLE_RATE))
        table[key] = _trim(audio)
    return table[key]


@functools.lru_cache(maxsize=None)
def soundfont_note_map(kit: Kit) -> dict[int, int]:
    """For each drum note, the note of `kit` that sounds it (itself, or a stand-in where the kit is silent)."""
    audible = {note: float(np.max(np.abs(soundfont_shot(kit, note, VELOCITY_BANDS - 2)), initial=0.0)) > 1e-3
               for note in PROBE_NOTES}
    mapping = {}
    for note in PROBE_NOTES:
        for candidate in (note,) + GM_FALLBACKS.get(note, ()):
            if audible.get(candidate):
                mapping[note] = candidate
                break
    return mapping


def render_soundfont_kit(notes: list[pretty_midi.Note], velocities: np.ndarray, levels: dict[str, float],
                          tuning: dict[str, float], kit: Kit, n_samples: int) -> np.ndarray:
    mapping = soundfont_note_map(kit)
    pitched: dict[tuple[int, int], np.ndarray] = {}
    hits = []
    for n, v in zip(notes, velocities):
        group = NOTE_GROUP.get(n.pitch)
        if group is None or n.pitch not in mapping:
            continue
        note = mapping[n.pitch]
        band = min(int(v) * VELOCITY_BANDS // 128, VELOCITY_BANDS - 1)
        if (note, band) not in pitched:
            pitched[(note, band)] = pitch_shift(soundfont_shot(kit, note, band), tuning[group])
        # SoundFont velocity attenuation goes as velocity squared; this bridges the band's width.
        gain = (float(v) / _band_velocity(band)) ** 2 * 10 ** (levels[group] / 20.0)
        hits.append((n.start, n.pitch, pitched[(note, band)], gain))
    return mix_hits(hits, n_samples)
