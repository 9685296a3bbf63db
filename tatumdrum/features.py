"""Audio loading and the log-mel spectrogram of section IV-A."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf


@dataclass(frozen=True)
class MelParams:
    """Section IV-A: 44.1 kHz, Hann window of 2048, hop of 441 (10 ms), 80 bands from 20 Hz to 20 kHz."""

    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 441
    n_mels: int = 80
    fmin: float = 20.0
    fmax: float = 20000.0

    @property
    def fps(self) -> float:
        return self.sample_rate / self.hop_length


MEL = MelParams()


class AudioError(ValueError):
    """An audio file that cannot be read or holds no sound."""


def load_audio(path: Path, sample_rate: int = MEL.sample_rate, mono: bool = True) -> np.ndarray:
    """Read wav, flac, ogg or mp3 at any rate and channel count; return float32 at `sample_rate`.

    Mono audio is (samples,); with `mono=False` the result is (channels, samples).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
        audio = audio.T
    except Exception:
        # libsndfile lacks some codecs on older systems; librosa falls back to audioread/ffmpeg.
        try:
            audio, sr = librosa.load(str(path), sr=None, mono=False)
        except Exception as exc:
            raise AudioError(f"{path}: not a readable audio file ({type(exc).__name__})") from None
        audio = np.atleast_2d(audio).astype(np.float32)
    if audio.shape[-1] == 0:
        raise AudioError(f"{path}: the file holds no audio samples")
    if sr != sample_rate:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    if mono:
        return np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


_FILTERBANKS: dict[MelParams, np.ndarray] = {}


def mel_filterbank(params: MelParams = MEL) -> np.ndarray:
    if params not in _FILTERBANKS:
        _FILTERBANKS[params] = librosa.filters.mel(
            sr=params.sample_rate, n_fft=params.n_fft, n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax
        ).astype(np.float32)
    return _FILTERBANKS[params]


def log_mel(audio: np.ndarray, params: MelParams = MEL) -> np.ndarray:
    """Log-compressed magnitude mel spectrogram, (frames, n_mels), one frame per hop, frame t centred at t * hop.

    log(1 + mel) keeps silence at zero and compresses loud drums, which matters because
    training audio and user audio differ widely in level.
    """
    mag = np.abs(
        librosa.stft(np.asarray(audio, dtype=np.float32), n_fft=params.n_fft, hop_length=params.hop_length,
                     window="hann", center=True)
    )
    mel = mel_filterbank(params) @ mag
    return np.log1p(mel).T.astype(np.float32)
