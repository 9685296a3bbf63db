"""Model files: a network with a velocity head survives saving and loading."""
from __future__ import annotations

import torch

from tatumdrum.decisions import DecisionPolicy
from tatumdrum.instruments import SEVEN_CLASSES
from tatumdrum.model import CRNNConfig, TatumCRNN
from tatumdrum.weights import TrainedModel, load_model


def test_velocity_head_round_trips_through_a_model_file(tmp_path):
    net = TatumCRNN(CRNNConfig(n_instruments=7, velocity=True))
    path = tmp_path / "v.pt"
    TrainedModel(net, "tatum", SEVEN_CLASSES, DecisionPolicy.uniform(SEVEN_CLASSES, 0.2)).save(path)
    model = load_model(path)
    assert model.instruments == SEVEN_CLASSES and model.net.velocity_fc is not None
    mel = torch.zeros(1, 300, 80)
    spans = [torch.tensor([[i * 10, i * 10 + 10] for i in range(30)])]
    logits, velocity = model.net.forward_with_velocity(mel, spans)
    assert logits.shape == velocity.shape == (1, 7, 30)
