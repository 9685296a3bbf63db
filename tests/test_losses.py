"""Eqs. 4-8: weighted cross-entropy, the gumbel-sigmoid sample, the language loss."""
from __future__ import annotations

import pytest
import torch

from tatumdrum.losses import gumbel_sigmoid, language_loss, total_loss, transcription_loss, weighted_cross_entropy


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
