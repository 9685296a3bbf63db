"""Eq. 1 pooling, tatum interpolation, mel parameters, eqs. 4-8 and 10, and the 50 ms metric."""
import numpy as np
import pytest
import torch

from tatumdrum.features import MEL, log_mel, mel_filterbank
from tatumdrum.losses import gumbel_sigmoid, language_loss, total_loss, transcription_loss, weighted_cross_entropy
from tatumdrum.metrics import match_onsets, score_onsets
from tatumdrum.model import ConvEncoder, CRNNConfig, TatumCRNN, encode_in_chunks, tatum_max_pool
from tatumdrum.peaks import pick_peaks
from tatumdrum.score import DrumScore
from tatumdrum.tatums import (BeatGrid, extend_beats, interpolate_tatums, quantize_to_tatums, tatum_boundaries,
                              tatum_frame_spans)


def test_interpolate_tatums_splits_each_beat_evenly_and_extends_the_last():
    beats = np.array([1.0, 2.0, 2.5])
    t = interpolate_tatums(beats, 4)
    np.testing.assert_allclose(t, [1.0, 1.25, 1.5, 1.75, 2.0, 2.125, 2.25, 2.375, 2.5, 2.625, 2.75, 2.875])
    np.testing.assert_allclose(interpolate_tatums(beats, 3)[:3], [1.0, 1 + 1 / 3, 1 + 2 / 3])


def test_tatum_boundaries_follow_eq1_edges():
    b = tatum_boundaries(np.array([0.0, 1.0, 3.0]))
    # b_0 = b_1 and b_{M+1} = b_M: the first span starts at the first tatum, the last ends at the last.
    np.testing.assert_allclose(b, [0.0, 0.5, 2.0, 3.0])


def test_tatum_max_pool_matches_hand_computed_eq1():
    frames = torch.tensor([[1.0, 0.0], [5.0, 1.0], [2.0, 7.0], [0.0, 3.0], [4.0, 4.0], [9.0, 2.0]])
    # tatums at frames 0, 2 and 5 (fps = 1): boundaries 0, 1, 3.5, 5 -> spans [0,1), [1,4), [4,6)
    spans = torch.from_numpy(tatum_frame_spans(np.array([0.0, 2.0, 5.0]), fps=1.0, n_frames=6)).long()
    assert spans.tolist() == [[0, 1], [1, 4], [4, 6]]
    g = tatum_max_pool(frames, spans)
    assert g.tolist() == [[1.0, 0.0], [5.0, 7.0], [9.0, 4.0]]


def test_spans_never_empty_at_fast_tempo():
    tatums = np.array([0.100, 0.103, 0.106, 0.109])
    spans = tatum_frame_spans(tatums, fps=100.0, n_frames=50)
    assert np.all(spans[:, 1] > spans[:, 0])


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


def test_extend_beats_covers_the_audio_and_continues_the_metre():
    grid = BeatGrid(np.array([1.0, 1.5, 2.0, 2.5]), np.array([1, 2, 3, 4]))
    ext = extend_beats(grid, 4.0)
    assert ext.times[0] == pytest.approx(0.0) and ext.times[-1] == pytest.approx(4.0)
    assert ext.positions[:3].tolist() == [3, 4, 1]


def test_quantize_to_nearest_tatum():
    tatums = np.array([0.0, 0.1, 0.2, 0.3])
    assert quantize_to_tatums(np.array([-0.5, 0.04, 0.06, 0.29, 5.0]), tatums).tolist() == [0, 0, 1, 3, 3]


def test_weighted_cross_entropy_is_eq4():
    logits = torch.tensor([[0.3, -1.2, 2.0]])
    y = torch.tensor([[1.0, 0.0, 1.0]])
    phi = torch.sigmoid(logits)
    manual = -(0.46 * y * torch.log(phi) + (1 - y) * torch.log(1 - phi)).mean()
    assert transcription_loss(logits, y, 0.46).item() == pytest.approx(manual.item(), rel=1e-6)
    assert weighted_cross_entropy(torch.tensor([100.0]), torch.tensor([1.0]), 8.0).item() == pytest.approx(0.0, abs=1e-6)


def test_gumbel_sigmoid_samples_phi_with_logit_input():
    g = torch.Generator().manual_seed(0)
    phi = torch.full((20000,), 0.8)
    y = gumbel_sigmoid(torch.logit(phi), tau=0.2, generator=g)
    assert ((y > 0.5).float().mean().item()) == pytest.approx(0.8, abs=0.02)
    # Nearly binary at tau = 0.2.
    assert ((y < 0.1) | (y > 0.9)).float().mean().item() > 0.8


def test_language_loss_is_differentiable_and_total_adds_alpha():
    logits = torch.zeros(2, 3, 16, requires_grad=True)
    nll = lambda y, bars: -(torch.log(torch.tensor(0.9)) * y + torch.log(torch.tensor(0.1)) * (1 - y)).sum(dim=(1, 2))
    l_lang = language_loss(nll, logits, torch.full((2, 16), 16), generator=torch.Generator().manual_seed(1))
    l_lang.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    assert total_loss(torch.tensor(1.0), torch.tensor(2.0), 0.5).item() == 2.0
    assert total_loss(torch.tensor(1.0), None, 0.5).item() == 1.0


def test_pick_peaks_follows_eq10_rules():
    act = np.array([0, 0, 0.9, 0.5, 0.1, 0.8, 0.0, 0.0, 0.1, 0.15, 0, 0, 0.6, 0.7, 0])
    # 2: peak. 5: within w5 = 2 frames? 5 - 2 = 3 > 2 -> kept. 9: below mean + 0.2. 12 then 13: 13 is a new
    # max but only one frame after 12, so rule 3 drops it.
    assert pick_peaks(act).tolist() == [2, 5, 12]


def test_match_onsets_uses_50ms_one_to_one():
    c = match_onsets(np.array([1.0, 2.0, 3.0]), np.array([1.04, 2.06, 3.0, 3.01]))
    assert (c.correct, c.estimated, c.reference) == (2, 4, 3)
    s = score_onsets({"BD": np.array([1.0]), "SD": np.array([2.0])}, {"BD": np.array([1.0])})
    assert s["all"].correct == 1 and s["all"].recall == 0.5 and s["all"].precision == 1.0


def test_encoder_in_chunks_equals_one_pass():
    torch.manual_seed(0)
    enc = ConvEncoder(CRNNConfig()).eval()
    mel = torch.rand(1000, 80)
    with torch.no_grad():
        whole = enc(mel[None])[0]
        chunked = encode_in_chunks(enc, mel, chunk_frames=137)
    torch.testing.assert_close(whole, chunked, rtol=1e-4, atol=1e-5)


def test_crnn_outputs_one_probability_per_drum_and_tatum():
    net = TatumCRNN(CRNNConfig(n_instruments=4)).eval()
    mel = torch.rand(2, 300, 80)
    tatums = np.arange(0.1, 2.9, 0.125)
    spans = [torch.from_numpy(tatum_frame_spans(tatums, 100.0, 300)).long()] * 2
    assert net(mel, spans).shape == (2, 4, len(tatums))


def test_bar_lengths_come_from_the_bar_structure():
    # A 3/4 piece with a one-beat pickup: every tatum's skip is 12, never 16.
    grid = BeatGrid(np.arange(10) * 0.5, np.array([3, 1, 2, 3, 1, 2, 3, 1, 2, 3]))
    score = DrumScore(grid, 4, np.zeros((3, 40), bool))
    assert set(score.bar_tatum_lengths().tolist()) == {12}


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
