"""Drum-score language models (section III-C): counts, bar lengths, soft inputs, training, I/O."""
from __future__ import annotations

import math
import numpy as np
import pytest
import torch
from tatumdrum.lm import (DrumLanguageModel, GruLM, MarginalLM, SkipBigram, collate_scores,
                          load_language_model, perplexity, score_arrays)
from tatumdrum.lm_training import load_scores, train_bigram, train_gru, train_marginal
from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid

torch.set_num_threads(1)


def tiled_score(bar: np.ndarray, n_bars: int, beats_per_bar: int, tatums_per_beat: int = 4) -> DrumScore:
    """A score that repeats `bar` (K x tatums) n_bars times on a regular grid of the given metre."""
    grid = BeatGrid.regular(120.0, n_bars * beats_per_bar, beats_per_bar)
    return DrumScore(grid, tatums_per_beat, np.tile(bar, (1, n_bars)))


def random_score(rng: np.random.Generator, n_beats: int = 256, p: float = 0.5) -> DrumScore:
    grid = BeatGrid.regular(120.0, n_beats, 4)
    return DrumScore(grid, 4, rng.random((3, n_beats * 4)) < p)


ROCK_BAR = np.array([
    [1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0],  # BD
    [0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1],  # SD
    [1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 1],  # HH
], dtype=bool)


def test_bigram_counts_on_repeating_bar() -> None:
    score = tiled_score(ROCK_BAR, 32, 4)
    model = train_bigram([score])
    pi = model.pi
    assert pi.shape == (3, 2, 2)
    assert torch.all(pi[:, 1, 1] > 0.95) and torch.all(pi[:, 0, 0] > 0.95)
    # Add-one smoothing: the never-seen 0 -> 1 transition of the BD is 1 / (count(A=0) + 2).
    n_zero_bd = int((~ROCK_BAR[0]).sum()) * 31
    assert pi[0, 0, 1].item() == pytest.approx(1.0 / (n_zero_bd + 2))
    assert perplexity(model, [score]) < 1.15


def test_bigram_on_random_scores_is_near_chance() -> None:
    rng = np.random.default_rng(0)
    model = train_bigram([random_score(rng) for _ in range(4)])
    assert torch.allclose(model.pi, torch.full((3, 2, 2), 0.5), atol=0.03)
    assert perplexity(model, [random_score(rng)]) == pytest.approx(2.0, abs=0.02)


def test_bigram_skips_the_bar_length_of_the_score() -> None:
    # A 12-tatum pattern tiled in 3/4: one bar back (12 tatums) always repeats, 16 back does not.
    rng = np.random.default_rng(1)
    bar = rng.random((3, 12)) < 0.5
    bar[:, 0], bar[:, 1] = True, False  # both states in every row
    waltz = tiled_score(bar, 40, 3)
    assert set(waltz.bar_tatum_lengths().tolist()) == {12}
    model = train_bigram([waltz])
    assert torch.all(model.pi[:, 1, 1] > 0.95) and torch.all(model.pi[:, 0, 0] > 0.95)
    assert perplexity(model, [waltz]) < 1.15
    # The same onsets read as 16-tatum bars: a hard-coded skip of 16 would see no repetition.
    as_16 = (waltz.onsets, np.full(waltz.n_tatums, 16))
    assert perplexity(train_bigram([as_16]), [as_16]) > 1.6


def test_bigram_uses_marginal_before_the_first_bar() -> None:
    model = train_bigram([tiled_score(ROCK_BAR, 8, 4)])
    y, bar_lengths, _ = collate_scores([tiled_score(ROCK_BAR, 2, 4)])
    p = model.onset_probabilities(y, bar_lengths)[0]
    marginal = model.log_marginal.exp()[:, 1]
    assert torch.allclose(p[:, :16], marginal[:, None].expand(3, 16))
    # From the second bar on, p follows the drum's state a bar earlier.
    assert torch.all((p[:, 16:] > 0.5) == torch.from_numpy(ROCK_BAR))


@pytest.mark.parametrize("make", [lambda: train_bigram([tiled_score(ROCK_BAR, 8, 4)]),
                                  lambda: GruLM(hidden_size=16, num_layers=2),
                                  lambda: train_marginal([tiled_score(ROCK_BAR, 8, 4)])])
def test_nll_is_differentiable_for_soft_scores(make) -> None:
    torch.manual_seed(0)
    model = make().frozen()
    logits = torch.randn(2, 3, 48, requires_grad=True)
    # A gumbel-sigmoid sample (eq. 6-8, tau = 0.2) of phi = sigmoid(logits).
    u1, u2 = torch.rand(2, 3, 48), torch.rand(2, 3, 48)
    v1, v2 = -torch.log(-torch.log(u1)), -torch.log(-torch.log(u2))
    y = torch.sigmoid((torch.sigmoid(logits) + v1 - v2) / 0.2)
    nll = model.nll(y, torch.full((2, 48), 16))
    assert nll.shape == (2,) and torch.all(torch.isfinite(nll))
    nll.sum().backward()
    assert torch.all(torch.isfinite(logits.grad)) and logits.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())


