"""libfluidsynth through ctypes (one soundfont stays loaded per process, instead of once per render
as with the CLI), with TinySoundFont from PyPI as the fallback."""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

import numpy as np

from .synthesis import SAMPLE_RATE, FluidError, SynthTrack, timgm_path, track_events

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
        from .tinysynth import TinySynth  # optional: PyPI tinysoundfont

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
