"""A soundfont synthesizer from PyPI alone: TinySoundFont (package `tinysoundfont`), for machines
without libfluidsynth.

It plays the same `SynthTrack`s as `synth.FluidSynth` through the same `render` call, so the renderer
works on a fresh machine with nothing but pip (`pip install --no-deps tinysoundfont`: its only
requirement, pyaudio, is for live playback, which this module never uses). FluidSynth stays the
first choice: it is the synthesizer the bundled models were trained with.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .synthesis import FluidError, track_events


class TinySynth:
    """`FluidSynth`'s interface (`load`, `render`) over TinySoundFont."""

    MAX_CHANNELS = 16

    def __init__(self, sample_rate: int) -> None:
        import tinysoundfont

        self.sample_rate = sample_rate
        # -6 dB, as FluidSynth's synth.gain 0.5.
        self.synth = tinysoundfont.Synth(gain=-6.0, samplerate=sample_rate)
        self._sfids: dict[Path, int] = {}
        self._channels: set[int] = set()

    def load(self, soundfont: Path) -> int:
        soundfont = Path(soundfont)
        if soundfont not in self._sfids:
            try:
                self._sfids[soundfont] = self.synth.sfload(str(soundfont))
            except Exception as exc:  # tinysoundfont raises its own exception type for unreadable files

                raise FluidError(f"{soundfont}: tinysoundfont could not load this soundfont ({exc})") from None
        return self._sfids[soundfont]

    def _select(self, ch: int, sfid: int, track) -> None:

        # A GM drum bank without the asked kit plays its standard kit, as FluidSynth does.
        for preset in dict.fromkeys((track.preset, 0)):
            try:
                self.synth.program_select(ch, sfid, track.bank, preset, is_drums=track.is_drum)
                self._channels.add(ch)
                return
            except RuntimeError:
                continue
        raise FluidError(f"{track.soundfont}: no preset {track.bank}:{track.preset}")

    def render(self, tracks: list, n_samples: int) -> np.ndarray:
        """Mono float32 audio of `n_samples` samples; every track gets its own channel."""
        if len(tracks) > self.MAX_CHANNELS:
            raise ValueError(f"at most {self.MAX_CHANNELS} tracks")
        synth, sr = self.synth, self.sample_rate
        self._silence()

        for ch, tr in enumerate(tracks):
            self._select(ch, self.load(tr.soundfont), tr)
            synth.control_change(ch, 7, int(np.clip(tr.volume, 0, 127)))
            synth.pitchbend_range(ch, 2)
            synth.pitchbend(ch, int(np.clip(8192 + tr.bend, 0, 16383)))
        events = track_events(tracks, sr)
        out = np.zeros((n_samples, 2), dtype=np.float32)
        pos = 0

        def write(stop: int) -> None:
            nonlocal pos
            while pos < stop:
                n = min(stop - pos, 1 << 16)
                out[pos:pos + n] = np.frombuffer(synth.generate(n), dtype=np.float32).reshape(-1, 2)
                pos += n

        for sample, _, kind, ch, a, b in events:
            write(min(max(sample, 0), n_samples))
            if kind == 1:
                synth.noteon(ch, a, b)
            elif kind == 0:
                synth.noteoff(ch, a)
            else:
                synth.pitchbend(ch, a)
        write(n_samples)
        self._silence()
        return out.mean(axis=1)

    def _silence(self) -> None:
        """Cut every voice, so that a render does not hear the one before it."""
        for ch in self._channels:
            self.synth.sounds_off(ch)
