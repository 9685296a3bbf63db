"""The training objectives of section III-D (eqs. 4-8) and of the frame-level baseline (eq. 10).

Sums in the paper become means over the K x M (or K x T) cells here so the learning rate does not
depend on crop length; L_tran and L_lang are divided by the same count, so alpha keeps its meaning.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F


def weighted_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    """-mean(w * y * log(phi) + (1 - y) * log(1 - phi)), phi = sigmoid(logits).

    Eq. 4 with w = gamma (tatum level) and eq. 10 with w = beta (frame level); w may be a (K, 1)
    tensor, one weight per class. Computed from logits through logsigmoid so that phi near 0 or 1
    gives no infinities.
    """
    log_p = F.logsigmoid(logits)
    log_not_p = F.logsigmoid(-logits)
    return -(weight * target * log_p + (1.0 - target) * log_not_p).mean()


def transcription_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float | torch.Tensor) -> torch.Tensor:
    """L_tran, eq. 4."""
    return weighted_cross_entropy(logits, target, gamma)


def frame_loss(logits: torch.Tensor, target: torch.Tensor, beta: float = 8.0) -> torch.Tensor:
    """L_tran*, eq. 10 (baseline frame-level CRNN, beta = 8)."""
    return weighted_cross_entropy(logits, target, beta)


def gumbel_noise(shape: torch.Size, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
    """V = -log(-log(U)), U ~ Uniform(0, 1): eqs. 6-7."""
    u = torch.rand(shape, generator=generator, device=device).clamp(1e-9, 1.0 - 1e-9)
    return -torch.log(-torch.log(u))


def gumbel_sigmoid(x: torch.Tensor, tau: float = 0.2, generator: torch.Generator | None = None) -> torch.Tensor:
    """Eq. 8: Y = sigmoid((x + V1 - V2) / tau), a differentiable, nearly binary sample.

    The difference of two Gumbel variables is logistic noise, so P(Y > 1/2) = sigmoid(x): with x the
    logit of phi, the sample is 1 with probability phi. The paper writes phi itself in place of x;
    taken literally that confines P(Y > 1/2) to [0.5, 0.73] for any phi, which cannot be the intent of
    "binarising phi", so the trainer passes logits by default (see `--gumbel-input`).
    """
    v1 = gumbel_noise(x.shape, generator, x.device)
    v2 = gumbel_noise(x.shape, generator, x.device)
    return torch.sigmoid((x + v1 - v2) / tau)


def total_loss(l_tran: torch.Tensor, l_lang: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """L_total = L_tran + alpha * L_lang (eq. 5); without a language model it is L_tran."""
    return l_tran if l_lang is None else l_tran + alpha * l_lang


def language_loss(nll: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], logits: torch.Tensor,
                  bar_lengths: torch.Tensor, tau: float = 0.2, gumbel_input: str = "logit",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """L_lang(Y) of eq. 5 for a gumbel-sigmoid sample Y of the CRNN output, per K x M cell.

    `nll` is a frozen language model's eq. 2 (summed per sequence); gradients reach the CRNN through Y.
    """
    x = logits if gumbel_input == "logit" else torch.sigmoid(logits)
    y = gumbel_sigmoid(x, tau, generator)
    return nll(y, bar_lengths).sum() / logits.numel()


def velocity_loss(velocity_logits: torch.Tensor, velocity: torch.Tensor, onsets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the predicted velocity (sigmoid of the logits, velocity / 127) at the true onsets.

    Only struck cells count: a silent drum has no velocity. Binary cross-entropy with soft targets is
    minimised at the target itself, like a squared error, but keeps gradients alive near 0 and 1.
    """
    mask = onsets > 0.5
    if not bool(mask.any()):
        return velocity_logits.sum() * 0.0
    return F.binary_cross_entropy_with_logits(velocity_logits[mask], velocity[mask])
