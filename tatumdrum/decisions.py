"""From phi to onsets: each drum's threshold, and a higher one on the tatums where another drum is written.

One stroke can sound like two drums. A cross-stick's click is short and bright, and the hi-hat output
also fires on it: on MDB-dev's Country1 stem every cross-stick backbeat came with a false hi-hat
(phi near 0.6), while the side stick itself was found with phi 0.99. A *given threshold*
(drum, given drum, threshold) asks a drum for more evidence where the given drum is written; a hi-hat played
with a cross-stick is still written when the network is sure of it. `tatumdrum tune-thresholds --given`
chooses threshold on validation data, or no rule at all.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from .instruments import DrumInstrument

# (drum, given drum, threshold): on a tatum where `given` is written, `drum` needs phi >= threshold.
GivenThreshold = tuple[str, str, float]


def decide(phi: np.ndarray, instruments: Sequence[DrumInstrument], thresholds: np.ndarray | Sequence[float],
           given: Sequence[GivenThreshold] = ()) -> np.ndarray:
    """Onsets (K, M) bool: phi >= each drum's threshold, then the given thresholds on the plain decisions.

    A given drum counts as written by its own threshold alone, so rules never chain.
    """
    written = np.asarray(phi) >= np.asarray(thresholds, dtype=np.float32)[:, None]
    if not given:
        return written
    plain = written.copy()
    row = {inst.abbrev: k for k, inst in enumerate(instruments)}
    for drum, other, threshold in given:
        if drum in row and other in row:
            k = row[drum]
            written[k] &= ~plain[row[other]] | (np.asarray(phi[k]) >= threshold)
    return written


def parse_threshold_option(text: str) -> float | dict[str, float]:
    """`--threshold`: one threshold for every drum ("0.3"), or thresholds for some drums ("TT=0.75,CY=0.5") on top of
    the model's own. Raises ValueError with a message for the user."""
    def threshold(value: str) -> float:
        try:
            d = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"{value} is outside 0-1")
        return d

    text = text.strip()
    if "=" not in text:
        return threshold(text)
    overrides = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part!r}: give DRUM=DELTA pairs, e.g. TT=0.75,CY=0.5")
        overrides[name.strip()] = threshold(value.strip())
    return overrides


def with_overrides(instruments: Sequence[DrumInstrument], thresholds: np.ndarray,
                   overrides: dict[str, float]) -> np.ndarray:
    """`thresholds` with some drums' replaced, in the order given: a key names a scoring group (HH: closed and
    open hi-hat; CY: crash and ride) or one drum (OH, CR), so "HH=0.3,OH=0.5" sets the closed hi-hat to 0.3
    and the open one to 0.5. Raises ValueError for a name the model does not have."""
    out = np.array(thresholds, dtype=np.float32)
    for name, d in overrides.items():
        rows = [k for k, i in enumerate(instruments) if i.group == name] or \
               [k for k, i in enumerate(instruments) if i.abbrev == name]
        if not rows:
            known = sorted({i.abbrev for i in instruments} | {i.group for i in instruments})
            raise ValueError(f"no drum {name} in this model (it has {', '.join(known)})")
        out[rows] = d
    return out


@dataclass(frozen=True)
class DecisionPolicy:
    """How one model turns phi into a score: an onset threshold per drum, and given thresholds.

    The one place that knows the rules: the pipeline decides with it, `--threshold` overrides it, a
    model file stores it, and JSON describes it.
    """

    instruments: tuple[DrumInstrument, ...]
    thresholds: tuple[float, ...]  # one onset threshold (the paper's delta) per drum
    given: tuple[GivenThreshold, ...] = ()

    def __post_init__(self) -> None:
        if len(self.thresholds) != len(self.instruments):
            raise ValueError(f"{len(self.thresholds)} thresholds for {len(self.instruments)} drums")
        names = {i.abbrev for i in self.instruments}
        for drum, other, _ in self.given:
            if drum not in names or other not in names:
                raise ValueError(f"a given threshold for {drum} on {other}, not among its drums")

    @classmethod
    def uniform(cls, instruments: Sequence[DrumInstrument], threshold: float) -> "DecisionPolicy":
        """The same threshold for every drum and no given thresholds (v1 files, a fresh training run)."""
        return cls(tuple(instruments), tuple(float(threshold) for _ in instruments))

    def as_array(self) -> np.ndarray:
        """The onset thresholds as an array, (K,)."""
        return np.asarray(self.thresholds, dtype=np.float32)

    def decide(self, phi: np.ndarray) -> np.ndarray:
        """Onsets (K, M) bool."""
        return decide(phi, self.instruments, self.as_array(), self.given)

    def overridden(self, option: float | dict[str, float] | None) -> "DecisionPolicy":
        """`--threshold`: one threshold for every drum (the given thresholds stay), or some drums' thresholds
        over these (`with_overrides`). Raises ValueError for a drum the model lacks."""
        if option is None:
            return self
        if isinstance(option, dict):
            thresholds = with_overrides(self.instruments, self.as_array(), option)
        else:
            thresholds = np.full(len(self.instruments), option, np.float32)
        return replace(self, thresholds=tuple(float(d) for d in thresholds))

    def describe(self) -> dict:
        """The JSON score's `threshold` (a number, or one per drum) and, where there are any, `given_thresholds`."""
        thresholds = self.as_array()
        threshold: float | dict[str, float] = round(float(thresholds[0]), 4)
        if np.any(thresholds != thresholds[0]):
            threshold = {inst.abbrev: round(float(d), 4) for inst, d in zip(self.instruments, thresholds)}
        described: dict = {"threshold": threshold}
        if self.given:
            described["given_thresholds"] = [{"drum": d, "given": g, "threshold": t} for d, g, t in self.given]
        return described

    def to_dict(self) -> dict:
        return {"thresholds": [float(t) for t in self.thresholds], "given": [list(g) for g in self.given]}

    @classmethod
    def from_dict(cls, instruments: Sequence[DrumInstrument], data: dict) -> "DecisionPolicy":
        return cls(tuple(instruments), tuple(float(t) for t in data["thresholds"]),
                   tuple((str(d), str(g), float(t)) for d, g, t in data.get("given", [])))
