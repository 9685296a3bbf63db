"""Drum MIDI to audio through a randomly chosen kit.

Two kinds of kit: General MIDI soundfonts played by libfluidsynth (through ctypes, so one soundfont
stays loaded per process instead of once per render as with the CLI), and a small sampler for the
Hydrogen drum kits (wav/flac/aiff samples with velocity layers). GMD's Roland TD-11 notes are first
folded onto General MIDI so that every kit has a sound for every note, toms and cymbals included:
the model has to hear those to learn that they are not BD, SD or HH.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import xml.etree.ElementTree as ET
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pretty_midi
import soundfile as sf

from ..features import MEL

SAMPLE_RATE = MEL.sample_rate

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"))
HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")

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


# ----------------------------------------------------------------------------------------------
# libfluidsynth through ctypes

class FluidError(RuntimeError):
    """libfluidsynth is missing or refused a soundfont."""


def _fluid_library() -> ctypes.CDLL:
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise FluidError(f"libfluidsynth not found ({exc}); install the fluidsynth package") from None
    vp, ci, cd, cc = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    signatures = {
        "new_fluid_settings": (vp, []),
        "fluid_settings_setnum": (ci, [vp, cc, cd]),
        "fluid_settings_setint": (ci, [vp, cc, ci]),
        "new_fluid_synth": (vp, [vp]),
        "fluid_synth_sfload": (ci, [vp, cc, ci]),
        "fluid_synth_program_select": (ci, [vp, ci, ci, ci, ci]),
        "fluid_synth_set_channel_type": (ci, [vp, ci, ci]),
        "fluid_synth_noteon": (ci, [vp, ci, ci, ci]),
        "fluid_synth_noteoff": (ci, [vp, ci, ci]),
        "fluid_synth_cc": (ci, [vp, ci, ci, ci]),
        "fluid_synth_pitch_bend": (ci, [vp, ci, ci]),
        "fluid_synth_pitch_wheel_sens": (ci, [vp, ci, ci]),
        "fluid_synth_system_reset": (ci, [vp]),
        "fluid_synth_write_float": (ci, [vp, ci, vp, ci, ci, vp, ci, ci]),
        "fluid_set_log_function": (vp, [ci, vp, vp]),
    }
    for fname, (res, args) in signatures.items():
        fn = getattr(lib, fname)
        fn.restype, fn.argtypes = res, args
    # Warnings about unused generators in third-party soundfonts would flood the build's output.
    for level in (1, 2, 3, 4):  # ERR, WARN, INFO, DBG
        lib.fluid_set_log_function(level, None, None)
    return lib


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


class FluidSynth:
    """A libfluidsynth synthesizer that keeps its soundfonts loaded across renders."""

    MAX_CHANNELS = 16
    POLYPHONY = 256

    def __init__(self, sample_rate: int = SAMPLE_RATE) -> None:
        self.lib = _fluid_library()
        self.sample_rate = sample_rate
        settings = self.lib.new_fluid_settings()
        self.lib.fluid_settings_setnum(settings, b"synth.sample-rate", float(sample_rate))
        self.lib.fluid_settings_setnum(settings, b"synth.gain", 0.5)
        # Reverb and chorus come from effects.py, where they are drawn at random per song.
        self.lib.fluid_settings_setint(settings, b"synth.reverb.active", 0)
        self.lib.fluid_settings_setint(settings, b"synth.chorus.active", 0)
        self.lib.fluid_settings_setint(settings, b"synth.polyphony", self.POLYPHONY)
        self.lib.fluid_settings_setint(settings, b"synth.midi-channels", self.MAX_CHANNELS)
        self.lib.fluid_settings_setint(settings, b"synth.threadsafe-api", 0)
        # All samples are decoded at load time (about 10 s for the Ogg-compressed MuseScore_General.sf3,
        # once per process): with dynamic loading every reset unloads the presets and the next render
        # decodes them again.
        self.lib.fluid_settings_setint(settings, b"synth.dynamic-sample-loading", 0)
        self.synth = self.lib.new_fluid_synth(settings)
        if not self.synth:
            raise FluidError("new_fluid_synth failed")
        self._settings = settings
        self._sfids: dict[Path, int] = {}
        # Samples written since creation: fluidsynth computes audio in blocks of BLOCK samples and keeps
        # the rest of a block for the next write, so each render first flushes to a block boundary.
        self._written = 0

    def load(self, soundfont: Path) -> int:
        soundfont = Path(soundfont)
        if soundfont not in self._sfids:
            sfid = self.lib.fluid_synth_sfload(self.synth, str(soundfont).encode(), 0)
            if sfid < 0:
                raise FluidError(f"{soundfont}: fluidsynth could not load this soundfont")
            self._sfids[soundfont] = sfid
        return self._sfids[soundfont]

    def render(self, tracks: list[SynthTrack], n_samples: int) -> np.ndarray:
        """Mono float32 audio of `n_samples` samples; every track gets its own channel."""
        if len(tracks) > self.MAX_CHANNELS:
            raise ValueError(f"at most {self.MAX_CHANNELS} tracks")
        lib, synth, sr = self.lib, self.synth, self.sample_rate
        self._scrub()
        for ch, tr in enumerate(tracks):
            sfid = self.load(tr.soundfont)
            lib.fluid_synth_set_channel_type(synth, ch, 1 if tr.is_drum else 0)
            if lib.fluid_synth_program_select(synth, ch, sfid, tr.bank, tr.preset) != 0:
                raise FluidError(f"{tr.soundfont}: no preset {tr.bank}:{tr.preset}")
            lib.fluid_synth_cc(synth, ch, 7, int(np.clip(tr.volume, 0, 127)))
            lib.fluid_synth_cc(synth, ch, 91, 0)
            lib.fluid_synth_cc(synth, ch, 93, 0)
            lib.fluid_synth_pitch_wheel_sens(synth, ch, 2)
            lib.fluid_synth_pitch_bend(synth, ch, int(np.clip(8192 + tr.bend, 0, 16383)))
        events = track_events(tracks, sr)
        self._flush()
        left = np.zeros(n_samples, dtype=np.float32)
        right = np.zeros(n_samples, dtype=np.float32)
        lp, rp = left.ctypes.data, right.ctypes.data
        pos = 0

        def write(stop: int) -> None:
            nonlocal pos
            while pos < stop:
                n = min(stop - pos, 1 << 16)
                lib.fluid_synth_write_float(synth, n, lp, pos, 1, rp, pos, 1)
                pos += n
                self._written += n

        for sample, _, kind, ch, a, b in events:
            write(min(max(sample, 0), n_samples))
            if kind == 1:
                lib.fluid_synth_noteon(synth, ch, a, b)
            elif kind == 0:
                lib.fluid_synth_noteoff(synth, ch, a)
            else:
                lib.fluid_synth_pitch_bend(synth, ch, a)
        write(n_samples)
        lib.fluid_synth_system_reset(synth)
        return 0.5 * (left + right)


    BLOCK = 64  # fluidsynth's FLUID_BUFSIZE

    def _scrub(self) -> None:
        """Put every voice slot in the same state, so that a render does not depend on earlier ones.

        A voice slot keeps some state (its last amplitude) from the note it played before; which
        slot a note gets depends on history, so identical renders differed by up to -40 dB. Playing
        one muted piano note in every slot and cutting them all leaves every slot alike.
        """
        lib, synth = self.lib, self.synth
        lib.fluid_synth_system_reset(synth)
        sfid = self.load(timgm_path())
        for ch in range(self.MAX_CHANNELS):
            lib.fluid_synth_set_channel_type(synth, ch, 0)
            lib.fluid_synth_program_select(synth, ch, sfid, 0, 0)
            lib.fluid_synth_cc(synth, ch, 7, 0)
        for i in range(self.POLYPHONY):
            lib.fluid_synth_noteon(synth, i % self.MAX_CHANNELS, 24 + (i // self.MAX_CHANNELS) % 80, 100)
        self._flush()
        self._flush()
        lib.fluid_synth_system_reset(synth)

    def _flush(self) -> None:
        """Discard the rest of the current block and one more, so that a render does not depend on the
        renders before it (deterministic builds) and no audio from before the reset leaks into it."""
        n = (-self._written) % self.BLOCK + self.BLOCK
        scratch = np.zeros(n, dtype=np.float32)
        self.lib.fluid_synth_write_float(self.synth, n, scratch.ctypes.data, 0, 1, scratch.ctypes.data, 0, 1)
        self._written += n


_FLUID: dict[int, FluidSynth] = {}


def _new_synth() -> FluidSynth:
    """libfluidsynth when it is installed, else TinySoundFont from PyPI; `TATUMDRUM_SYNTH=tinysoundfont`
    picks the latter on purpose (the tests use it to check the fallback)."""
    if os.environ.get("TATUMDRUM_SYNTH", "") != "tinysoundfont":
        try:
            return FluidSynth()
        except FluidError as fluid_error:
            reason = str(fluid_error)
    else:
        reason = "TATUMDRUM_SYNTH=tinysoundfont"
    try:
        from .tinysynth import TinySynth

        return TinySynth(SAMPLE_RATE)
    except ImportError:
        raise FluidError(f"no soundfont synthesizer: {reason}; or `pip install --no-deps tinysoundfont`") from None


def fluid() -> FluidSynth:
    """This process's synthesizer (one per process: a forked copy must not share the parent's)."""
    pid = os.getpid()
    if pid not in _FLUID:
        _FLUID.clear()
        _FLUID[pid] = _new_synth()
    return _FLUID[pid]


# ----------------------------------------------------------------------------------------------
# Kits

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


# Presets of a GM soundfont's drum bank that differ in sound. The orchestra kit is left out: its
# notes are timpani and concert percussion, not a drum set.
GM_DRUM_PRESETS: dict[int, str] = {0: "Standard", 8: "Room", 16: "Power", 24: "Electronic", 25: "TR-808",
                                   32: "Jazz", 40: "Brush"}
# Drawing a family first keeps the 9 Hydrogen kits from crowding out the soundfonts, and the other way round.
# Recorded multi-mic kits (given with `build-dataset --kit-dir`) sound most like records and are
# remixed per render, so they get the largest share when present.
FAMILY_WEIGHTS: dict[str, float] = {"FluidR3_GM": 0.12, "MuseScore_General": 0.12, "TimGM6mb": 0.05,
                                    "avldrums": 0.12, "hydrogen": 0.24, "multimic": 0.35}


def _gm_soundfonts() -> list[tuple[str, Path]]:
    found = []
    for name, path in (("FluidR3_GM", SOUNDFONT_DIRS[0] / "FluidR3_GM.sf2"),
                       ("MuseScore_General", SOUNDFONT_DIRS[1] / "MuseScore_General.sf3"),
                       ("TimGM6mb", timgm_path())):
        if path.is_file():
            found.append((name, path))
    return found


@functools.lru_cache(maxsize=None)
def list_kits() -> tuple[Kit, ...]:
    """Every kit installed on this machine that maps at least kick, snare and hi-hat."""
    kits: list[Kit] = []
    for sf_name, path in _gm_soundfonts():
        for preset, preset_name in GM_DRUM_PRESETS.items():
            kits.append(Kit(f"{sf_name}/{preset_name}", "soundfont", path, 128, preset, sf_name))
    for name in ("Black_Pearl_4_LV2", "Red_Zeppelin_4_LV2"):
        path = SOUNDFONT_DIRS[0] / f"{name}.sf2"
        if path.is_file():
            # avldrums kits are single melodic-bank presets laid out on GM drum notes.
            kits.append(Kit(f"avldrums/{name.removesuffix('_LV2')}", "soundfont", path, 0, 0, "avldrums"))
    for xml in sorted(HYDROGEN_DIR.glob("*/drumkit.xml")):
        try:
            kit = hydrogen_kit(xml)
        except (ET.ParseError, OSError):
            continue
        if kit.usable:
            kits.append(Kit(f"hydrogen/{xml.parent.name}", "hydrogen", xml, family="hydrogen"))
    return tuple(kits)


def kit_has_side_stick(kit: Kit) -> bool:
    """Whether `kit` sounds GM note 37 as a side stick rather than a snare standing in for it.

    A recorded multi-mic kit has no cross-stick take; a soundfont or Hydrogen kit may lack one too.
    Where it does, a side stick in the MIDI sounds as a snare and must be labelled as one.
    """
    if kit.kind == "soundfont":
        return soundfont_note_map(kit).get(37) == 37
    if kit.kind == "hydrogen":
        return bool(hydrogen_kit(kit.path).roles.get("stick"))
    return False


def multimic_kits(folders: tuple[Path, ...] | list[Path]) -> tuple[Kit, ...]:
    """Recorded multi-mic kits in these folders (each a kit, or a folder of kits with Samples/ inside)."""
    kits = []
    for folder in folders:
        folder = Path(folder)
        roots = [folder] if (folder / "Samples").is_dir() else sorted(p for p in folder.iterdir()
                                                                     if (p / "Samples").is_dir())
        if not roots:
            raise FileNotFoundError(f"{folder}: no multi-mic kit (a folder with Samples/<piece>/...)")
        kits += [Kit(f"multimic/{r.name}", "multimic", r, family="multimic") for r in roots]
    return tuple(kits)


def random_kit(rng: np.random.Generator, kits: tuple[Kit, ...] | None = None) -> Kit:
    """A kit drawn family first (see FAMILY_WEIGHTS), then uniformly within the family."""
    kits = list_kits() if kits is None else kits
    if not kits:
        raise FluidError("no drum kit installed (fluid-soundfont-gm or hydrogen drumkits)")
    families = sorted({k.family for k in kits})
    weights = np.array([FAMILY_WEIGHTS.get(f, 0.1) for f in families])
    family = families[rng.choice(len(families), p=weights / weights.sum())]
    members = [k for k in kits if k.family == family]
    return members[rng.integers(len(members))]


def _velocity_curve(rng: np.random.Generator):
    """A random velocity response: overall scale, a curve, and a floor (the compression of dynamics)."""
    gamma = rng.uniform(0.6, 1.3)
    scale = rng.uniform(0.85, 1.2)
    floor = rng.uniform(0.0, 25.0)

    def curve(v: np.ndarray) -> np.ndarray:
        out = floor + (127.0 - floor) * (np.asarray(v, float) / 127.0) ** gamma * scale
        return np.clip(np.round(out + rng.normal(0.0, 2.0, np.shape(v))), 1, 127).astype(int)

    return curve


def _group_levels_db(rng: np.random.Generator) -> dict[str, float]:
    return {g: float(rng.uniform(*r)) for g, r in GROUP_LEVEL_DB.items()}


def render_drums(pm: pretty_midi.PrettyMIDI, kit: Kit, rng: np.random.Generator,
                 duration: float | None = None, vary: bool = True) -> np.ndarray:
    """Float32 mono audio at 44.1 kHz of the drum tracks of `pm` played on `kit`.

    Velocities pass a random response curve and each group (kick, snare, hi-hat, toms, cymbals)
    gets a random level and tuning, so that no two renders of a kit balance alike. `vary=False`
    plays the kit as it is (velocities as written, all groups at 0 dB, no tuning).
    """
    notes = remap_to_gm(pm)
    if duration is None:
        duration = (max((n.start for n in notes), default=0.0)) + 2.0
    n_samples = int(np.ceil(duration * SAMPLE_RATE))
    velocities = np.array([n.velocity for n in notes], dtype=int)
    if vary and notes:
        velocities = _velocity_curve(rng)(velocities)
    levels = _group_levels_db(rng) if vary else {g: 0.0 for g in GROUPS}
    tuning = _group_tuning(rng) if vary else {g: 0.0 for g in GROUPS}
    if kit.kind == "soundfont":
        return _render_soundfont_kit(notes, velocities, levels, tuning, kit, n_samples)
    if kit.kind == "hydrogen":
        return _render_hydrogen_kit(notes, velocities, levels, tuning, kit, rng, n_samples)
    if kit.kind == "multimic":
        from .multimic import load_multimic_kit, render_multimic

        return render_multimic(notes, velocities, levels, tuning, load_multimic_kit(kit.path), rng, n_samples)
    raise ValueError(f"unknown kit kind {kit.kind!r}")


# ----------------------------------------------------------------------------------------------
# Shared sampler

_HH_CHOKERS = (42, 44)
_CHOKE_FADE = int(0.012 * SAMPLE_RATE)


def _pitched(audio: np.ndarray, semitones: float) -> np.ndarray:
    # Varispeed like a sampler: a semitone or two at most, where linear interpolation is good enough.
    if abs(semitones) < 1e-3:
        return audio
    ratio = 2.0 ** (semitones / 12.0)
    positions = np.arange(0.0, len(audio) - 1, ratio)
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def _mix_hits(hits: list[tuple[float, int, np.ndarray, float]], n_samples: int) -> np.ndarray:
    """Overlap-add one-shots: (time s, GM note, sample, gain). A closed or pedalled hat chokes an open one."""
    choke_times = np.array(sorted(t for t, note, _, _ in hits if note in _HH_CHOKERS))
    out = np.zeros(n_samples, dtype=np.float32)
    for t, note, sample, gain in hits:
        start = int(round(t * SAMPLE_RATE))
        if start >= n_samples or start < 0:
            continue
        piece = sample[: n_samples - start] * np.float32(gain)
        if note == 46 and len(choke_times):
            later = choke_times[choke_times > t + 1e-3]
            if len(later):
                cut = int(round(later[0] * SAMPLE_RATE)) - start
                if cut < len(piece):
                    end = min(cut + _CHOKE_FADE, len(piece))
                    piece[cut:end] *= np.linspace(1.0, 0.0, end - cut, dtype=np.float32)
                    piece = piece[:end]
        out[start:start + len(piece)] += piece
    return out


def _group_tuning(rng: np.random.Generator) -> dict[str, float]:
    # Real kits are tuned differently from song to song; half the groups get up to a semitone either way.
    return {g: (float(rng.uniform(-1.0, 1.0)) if rng.random() < 0.5 else 0.0) for g in GROUPS}


# ----------------------------------------------------------------------------------------------
# Soundfont kits: each (note, velocity band) is rendered once by fluidsynth and then sampled, which
# is an order of magnitude faster than letting fluidsynth play every song (its long cymbal voices
# pile up) and lets the soundfont kits share the Hydrogen sampler's tuning and choke.

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


def _render_soundfont_kit(notes: list[pretty_midi.Note], velocities: np.ndarray, levels: dict[str, float],
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
            pitched[(note, band)] = _pitched(soundfont_shot(kit, note, band), tuning[group])
        # SoundFont velocity attenuation goes as velocity squared; this bridges the band's width.
        gain = (float(v) / _band_velocity(band)) ** 2 * 10 ** (levels[group] / 20.0)
        hits.append((n.start, n.pitch, pitched[(note, band)], gain))
    return _mix_hits(hits, n_samples)


# ----------------------------------------------------------------------------------------------
# Hydrogen kits

@dataclass(frozen=True)
class _Layer:
    path: Path
    vmin: float
    vmax: float
    gain: float
    pitch: float


@dataclass(frozen=True)
class _HInstrument:
    name: str
    volume: float
    layers: tuple[_Layer, ...]


@dataclass
class HydrogenKit:
    name: str
    roles: dict[str, list[_HInstrument]]

    @property
    def usable(self) -> bool:
        return all(self.roles.get(r) for r in ("kick", "snare", "hh_closed"))


ROLE_OF_NOTE: dict[int, str] = {
    35: "kick", 36: "kick", 37: "stick", 38: "snare", 40: "snare_rim",
    42: "hh_closed", 44: "hh_pedal", 46: "hh_open",
    41: "tom_low", 43: "tom_low", 45: "tom_mid", 47: "tom_mid", 48: "tom_high", 50: "tom_high",
    49: "crash", 55: "crash", 57: "crash2", 51: "ride", 53: "ride_bell",
}
ROLE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "stick": ("snare_rim", "snare"), "snare_rim": ("snare",), "hh_pedal": ("hh_closed",),
    "hh_open": ("hh_closed",), "tom_low": ("tom_mid", "tom_high"), "tom_mid": ("tom_high", "tom_low"),
    "tom_high": ("tom_mid", "tom_low"), "crash": ("crash2", "ride"), "crash2": ("crash", "ride"),
    "ride": ("ride_bell", "crash"), "ride_bell": ("ride",),
}
# Hand percussion and effects would be wrong stand-ins for any drum-set piece.
_SKIP = re.compile(r"clap|cowbell|tamb|conga|bongo|cajon|djembe|agogo|clave|wood|snap|whistle|zap|\bfx\b|maraca|"
                   r"glass|click\b|shaker|roll|swish|choke|flink|china|\bnone\b|sample:|\bdrum \d|cymbal \d|"
                   r"sangban|dununba|kenkeni")


def classify_instrument(name: str) -> list[str]:
    """Drum-set roles a Hydrogen instrument can play, judged from its name (empty if none)."""
    n = name.lower()
    if _SKIP.search(n) and not re.search(r"rim click", n):
        return []
    if re.search(r"kick|bass ?drum|\bbd\b", n):
        return ["kick"]
    if re.search(r"stick|rim click", n):
        return ["stick"]
    if "snare" in n:
        return ["snare_rim"] if "rim" in n else ["snare"]
    if re.search(r"hat|\bhh\b|hi-hat", n):
        if re.search(r"pedal|\bpd\b", n):
            return ["hh_pedal"]
        if re.search(r"open|\bop\b|semi", n):
            return ["hh_open"]
        if re.search(r"free", n):
            return []
        return ["hh_closed"]
    if re.search(r"\btom", n):
        if re.search(r"floor|low|\blo\b", n):
            return ["tom_low"]
        if re.search(r"mid|\b2\b", n):
            return ["tom_mid"]
        return ["tom_high"]
    if re.search(r"bell|cup", n):
        return ["ride_bell"]
    roles = []
    if "crash" in n:
        roles += ["crash", "crash2"]
    if "ride" in n:
        roles.append("ride")
    if "splash" in n:
        roles.append("crash2")
    return roles


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


@functools.lru_cache(maxsize=None)
def hydrogen_kit(xml: Path) -> HydrogenKit:
    """Parse a Hydrogen drumkit.xml (old single-file and newer layered formats, with or without namespace)."""
    root = ET.parse(xml).getroot()
    folder = Path(xml).parent
    roles: dict[str, list[_HInstrument]] = {}
    for inst in root.iter():
        if _local(inst.tag) != "instrument":
            continue
        name = _child_text(inst, "name") or ""
        wanted = classify_instrument(name)
        if not wanted:
            continue
        layers = []
        for layer in inst.iter():
            if _local(layer.tag) != "layer":
                continue
            fname = _child_text(layer, "filename")
            if fname and (folder / fname).is_file():
                layers.append(_Layer(folder / fname, _float(_child_text(layer, "min"), 0.0),
                                     _float(_child_text(layer, "max"), 1.0), _float(_child_text(layer, "gain"), 1.0),
                                     _float(_child_text(layer, "pitch"), 0.0)))
        fname = _child_text(inst, "filename")
        if not layers and fname and (folder / fname).is_file():
            layers.append(_Layer(folder / fname, 0.0, 1.0, 1.0, 0.0))
        if not layers:
            continue
        entry = _HInstrument(name, _float(_child_text(inst, "volume"), 1.0), tuple(layers))
        for role in wanted:
            roles.setdefault(role, []).append(entry)
    return HydrogenKit(folder.name, roles)


@functools.lru_cache(maxsize=512)
def _load_sample(path: Path) -> np.ndarray:
    """A sample as mono float32 at 44.1 kHz, its leading silence cut so that it sounds at the note time."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0:
        start = int(np.argmax(np.abs(audio) > peak * 1e-3))
        audio = audio[max(start - 8, 0):]
    return np.ascontiguousarray(audio, dtype=np.float32)


