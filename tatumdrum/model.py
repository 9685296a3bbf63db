"""The frame-to-tatum CRNN of Fig. 2, and the frame-level CRNN baseline of section IV-D.

Encoder: 4 conv layers of 3x3 over the log-mel spectrogram (frame level, Vogl et al. style blocks
with batch norm and frequency-only pooling so time resolution stays at 10 ms).
Tatum pooling: eq. 1, a max over the frames between neighbouring tatum midpoints.
Decoder: 3 GRU layers of 98 units, dropout 0.3, a fully connected layer and a sigmoid.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from .tatums import tatum_frame_spans


@dataclass
class CRNNConfig:
    n_mels: int = 80
    n_instruments: int = 3
    channels: tuple[int, int] = (12, 24)  # per conv block; each block is two 3x3 convs
    freq_pool: int = 3
    gru_hidden: int = 98
    gru_layers: int = 3
    # The paper does not say; offline transcription can look ahead, so both directions are used.
    bidirectional: bool = True
    dropout: float = 0.3
    # A second head regresses each onset's velocity (v2 models); v1 files have no such key.
    velocity: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CRNNConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


class ConvEncoder(nn.Module):
    """Log-mel (B, T, F) to frame features (B, T, D); only 3x3 convs, so each frame sees +-4 frames."""

    receptive_radius = 4  # frames on each side: four 3x3 layers

    def __init__(self, cfg: CRNNConfig):
        super().__init__()
        layers: list[nn.Module] = []
        in_ch, n_freq = 1, cfg.n_mels
        for out_ch in cfg.channels:
            for _ in range(2):
                layers += [nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU()]
                in_ch = out_ch
            layers.append(nn.MaxPool2d((1, cfg.freq_pool)))
            n_freq //= cfg.freq_pool
        self.net = nn.Sequential(*layers)
        self.out_dim = in_ch * n_freq
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")  # He et al. [39]
                nn.init.zeros_(m.bias)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        x = self.net(mel.unsqueeze(1))  # (B, C, T, F')
        b, c, t, f = x.shape
        return x.permute(0, 2, 1, 3).reshape(b, t, c * f)


def tatum_max_pool(frames: torch.Tensor, spans: torch.Tensor) -> torch.Tensor:
    """Eq. 1: G[:, m] = max over frames t in [spans[m, 0], spans[m, 1]) of F[:, t].

    frames: (T, D) for one piece; spans: (M, 2) long, each span non-empty. Returns (M, D).
    Written as a padded gather so it runs as a few tensor ops, not a Python loop over tatums.
    """
    lengths = spans[:, 1] - spans[:, 0]
    width = int(lengths.max())
    offsets = torch.arange(width, device=frames.device)
    idx = spans[:, :1] + offsets[None, :]  # (M, W)
    valid = offsets[None, :] < lengths[:, None]
    idx = torch.where(valid, idx, spans[:, :1]).clamp(max=frames.shape[0] - 1)
    gathered = frames[idx]  # (M, W, D)
    gathered = gathered.masked_fill(~valid[..., None], float("-inf"))
    return gathered.max(dim=1).values


class _CRNN(nn.Module):
    """Encoder plus a GRU decoder, a dropout and a fully connected layer to K logits per step."""

    def __init__(self, cfg: CRNNConfig | None = None):
        super().__init__()
        self.cfg = cfg or CRNNConfig()
        self.encoder = ConvEncoder(self.cfg)
        self.decoder = nn.GRU(self.encoder.out_dim, self.cfg.gru_hidden, num_layers=self.cfg.gru_layers,
                              batch_first=True, bidirectional=self.cfg.bidirectional,
                              dropout=self.cfg.dropout if self.cfg.gru_layers > 1 else 0.0)
        out = self.cfg.gru_hidden * (2 if self.cfg.bidirectional else 1)
        self.dropout = nn.Dropout(self.cfg.dropout)
        self.fc = nn.Linear(out, self.cfg.n_instruments)
        nn.init.zeros_(self.fc.bias)
        self.velocity_fc = nn.Linear(out, self.cfg.n_instruments) if self.cfg.velocity else None

    def decode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, steps, D) features to (B, K, steps) onset logits and velocity logits (None without that head)."""
        h, _ = self.decoder(features)
        h = self.dropout(h)
        velocity = self.velocity_fc(h).transpose(1, 2) if self.velocity_fc is not None else None
        return self.fc(h).transpose(1, 2), velocity

    def decode_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, steps, D) features to (B, K, steps) logits: steps are tatums or frames."""
        return self.decode(features)[0]


class TatumCRNN(_CRNN):
    """Frame-level encoder, eq. 1 tatum pooling, tatum-level GRU decoder; outputs phi (B, K, M)."""

    def pool(self, frames: torch.Tensor, spans: list[torch.Tensor]) -> torch.Tensor:
        """Pool each piece of the batch to its own tatums; pad to the longest with zeros."""
        pooled = [tatum_max_pool(f, s) for f, s in zip(frames, spans)]
        return nn.utils.rnn.pad_sequence(pooled, batch_first=True)

    def forward(self, mel: torch.Tensor, spans: list[torch.Tensor]) -> torch.Tensor:
        """Logits of phi, (B, K, M). Apply a sigmoid for probabilities."""
        return self.decode_logits(self.pool(self.encoder(mel), spans))

    def forward_with_velocity(self, mel: torch.Tensor, spans: list[torch.Tensor]
                              ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits of phi and of the velocity (velocity / 127 after a sigmoid), each (B, K, M)."""
        return self.decode(self.pool(self.encoder(mel), spans))


