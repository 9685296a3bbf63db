"""Drum-score language models (section III-C): p(Y) for a K x M tatum-level score.

Every model here returns eq. 2, the negative log-likelihood -sum_m log p(Y[:, m] | Y[:, :m]), for
a batch of scores. The scores may be soft (values in [0, 1], e.g. gumbel-sigmoid samples of the
transcription model's phi, eq. 6-8): the likelihood of each cell is the Bernoulli
y * log p + (1 - y) * log(1 - p), and every model builds p from its context with operations that
are smooth in Y, so the NLL is differentiable w.r.t. Y. That is what lets a frozen LM act as the
regulariser of eq. 5, with gradients flowing through Y into the transcription model.

Models are saved as a small dict (kind, config, state_dict, instrument abbreviations, training
info) with torch.save; `load_language_model` rebuilds the right class from it.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar, Iterable, Sequence, Union

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .instruments import DEFAULT_INSTRUMENTS, DrumInstrument
from .score import DrumScore

# A score as the LMs read it: a DrumScore, or its (onsets (K, M), bar lengths (M,)) arrays.
ScoreLike = Union[DrumScore, tuple[np.ndarray, np.ndarray]]

FORMAT_VERSION = 1


def score_arrays(score: ScoreLike) -> tuple[np.ndarray, np.ndarray]:
    """The (K, M) float onsets and the (M,) bar length in tatums of each tatum of a score."""
    if isinstance(score, DrumScore):
        return score.onsets.astype(np.float32), score.bar_tatum_lengths().astype(np.int64)
    onsets, bar_lengths = score
    onsets = np.asarray(onsets, dtype=np.float32)
    bar_lengths = np.asarray(bar_lengths, dtype=np.int64)
    if onsets.ndim != 2 or bar_lengths.shape != (onsets.shape[1],):
        raise ValueError(f"onsets {onsets.shape} and bar lengths {bar_lengths.shape} do not match")
    return onsets, bar_lengths


def collate_scores(scores: Sequence[ScoreLike]) -> tuple[Tensor, Tensor, Tensor]:
    """Pad scores to one batch: y (B, K, M), bar_lengths (B, M) long, mask (B, M) bool.

    Padding gets bar length 0 and mask False; `DrumLanguageModel.nll` ignores masked tatums.
    """
    arrays = [score_arrays(s) for s in scores]
    if not arrays:
        raise ValueError("no scores to collate")
    n_drums = {a[0].shape[0] for a in arrays}
    if len(n_drums) != 1:
        raise ValueError(f"scores have different numbers of drums: {sorted(n_drums)}")
    k = n_drums.pop()
    m = max(a[0].shape[1] for a in arrays)
    y = torch.zeros(len(arrays), k, m)
    bar_lengths = torch.zeros(len(arrays), m, dtype=torch.long)
    mask = torch.zeros(len(arrays), m, dtype=torch.bool)
    for i, (onsets, lengths) in enumerate(arrays):
        n = onsets.shape[1]
        y[i, :, :n] = torch.from_numpy(onsets)
        bar_lengths[i, :n] = torch.from_numpy(lengths)
        mask[i, :n] = True
    return y, bar_lengths, mask


def _check_instruments(model: "DrumLanguageModel", scores: Iterable[ScoreLike]) -> None:
    for s in scores:
        if isinstance(s, DrumScore):
            abbrevs = tuple(i.abbrev for i in s.instruments)
            if abbrevs != model.instrument_abbrevs:
                raise ValueError(f"score drums {abbrevs} differ from the model's {model.instrument_abbrevs}")


class DrumLanguageModel(nn.Module):
    """Base class: a model of p(Y[:, m] | Y[:, :m]) as K Bernoullis per tatum.

    Subclasses implement `_log_probs`, returning log p(Y_{k,m} = 1 | past) and log p(Y_{k,m} = 0 | past)
    as two (B, K, M) tensors computed from the (possibly soft) past of y.
    """

    kind: ClassVar[str] = ""
    _registry: ClassVar[dict[str, type["DrumLanguageModel"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            DrumLanguageModel._registry[cls.kind] = cls

    def __init__(self, instruments: Sequence[DrumInstrument | str] = DEFAULT_INSTRUMENTS) -> None:
        super().__init__()
        # Only abbreviations are kept: they are what a saved model can check a score against
        # without pickling DrumInstrument objects.
        self.instrument_abbrevs: tuple[str, ...] = tuple(
            i if isinstance(i, str) else i.abbrev for i in instruments)
        self.training_info: dict[str, Any] = {}

    @property
    def n_drums(self) -> int:
        return len(self.instrument_abbrevs)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (besides the instruments) that rebuild this model."""
        return {}

    def _log_probs(self, y: Tensor, bar_lengths: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def onset_probabilities(self, y: Tensor, bar_lengths: Tensor) -> Tensor:
        """p(Y_{k,m} = 1 | Y[:, :m]) for every drum and tatum, (B, K, M)."""
        return self._log_probs(self._as_input(y), bar_lengths)[0].exp()

    def _as_input(self, y: Tensor) -> Tensor:
        if y.dim() != 3 or y.shape[1] != self.n_drums:
            raise ValueError(f"expected y of shape (B, {self.n_drums}, M), got {tuple(y.shape)}")
        return y if y.is_floating_point() else y.float()

    def nll(self, y: Tensor, bar_lengths: Tensor, mask: Tensor | None = None) -> Tensor:
        """Eq. 2 per sequence: -sum_m log p(Y[:, m] | Y[:, :m]), shape (B,).

        y: (B, K, M) in [0, 1], hard or soft. bar_lengths: (B, M) long, the bar length in tatums
        of each tatum's bar (DrumScore.bar_tatum_lengths). mask: optional (B, M) bool, False on
        padding; masked tatums add nothing (and, the models being causal, do not affect others).
        """
        y = self._as_input(y)
        bar_lengths = bar_lengths.to(device=y.device, dtype=torch.long)
        if bar_lengths.shape != (y.shape[0], y.shape[2]):
            raise ValueError(f"bar_lengths {tuple(bar_lengths.shape)} do not match y {tuple(y.shape)}")
        log_p1, log_p0 = self._log_probs(y, bar_lengths)
        # The Bernoulli log-likelihood is linear in y, so soft targets keep their gradient.
        ll = y * log_p1 + (1.0 - y) * log_p0
        if mask is not None:
            ll = ll * mask.to(ll.dtype).unsqueeze(1)
        return -ll.sum(dim=(1, 2))

    def frozen(self) -> "DrumLanguageModel":
        """Eval mode, no parameter gradients: the fixed regulariser of eq. 5 (gradients still reach y)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        return self

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save({
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "config": self.config(),
            "instruments": list(self.instrument_abbrevs),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
            # Plain JSON types only, so that loading works with torch.load(weights_only=True).
            "training_info": json.loads(json.dumps(self.training_info, default=str)),
        }, path)

    @classmethod
    def load(cls, path: str | Path, map_location: str | torch.device = "cpu") -> "DrumLanguageModel":
        """Load a saved model; on a subclass, also check that the file holds that kind."""
        data = torch.load(Path(path), map_location=map_location, weights_only=True)
        model_cls = DrumLanguageModel._registry.get(data.get("kind", ""))
        if model_cls is None:
            raise ValueError(f"{path}: unknown language model kind {data.get('kind')!r}")
        if cls is not DrumLanguageModel and not issubclass(model_cls, cls):
            raise ValueError(f"{path} holds a {data['kind']!r} model, not a {cls.kind!r} one")
        model = model_cls(instruments=tuple(data["instruments"]), **data["config"])
        model.load_state_dict(data["state_dict"])
        model.training_info = dict(data.get("training_info", {}))
        return model.eval()


def load_language_model(path: str | Path, map_location: str | torch.device = "cpu") -> DrumLanguageModel:
    """The model saved at `path`, as its own class (SkipBigram, GruLM, MarginalLM), in eval mode."""
    return DrumLanguageModel.load(path, map_location)


def _laplace_log(counts: np.ndarray) -> np.ndarray:
    """Log of add-one-smoothed distributions over the last axis."""
    smoothed = counts.astype(np.float64) + 1.0
    return np.log(smoothed / smoothed.sum(axis=-1, keepdims=True))


def _hard(onsets: np.ndarray) -> np.ndarray:
    return (np.asarray(onsets) >= 0.5).astype(np.int64)


class MarginalLM(DrumLanguageModel):
    """The no-context baseline: every Y_{k,m} is an independent Bernoulli with p(Y_k = 1)."""

    kind = "marginal"

    def __init__(self, instruments: Sequence[DrumInstrument | str] = DEFAULT_INSTRUMENTS) -> None:
        super().__init__(instruments)
        # Uniform until fitted: the chance-level model whose perplexity is exactly 2.
        self.register_buffer("log_marginal", torch.full((self.n_drums, 2), math.log(0.5)))

    def fit(self, scores: Iterable[ScoreLike]) -> "MarginalLM":
        """Add-one-smoothed frequency of onsets per drum over all tatums of the scores."""
        counts = np.zeros((self.n_drums, 2))
        for s in scores:
            onsets, _ = score_arrays(s)
            hard = _hard(onsets)
            counts[:, 1] += hard.sum(axis=1)
            counts[:, 0] += hard.shape[1] - hard.sum(axis=1)
        self.log_marginal.copy_(torch.from_numpy(_laplace_log(counts)))
        return self

    def _log_probs(self, y: Tensor, bar_lengths: Tensor) -> tuple[Tensor, Tensor]:
        lm = self.log_marginal.to(y.dtype)
        shape = y.shape
        return lm[:, 1].view(1, -1, 1).expand(shape), lm[:, 0].view(1, -1, 1).expand(shape)


class SkipBigram(DrumLanguageModel):
    """Eq. 3, the repetition-aware skip-type bi-gram: p(Y_{k,m} | Y_{k,m-L}) with L the bar length.

    The paper writes m - 16 (4/4 at four tatums per beat); L is read per tatum from `bar_lengths`
    instead, so a 3/4 bar looks back 12 tatums and a tempo map's metre changes are followed.
    Drums are independent given their own tatum one bar earlier. Where there is no tatum a bar
    earlier (m < L, or a bar length of 0 on padding) the per-drum marginal p(Y_k) stands in.
    """

    kind = "skip_bigram"

    def __init__(self, instruments: Sequence[DrumInstrument | str] = DEFAULT_INSTRUMENTS) -> None:
        super().__init__(instruments)
        k = self.n_drums
        # log pi[k, A, B] = log p(Y_{k,m} = B | Y_{k,m-L} = A); uniform until fitted.
        self.register_buffer("log_pi", torch.full((k, 2, 2), math.log(0.5)))
        self.register_buffer("log_marginal", torch.full((k, 2), math.log(0.5)))

    def fit(self, scores: Iterable[ScoreLike]) -> "SkipBigram":
        """Closed-form maximum a posteriori fit: transition counts with add-one (Laplace) smoothing."""
        k = self.n_drums
        transitions = np.zeros((k, 2, 2))
        marginal = np.zeros((k, 2))
        for s in scores:
            onsets, bar_lengths = score_arrays(s)
            hard = _hard(onsets)
            if hard.shape[0] != k:
                raise ValueError(f"score has {hard.shape[0]} drums, model {k}")
            m = np.arange(hard.shape[1])
            prev = m - bar_lengths
            ok = (bar_lengths > 0) & (prev >= 0)
            a, b = hard[:, prev[ok]], hard[:, m[ok]]
            for kk in range(k):
                np.add.at(transitions[kk], (a[kk], b[kk]), 1)
            ones = hard.sum(axis=1)
            marginal[:, 1] += ones
            marginal[:, 0] += hard.shape[1] - ones
        self.log_pi.copy_(torch.from_numpy(_laplace_log(transitions)))
        self.log_marginal.copy_(torch.from_numpy(_laplace_log(marginal)))
        return self

    def _log_probs(self, y: Tensor, bar_lengths: Tensor) -> tuple[Tensor, Tensor]:
        b, k, m = y.shape
        steps = torch.arange(m, device=y.device).unsqueeze(0)
        prev = steps - bar_lengths
        has_prev = (bar_lengths > 0) & (prev >= 0)
        idx = torch.where(has_prev, prev, torch.zeros_like(prev)).unsqueeze(1).expand(b, k, m)
        y_prev = y.gather(2, idx)  # (B, K, M): soft state of each drum a bar earlier
        pi = self.log_pi.to(y.dtype).exp()
        # A soft previous state mixes the two rows of pi; p stays linear, hence smooth, in y_prev.
        p1 = y_prev * pi[:, 1, 1].view(1, k, 1) + (1.0 - y_prev) * pi[:, 0, 1].view(1, k, 1)
        p0 = y_prev * pi[:, 1, 0].view(1, k, 1) + (1.0 - y_prev) * pi[:, 0, 0].view(1, k, 1)
        lm = self.log_marginal.to(y.dtype)
        has_prev = has_prev.unsqueeze(1)
        log_p1 = torch.where(has_prev, p1.log(), lm[:, 1].view(1, k, 1).expand(b, k, m))
        log_p0 = torch.where(has_prev, p0.log(), lm[:, 0].view(1, k, 1).expand(b, k, m))
        return log_p1, log_p0

    @property
    def pi(self) -> Tensor:
        """The (K, 2, 2) transition probabilities pi[k, A, B] of eq. 3."""
        return self.log_pi.exp()


class GruLM(DrumLanguageModel):
    """The neural LM of section III-C-2: stacked GRUs over the tatum vectors, then K logits.

    The input at tatum m is Y[:, m-1] (a learned start vector at m = 0), so the output at m
    predicts Y[:, m] from the whole past. The K drums at tatum m are Bernoullis that are
    independent *given* the hidden state, but the hidden state is shared and summarises every
    drum's past, so the model captures the dependence between drums that eq. 3 ignores (e.g. a
    hi-hat pattern telling where the snare backbeat falls).

    No position input by default: the paper's GRU sees the score only and is meant to infer the
    metre from it, and a positional one-hot would need the caller to know where in the beat a
    crop of a song starts. `beat_position=True` adds a one-hot of (m mod tatums_per_beat), which
    assumes every sequence passed in starts on a beat.
    """

    kind = "gru"

    def __init__(self, instruments: Sequence[DrumInstrument | str] = DEFAULT_INSTRUMENTS,
                 hidden_size: int = 64, num_layers: int = 3, dropout: float = 0.0,
                 beat_position: bool = False, tatums_per_beat: int = 4) -> None:
        super().__init__(instruments)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.beat_position = beat_position
        self.tatums_per_beat = tatums_per_beat
        k = self.n_drums
        n_in = k + (tatums_per_beat if beat_position else 0)
        self.start = nn.Parameter(torch.zeros(k))
        self.gru = nn.GRU(n_in, hidden_size, num_layers=num_layers, batch_first=True,
                          dropout=dropout if num_layers > 1 else 0.0)
        self.out = nn.Linear(hidden_size, k)
        with torch.no_grad():
            # Drum onsets are rare (~10-30% of tatums); a negative output bias starts training
            # near the marginal instead of at p = 0.5.
            self.out.bias.fill_(-1.5)

    def config(self) -> dict[str, Any]:
        return {"hidden_size": self.hidden_size, "num_layers": self.num_layers, "dropout": self.dropout,
                "beat_position": self.beat_position, "tatums_per_beat": self.tatums_per_beat}

    def logits(self, y: Tensor) -> Tensor:
        """Logits of p(Y_{k,m} = 1 | Y[:, :m]), (B, K, M)."""
        b, k, m = y.shape
        x = y.transpose(1, 2)
        start = self.start.to(x.dtype).view(1, 1, k).expand(b, 1, k)
        inputs = torch.cat([start, x[:, :-1]], dim=1)
        if self.beat_position:
            phase = torch.arange(m, device=y.device) % self.tatums_per_beat
            onehot = F.one_hot(phase, self.tatums_per_beat).to(x.dtype)
            inputs = torch.cat([inputs, onehot.unsqueeze(0).expand(b, m, -1)], dim=2)
        hidden, _ = self.gru(inputs)
        return self.out(hidden).transpose(1, 2)

    def _log_probs(self, y: Tensor, bar_lengths: Tensor) -> tuple[Tensor, Tensor]:
        z = self.logits(y)
        return F.logsigmoid(z), F.logsigmoid(-z)


@torch.no_grad()
def total_nll(model: DrumLanguageModel, scores: Sequence[ScoreLike], batch_size: int = 16) -> tuple[float, int]:
    """Summed eq. 2 NLL over the scores (nats) and the number of (drum, tatum) cells it covers."""
    _check_instruments(model, scores)
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    arrays = [score_arrays(s) for s in scores]
    # Batching similar lengths together keeps padding (wasted GRU steps) small.
    order = sorted(range(len(arrays)), key=lambda i: arrays[i][0].shape[1])
    total, cells = 0.0, 0
    for start in range(0, len(order), batch_size):
        batch = [arrays[i] for i in order[start:start + batch_size]]
        y, bar_lengths, mask = collate_scores(batch)
        nll = model.nll(y.to(device), bar_lengths.to(device), mask.to(device))
        total += float(nll.double().sum())
        cells += int(mask.sum()) * y.shape[1]
    model.train(was_training)
    return total, cells


def perplexity(model: DrumLanguageModel, scores: Sequence[ScoreLike]) -> float:
    """Perplexity per drum and tatum: exp(total NLL / (K * total M)) over all scores.

    This is how we read the paper's numbers (1.51 bi-gram, 1.44 GRU, "chance rate of 2"): a
    chance level of 2 only fits a per-binary-cell perplexity, i.e. the geometric-mean inverse
    likelihood of a single Y_{k,m}. A per-tatum perplexity (NLL / M) would have chance 2^K = 8.
    """
    total, cells = total_nll(model, scores)
    if cells == 0:
        raise ValueError("no tatums to evaluate")
    return math.exp(total / cells)
