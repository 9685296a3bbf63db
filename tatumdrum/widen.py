"""Net2WiderNet for the CRNN's encoder: more conv channels, the same function.

A trained (16, 32) network becomes a (32, 64) one that gives the same phi, so a wider network starts
where the narrow one ended instead of from scratch (Chen et al., "Net2Net", ICLR 2016). Each new channel
copies an old one (its kernel, bias and batch norm); the next layer's weights from a copied channel
are split between the copies. The split is random, not half and half: copies with equal outgoing
weights would receive equal gradients and never become different channels, while any split that sums
to one keeps the function exactly.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from .model import TatumCRNN


def channel_map(old: int, new: int, rng: np.random.Generator) -> np.ndarray:
    """g: new channel -> old channel; the first `old` channels are themselves, the rest copy random ones."""
    if new < old:
        raise ValueError(f"cannot widen {old} channels to {new}")
    return np.concatenate([np.arange(old), rng.integers(0, old, new - old)])


def split_shares(g: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per new channel, its share of the outgoing weights of the old channel it copies; shares sum to 1."""
    raw = rng.uniform(0.5, 1.5, len(g))
    totals = np.bincount(g, weights=raw)
    return raw / totals[g]


def _convs(net: TatumCRNN) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    layers = list(net.encoder.net)
    return [(m, layers[i + 1]) for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def widen_crnn(net: TatumCRNN, channels: tuple[int, ...], seed: int = 0) -> TatumCRNN:
    """A copy of `net` with `channels` conv channels per block, giving the same outputs in eval mode."""
    if len(channels) != len(net.cfg.channels):
        raise ValueError(f"cannot widen {len(net.cfg.channels)} conv blocks to {len(channels)}")
    rng = np.random.default_rng(seed)
    wide_cfg = copy.deepcopy(net.cfg)
    wide_cfg.channels = tuple(channels)
    wide = type(net)(wide_cfg)
    heads = {k: v for k, v in net.state_dict().items() if not k.startswith(("encoder.", "decoder."))}
    wide.load_state_dict(heads, strict=False)  # the output layers read the GRU, whose size is unchanged

    prev_g: np.ndarray | None = None
    prev_share: np.ndarray | None = None
    for (old_conv, old_bn), (new_conv, new_bn) in zip(_convs(net), _convs(wide)):
        g = channel_map(old_conv.out_channels, new_conv.out_channels, rng)
        weight = old_conv.weight[g]  # (new_out, old_in, 3, 3)
        if prev_g is not None:
            weight = weight[:, prev_g] * torch.as_tensor(prev_share, dtype=weight.dtype)[None, :, None, None]
        new_conv.weight.copy_(weight)
        new_conv.bias.copy_(old_conv.bias[g])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_bn, name).copy_(getattr(old_bn, name)[g])
        new_bn.num_batches_tracked.copy_(old_bn.num_batches_tracked)
        prev_g, prev_share = g, split_shares(g, rng)

    # The encoder flattens (channel, frequency) channel-major, so feature c * F + f feeds the GRU.
    n_freq = net.encoder.out_dim // net.cfg.channels[-1]
    cols = (prev_g[:, None] * n_freq + np.arange(n_freq)[None, :]).ravel()
    scale = torch.as_tensor(np.repeat(prev_share, n_freq), dtype=torch.float32)
    for name, tensor in net.decoder.state_dict().items():
        target = getattr(wide.decoder, name)
        if name.startswith("weight_ih_l0"):
            target.copy_(tensor[:, cols] * scale[None, :])
        else:
            target.copy_(tensor)
    return wide