def _choose_layer(inst: _HInstrument, velocity: float, rng: np.random.Generator) -> _Layer:
    fitting = [layer for layer in inst.layers if layer.vmin - 1e-6 <= velocity <= layer.vmax + 1e-6]
    if not fitting:
        centre = np.array([(layer.vmin + layer.vmax) / 2 for layer in inst.layers])
        return inst.layers[int(np.argmin(np.abs(centre - velocity)))]
    # Kits that stack several samples on one range mean them as round robin.
    return fitting[rng.integers(len(fitting))]


def _resolve_roles(kit: HydrogenKit, rng: np.random.Generator) -> dict[str, _HInstrument]:
    """One instrument per role, taking the role's fallbacks and then a donor kit for missing pieces."""
    chosen: dict[str, _HInstrument] = {}
    # Sorted: a set's order changes with each process's string hashing, and so would the draws.
    roles = sorted(set(ROLE_OF_NOTE.values()))
    for role in roles:
        for candidate in (role,) + ROLE_FALLBACKS.get(role, ()):
            options = kit.roles.get(candidate)
            if options:
                chosen[role] = options[rng.integers(len(options))]
                break
    missing = [r for r in roles if r not in chosen]
    if missing:
        # Kits without toms or cymbals (electronic ones) borrow them from another kit, as a hybrid kit would.
        donors = [hydrogen_kit(k.path) for k in list_kits() if k.kind == "hydrogen"]
        for role in missing:
            pool = [inst for d in donors for inst in d.roles.get(role, [])]
            if pool:
                chosen[role] = pool[rng.integers(len(pool))]
    return chosen


def _render_hydrogen_kit(notes: list[pretty_midi.Note], velocities: np.ndarray, levels: dict[str, float],
                         tuning: dict[str, float], kit: Kit, rng: np.random.Generator, n_samples: int) -> np.ndarray:
    instruments = _resolve_roles(hydrogen_kit(kit.path), rng)
    pitched: dict[tuple[Path, float], np.ndarray] = {}
    hits = []
    for n, v in zip(notes, velocities):
        role, group = ROLE_OF_NOTE.get(n.pitch), NOTE_GROUP.get(n.pitch)
        if role is None or group is None or role not in instruments:
            continue
        inst = instruments[role]
        vel = float(v) / 127.0
        layer = _choose_layer(inst, vel, rng)
        key = (layer.path, layer.pitch + tuning[group])
        if key not in pitched:
            pitched[key] = _pitched(_load_sample(layer.path), key[1])
        # Hydrogen scales each hit linearly with velocity on top of the layer choice.
        gain = vel * layer.gain * inst.volume * 10 ** (levels[group] / 20.0)
        hits.append((n.start, n.pitch, pitched[key], gain))
    return _mix_hits(hits, n_samples)
