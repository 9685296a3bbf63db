"""Audio loading and the log-mel spectrogram of section IV-A."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

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


# Below this peak (after removing DC and rumble) a file holds nothing a drummer could hear.
INAUDIBLE_DBFS = -60.0


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries (mpg123, libsndfile) that print notes on the process's stderr while decoding."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def wav_truncation(path: Path) -> tuple[float, float] | None:
    """(declared, present) data bytes of a RIFF/WAVE file whose data chunk is cut short, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(12)
            if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
                return None
            order = "little" if head[:4] == b"RIFF" else "big"
            size = os.fstat(fh.fileno()).st_size
            while True:
                chunk = fh.read(8)
                if len(chunk) < 8:
                    return None
                length = int.from_bytes(chunk[4:8], order)
                if chunk[:4] == b"data":
                    present = size - fh.tell()
                    # 0 and 0xFFFFFFFF mark streams whose writer never filled in the size.
                    if length not in (0, 0xFFFFFFFF) and present < length:
                        return float(length), float(present)
                    return None
                fh.seek(length + (length & 1), 1)
    except OSError:
        return None


def load_audio(path: Path, sample_rate: int = MEL.sample_rate, mono: bool = True,
               warn: Callable[[str], None] | None = None) -> np.ndarray:
    """Read wav, flac, ogg or mp3 at any rate and channel count; return float32 at `sample_rate`.

    Mono audio is (samples,); with `mono=False` the result is (channels, samples). A file that
    cannot be decoded, holds NaN or infinite samples, or is inaudible raises AudioError; a WAV cut
    short is decoded as far as it goes and reported through `warn`.
    """
    path = Path(path)
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    if not path.is_file():
        raise AudioError(f"{path}: no such file")
    with _quiet_stderr():
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
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path}: the audio holds NaN or infinite samples (a damaged float file)")
    cut = wav_truncation(path)
    if cut is not None and warn is not None:
        warn(f"{path}: the file is cut short ({100 * cut[1] / cut[0]:.0f} % of its declared audio is there); "
             f"transcribing the {audio.shape[-1] / sr:.1f} s that are")
    if _inaudible(audio, sr):
        raise AudioError(f"{path}: the audio is silent or inaudible (peak below {INAUDIBLE_DBFS:.0f} dBFS "
                         "once DC is removed)")
    if sr != sample_rate:
        audio = librosa.resample(audio, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    if mono:
        return np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _inaudible(audio: np.ndarray, sr: int) -> bool:
    from scipy.signal import butter, sosfilt

    # DC and sub-audio rumble make no sound; a 20 Hz high-pass leaves what can be heard. Every 8th
    # sample is enough to see a peak, at an eighth of the cost on a long song.
    step = 8 if sr >= 16000 else 1
    heard = sosfilt(butter(2, 20.0, "highpass", fs=sr / step, output="sos"),
                    audio[..., ::step] - audio.mean(axis=-1, keepdims=True))
    return float(np.max(np.abs(heard))) < 10 ** (INAUDIBLE_DBFS / 20)


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