def test_soft_nll_matches_hard_nll_on_binary_values() -> None:
    model = train_bigram([tiled_score(ROCK_BAR, 8, 4)])
    y, bar_lengths, _ = collate_scores([tiled_score(ROCK_BAR, 3, 4)])
    hard = model.nll(y.bool(), bar_lengths)
    assert torch.allclose(model.nll(y.float(), bar_lengths), hard)
    # The bigram's soft NLL depends on the soft state a bar earlier, not only on the target.
    y_soft = y.clone().requires_grad_(True)
    model.nll(y_soft, bar_lengths).sum().backward()
    assert y_soft.grad[:, :, :16].abs().sum() > 0


def test_padding_mask_does_not_change_nll() -> None:
    model = GruLM(hidden_size=16, num_layers=2).eval()
    scores = [tiled_score(ROCK_BAR, 2, 4), tiled_score(ROCK_BAR, 5, 4)]
    y, bar_lengths, mask = collate_scores(scores)
    batched = model.nll(y, bar_lengths, mask)
    for i, s in enumerate(scores):
        yi, bi, _ = collate_scores([s])
        assert batched[i].item() == pytest.approx(model.nll(yi, bi).item(), rel=1e-5)


def test_gru_learns_a_repeating_pattern() -> None:
    # 20 epochs of 4 batches: 80 small steps, a few seconds on one CPU thread.
    scores = [tiled_score(ROCK_BAR, 16, 4) for _ in range(4)]
    model = train_gru(scores, scores[:1], epochs=20, batch_size=8, seq_len=64, lr=1e-2)
    assert perplexity(model, scores[:1]) < 1.3
    history = model.training_info["history"]
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_gru_checkpoint_resume(tmp_path) -> None:
    scores = [tiled_score(ROCK_BAR, 8, 4) for _ in range(2)]
    kwargs = dict(batch_size=4, seq_len=32, hidden_size=8, num_layers=1, seed=3)
    ckpt = tmp_path / "gru.ckpt"
    train_gru(scores, scores[:1], epochs=1, checkpoint=ckpt, **kwargs)
    resumed = train_gru(scores, scores[:1], epochs=2, checkpoint=ckpt, resume=True, **kwargs)
    straight = train_gru(scores, scores[:1], epochs=2, **kwargs)
    assert [h["epoch"] for h in resumed.training_info["history"]] == [0, 1]
    y, bar_lengths, _ = collate_scores(scores[:1])
    assert resumed.nll(y, bar_lengths).item() == pytest.approx(straight.nll(y, bar_lengths).item(), rel=1e-5)


@pytest.mark.parametrize("make", [lambda: train_bigram([tiled_score(ROCK_BAR, 8, 4)]),
                                  lambda: GruLM(hidden_size=16, num_layers=2),
                                  lambda: train_marginal([tiled_score(ROCK_BAR, 8, 4)])])
def test_save_load_round_trip(tmp_path, make) -> None:
    model = make().eval()
    model.training_info["note"] = "test"
    path = tmp_path / "lm.pt"
    model.save(path)
    loaded = load_language_model(path)
    assert type(loaded) is type(model)
    assert loaded.instrument_abbrevs == ("BD", "SD", "HH")
    assert loaded.training_info["note"] == "test"
    y = torch.rand(2, 3, 40)
    bar_lengths = torch.full((2, 40), 16)
    assert torch.equal(loaded.nll(y, bar_lengths), model.nll(y, bar_lengths))


def test_load_checks_the_kind(tmp_path) -> None:
    path = tmp_path / "gru.pt"
    GruLM(hidden_size=8, num_layers=1).save(path)
    assert isinstance(DrumLanguageModel.load(path), GruLM)
    with pytest.raises(ValueError):
        SkipBigram.load(path)


def test_uniform_model_has_chance_perplexity_two() -> None:
    rng = np.random.default_rng(2)
    scores = [random_score(rng, n_beats=64) for _ in range(3)]
    # Exactly 2 up to float32 rounding of log(0.5).
    assert perplexity(MarginalLM(), scores) == pytest.approx(2.0, abs=1e-5)
    assert perplexity(SkipBigram(), scores) == pytest.approx(2.0, abs=1e-5)
    # A fitted no-context model cannot beat chance on fair coin flips either.
    assert perplexity(train_marginal(scores), scores) == pytest.approx(2.0, abs=0.01)


def test_perplexity_rejects_scores_with_other_drums() -> None:
    model = MarginalLM(("BD", "HH", "SD"))
    with pytest.raises(ValueError):
        perplexity(model, [tiled_score(ROCK_BAR, 2, 4)])


def test_load_scores_from_a_midi_folder(tmp_path) -> None:
    pretty_midi = pytest.importorskip("pretty_midi")
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for beat in range(8):
        t = beat * 0.5
        drums.notes.append(pretty_midi.Note(100, 36 if beat % 2 == 0 else 38, t, t + 0.1))
        drums.notes.append(pretty_midi.Note(80, 42, t, t + 0.1))
    pm.instruments.append(drums)
    (tmp_path / "sub").mkdir()
    pm.write(str(tmp_path / "sub" / "groove.mid"))
    scores = load_scores(tmp_path)
    assert len(scores) == 1
    onsets, bar_lengths = score_arrays(scores[0])
    assert onsets[2, ::4].sum() >= 7 and set(bar_lengths.tolist()) == {16}
    assert math.isfinite(perplexity(train_bigram(scores), scores))