class FrameCRNN(_CRNN):
    """Vogl et al.'s frame-level CRNN (the baseline): the same encoder, a frame-level GRU, (B, K, T) logits."""

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.decode_logits(self.encoder(mel))


class EnsembleEncoder(nn.Module):
    """The members' encoders side by side: their frame features concatenated, (B, T, sum of D)."""

    def __init__(self, encoders: list[ConvEncoder]):
        super().__init__()
        self.parts = nn.ModuleList(encoders)
        self.receptive_radius = max(e.receptive_radius for e in encoders)
        self.out_dims = [e.out_dim for e in encoders]
        self.out_dim = sum(self.out_dims)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return torch.cat([e(mel) for e in self.parts], dim=-1)


class TatumEnsemble(nn.Module):
    """Several tatum CRNNs heard as one: phi (and the velocity) is the mean of the members' sigmoids.

    Eq. 1 is a max per feature, so pooling the members' concatenated frames pools each member's own:
    the ensemble has the encoder / pool / decode interface of one `TatumCRNN`, and inference needs no
    second path. Its logits are those of the mean probability.
    """

    def __init__(self, members: list[TatumCRNN]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two networks")
        if len({m.cfg.n_instruments for m in members}) > 1:
            raise ValueError("the networks of an ensemble must have the same drum classes")
        self.members = nn.ModuleList(members)
        self.cfg = members[0].cfg
        self.encoder = EnsembleEncoder([m.encoder for m in members])

    pool = TatumCRNN.pool

    def decode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        outputs = [m.decode(f) for m, f in zip(self.members, features.split(self.encoder.out_dims, dim=-1))]
        phi = torch.stack([torch.sigmoid(logits) for logits, _ in outputs]).mean(0)
        velocities = [torch.sigmoid(v) for _, v in outputs if v is not None]
        velocity = torch.logit(torch.stack(velocities).mean(0), eps=1e-6) if velocities else None
        return torch.logit(phi, eps=1e-6), velocity

    def decode_logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.decode(features)[0]

    def forward(self, mel: torch.Tensor, spans: list[torch.Tensor]) -> torch.Tensor:
        return self.decode_logits(self.pool(self.encoder(mel), spans))


def encode_in_chunks(encoder: ConvEncoder, mel: torch.Tensor, chunk_frames: int = 6000) -> torch.Tensor:
    """Run the encoder over a long (T, F) spectrogram in overlapping chunks; exact, with no seams
    (runtime.encode_in_chunks, which the ONNX runtime shares)."""
    from .runtime import encode_in_chunks as chunked

    return chunked(lambda x: encoder(x[None])[0], mel, encoder.receptive_radius, torch.cat, chunk_frames)


def spans_tensor(tatum_times: np.ndarray, fps: float, n_frames: int) -> torch.Tensor:
    return torch.from_numpy(tatum_frame_spans(tatum_times, fps, n_frames)).long()
