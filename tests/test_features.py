"""The log-mel spectrogram: the paper's parameters, a click in its frame, librosa's values."""
from __future__ import annotations

import numpy as np
import pytest

from tatumdrum.features import MEL, log_mel, mel_filterbank


def test_mel_parameters_are_the_papers():
    assert (MEL.sample_rate, MEL.n_fft, MEL.hop_length, MEL.n_mels, MEL.fmin, MEL.fmax) == (44100, 2048, 441, 80, 20.0, 20000.0)
    assert MEL.fps == pytest.approx(100.0)
    fb = mel_filterbank()
    assert fb.shape == (80, 1025)
    freqs = np.linspace(0, 22050, 1025)
    assert freqs[np.flatnonzero(fb.sum(0))[0]] <= 40 and freqs[np.flatnonzero(fb.sum(0))[-1]] <= 20050
    spec = log_mel(np.zeros(44100, dtype=np.float32))
    assert spec.shape == (101, 80) and np.all(spec == 0)


def test_log_mel_puts_a_click_in_its_frame():
    x = np.zeros(44100, dtype=np.float32)
    x[int(0.5 * 44100)] = 1.0
    spec = log_mel(x)
    assert abs(int(np.argmax(spec.sum(1))) - 50) <= 1


def test_log_mel_equals_librosa_without_loading_it():
    """The transcription path computes its own STFT and Slaney mel filterbank (no librosa start-up);
    they must equal librosa's, which the training data and the bundled models were made with."""
    import librosa

    from tatumdrum.features import MEL, log_mel, mel_filterbank

    rng = np.random.default_rng(0)
    audio = (0.3 * rng.standard_normal(3 * MEL.sample_rate + 123)).astype(np.float32)
    bank = librosa.filters.mel(sr=MEL.sample_rate, n_fft=MEL.n_fft, n_mels=MEL.n_mels, fmin=MEL.fmin, fmax=MEL.fmax)
    np.testing.assert_allclose(mel_filterbank(), bank, atol=1e-7)
    spec = np.abs(librosa.stft(audio, n_fft=MEL.n_fft, hop_length=MEL.hop_length, window="hann", center=True))
    np.testing.assert_allclose(log_mel(audio, chunk_frames=50), np.log1p(bank @ spec).T, atol=1e-5)
