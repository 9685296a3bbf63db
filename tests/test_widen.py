"""Widening a trained network (Net2WiderNet): the same phi on real audio, copies that learn apart, and
`train --init` from a narrower network starting where that network ended."""
from pathlib import Path

import numpy as np
import pytest
import torch

from tatumdrum.features import load_audio, log_mel
from tatumdrum.model import spans_tensor
from tatumdrum.training import TrainConfig, train
from tatumdrum.weights import load_model
from tatumdrum.widen import widen_crnn

ROOT = Path(__file__).resolve().parents[1]
NARROW = ROOT / "models" / "table2" / "v24_crnn_bigram.pt"


def _groove_input() -> tuple[torch.Tensor, list[torch.Tensor]]:
    mel = log_mel(load_audio(ROOT / "examples" / "groove.wav"))
    tatums = np.arange(0.1, mel.shape[0] / 100 - 0.2, 0.125)  # a 16th grid at 120 bpm
    return torch.from_numpy(mel[None].astype(np.float32)), [spans_tensor(tatums, 100.0, mel.shape[0])]


def test_a_widened_network_gives_the_same_phi_on_real_audio():
    narrow = load_model(NARROW).net.eval()
    wide = widen_crnn(narrow, (32, 64), seed=3).eval()
    assert wide.cfg.channels == (32, 64) and wide.encoder.out_dim == 2 * narrow.encoder.out_dim
    assert sum(p.numel() for p in wide.parameters()) > sum(p.numel() for p in narrow.parameters())
    mel, spans = _groove_input()
    with torch.no_grad():
        before, after = torch.sigmoid(narrow(mel, spans)), torch.sigmoid(wide(mel, spans))
    assert before.shape == after.shape and float(before.max()) > 0.5  # the groove is heard
    assert float((before - after).abs().max()) < 1e-4


def test_copied_channels_get_different_gradients_so_they_learn_apart():
    wide = widen_crnn(load_model(NARROW).net, (32, 64), seed=0)
    mel, spans = _groove_input()
    wide.train()
    torch.sigmoid(wide(mel, spans)).sum().backward()
    grad = wide.encoder.net[0].weight.grad  # (32, 1, 3, 3): channels 16.. copy some of 0..15
    wide_first = wide.encoder.net[0].weight
    for j in range(16, 32):
        source = next(i for i in range(16) if torch.equal(wide_first[i], wide_first[j]))
        assert not torch.allclose(grad[j], grad[source])


def test_widening_refuses_fewer_channels():
    with pytest.raises(ValueError, match="cannot widen"):
        widen_crnn(load_model(NARROW).net, (8, 32))


def test_training_from_a_narrower_network_starts_where_it_ended(tiny_dataset, tmp_path):
    narrow = tmp_path / "narrow.pt"
    base = dict(data=str(tiny_dataset), steps_per_epoch=20, batch_size=4, crop_tatums=32, gru_hidden=16,
                lr=3e-3, keep_last=True)
    ended = train(TrainConfig(out=str(narrow), epochs=2, channels=(8, 8), **base))["history"][-1]["l_tran"]
    torch.manual_seed(0)
    widened = train(TrainConfig(out=str(tmp_path / "wide.pt"), epochs=1, channels=(16, 16),
                                init=str(narrow), **base))
    torch.manual_seed(0)
    scratch = train(TrainConfig(out=str(tmp_path / "scratch.pt"), epochs=1, channels=(16, 16), **base))
    assert load_model(tmp_path / "wide.pt").net.cfg.channels == (16, 16)
    first = widened["history"][0]["l_tran"]
    assert first < scratch["history"][0]["l_tran"] and first < 1.5 * ended
