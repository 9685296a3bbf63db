"""Audio loading and the log-mel spectrogram of section IV-A."""
from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import scipy.fft
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
                import librosa

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
        import soxr

        # soxr's HQ quality is what librosa's res_type="soxr_hq" used.
        audio = soxr.resample(audio.T, sr, sample_rate, quality="HQ").T
    if mono:
        return np.ascontiguousarray(audio.mean(axis=0), dtype=np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


def _inaudible(audio: np.ndarray, sr: int) -> bool:
    """Peak below INAUDIBLE_DBFS once DC and sub-audio rumble are gone: they make no sound.

    Subtracting a 50 ms moving average is a high-pass whose first null is at 20 Hz; it needs no
    filter design (importing scipy.signal alone took 0.6 s of every transcription). Every 8th
    sample is enough to see a peak, at an eighth of the cost on a long song.
    """
    step = 8 if sr >= 16000 else 1
    x = np.asarray(audio[..., ::step], dtype=np.float64)
    width = max(1, int(round(sr / step / 20.0)))
    if x.shape[-1] <= width:
        heard = x - x.mean(axis=-1, keepdims=True)
    else:
        c = np.cumsum(np.pad(x, [(0, 0)] * (x.ndim - 1) + [(1, 0)]), axis=-1)
        average = (c[..., width:] - c[..., :-width]) / width
        heard = x[..., width // 2:width // 2 + average.shape[-1]] - average
    return float(np.max(np.abs(heard))) < 10 ** (INAUDIBLE_DBFS / 20)


_FILTERBANKS: dict[MelParams, np.ndarray] = {}


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=float)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(hz >= min_log_hz, min_log_mel + np.log(np.maximum(hz, 1e-10) / min_log_hz) / logstep, hz / f_sp)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=float)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel, logstep = min_log_hz / f_sp, np.log(6.4) / 27.0
    return np.where(mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel)


def mel_filterbank(params: MelParams = MEL) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters on Slaney's mel scale with Slaney area normalisation:
    the same matrix as librosa.filters.mel's defaults, computed here so that transcription does not
    load librosa (seconds of start-up for its first call)."""
    if params not in _FILTERBANKS:
        fft_freqs = np.fft.rfftfreq(params.n_fft, 1.0 / params.sample_rate)
        mel_f = _mel_to_hz(np.linspace(_hz_to_mel(params.fmin), _hz_to_mel(params.fmax), params.n_mels + 2))
        fdiff = np.diff(mel_f)
        ramps = mel_f[:, None] - fft_freqs[None, :]
        lower = -ramps[:-2] / fdiff[:-1, None]
        upper = ramps[2:] / fdiff[1:, None]
        weights = np.maximum(0.0, np.minimum(lower, upper))
        weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
        _FILTERBANKS[params] = weights.astype(np.float32)
    return _FILTERBANKS[params]


_WINDOWS: dict[int, np.ndarray] = {}


def _hann(n: int) -> np.ndarray:
    """The periodic Hann window (scipy's and librosa's `hann` for spectral analysis)."""
    if n not in _WINDOWS:
        _WINDOWS[n] = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)
    return _WINDOWS[n]


def framed_magnitudes(audio: np.ndarray, n_fft: int, hop_length: int, window: np.ndarray, n_frames: int | None = None,
                      chunk_frames: int = 4096) -> Iterator[tuple[int, np.ndarray]]:
    """|STFT| of centred frames (frame t centred on sample t * hop, zeros beyond the ends), chunk by chunk.

    Yields (first frame, magnitudes of up to `chunk_frames` frames, n_fft // 2 + 1 bins), so that memory
    stays bounded on long songs. scipy's FFT keeps float32 in single precision (numpy's works in
    float64, 5x slower here).
    """
    x = np.asarray(audio, dtype=np.float32)
    pad = n_fft // 2
    x = np.pad(x, (pad, pad))
    available = 1 + (len(x) - n_fft) // hop_length
    n_frames = available if n_frames is None else min(n_frames, available)
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop_length][:n_frames]
    for start in range(0, n_frames, chunk_frames):
        yield start, np.abs(scipy.fft.rfft(frames[start:start + chunk_frames] * window, axis=1))


def log_mel(audio: np.ndarray, params: MelParams = MEL, chunk_frames: int = 4096) -> np.ndarray:
    """Log-compressed magnitude mel spectrogram, (frames, n_mels), one frame per hop, frame t centred at t * hop.

    log(1 + mel) keeps silence at zero and compresses loud drums, which matters because
    training audio and user audio differ widely in level. The STFT (Hann window, centred frames
    with zero padding) equals librosa.stft's.
    """
    bank = mel_filterbank(params)
    n_frames = 1 + len(audio) // params.hop_length
    out = np.empty((n_frames, params.n_mels), dtype=np.float32)
    for start, spectrum in framed_magnitudes(audio, params.n_fft, params.hop_length, _hann(params.n_fft),
                                             n_frames, chunk_frames):
        out[start:start + len(spectrum)] = spectrum @ bank.T
    return np.log1p(out)
