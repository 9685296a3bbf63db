"""The one-shot sampler every sampled kit shares: varispeed tuning, overlap-add with the hi-hat's choke."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .drumnotes import GROUPS
from .synthesis import SAMPLE_RATE

_HH_CHOKERS = (42, 44)
_CHOKE_FADE = int(0.012 * SAMPLE_RATE)


def read_mono(path: Path) -> np.ndarray:
    """A sample file as mono float32 at SAMPLE_RATE, resampled where it was recorded at another rate."""
    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SAMPLE_RATE:
        import librosa

        audio = librosa.resample(audio, orig_sr=sr, target_sr=SAMPLE_RATE, res_type="soxr_hq").astype(np.float32)
    return audio


def pitch_shift(audio: np.ndarray, semitones: float) -> np.ndarray:
    # Varispeed like a sampler: a semitone or two at most, where linear interpolation is good enough.
    if abs(semitones) < 1e-3:
        return audio
    ratio = 2.0 ** (semitones / 12.0)
    positions = np.arange(0.0, len(audio) - 1, ratio)
    return np.interp(positions, np.arange(len(audio)), audio).astype(np.float32)


def mix_hits(hits: list[tuple[float, int, np.ndarray, float]], n_samples: int) -> np.ndarray:
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


def group_tuning(rng: np.random.Generator) -> dict[str, float]:
    # Real kits are tuned differently from song to song; half the groups get up to a semitone either way.
    return {g: (float(rng.uniform(-1.0, 1.0)) if rng.random() < 0.5 else 0.0) for g in GROUPS}
