"""From phi to onsets: each drum's delta, and a higher one on the tatums where another drum is written.

One stroke can sound like two drums. A cross-stick's click is short and bright, and the hi-hat output
also fires on it: on MDB-dev's Country1 stem every cross-stick backbeat came with a false hi-hat
(phi near 0.6), while the side stick itself was found with phi 0.99. A *given threshold*
(drum, given drum, delta) asks a drum for more evidence where the given drum is written; a hi-hat played
with a cross-stick is still written when the network is sure of it. `tatumdrum tune-thresholds --given`
chooses delta on validation data, or no rule at all.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .instruments import DrumInstrument

# (drum, given drum, delta): on a tatum where `given` is written, `drum` needs phi >= delta.
GivenThreshold = tuple[str, str, float]


def decide(phi: np.ndarray, instruments: Sequence[DrumInstrument], deltas: np.ndarray | Sequence[float],
           given: Sequence[GivenThreshold] = ()) -> np.ndarray:
    """Onsets (K, M) bool: phi >= each drum's delta, then the given thresholds on the plain decisions.

    A given drum counts as written by its own delta alone, so rules never chain.
    """
    written = np.asarray(phi) >= np.asarray(deltas, dtype=np.float32)[:, None]
    if not given:
        return written
    plain = written.copy()
    row = {inst.abbrev: k for k, inst in enumerate(instruments)}
    for drum, other, delta in given:
        if drum in row and other in row:
            k = row[drum]
            written[k] &= ~plain[row[other]] | (np.asarray(phi[k]) >= delta)
    return written


def parse_threshold_option(text: str) -> float | dict[str, float]:
    """`--threshold`: one delta for every drum ("0.3"), or deltas for some drums ("TT=0.75,CY=0.5") on top of
    the model's own. Raises ValueError with a message for the user."""
    def delta(value: str) -> float:
        try:
            d = float(value)
        except ValueError:
            raise ValueError(f"{value!r} is not a number") from None
        if not 0.0 <= d <= 1.0:
            raise ValueError(f"{value} is outside 0-1")
        return d

    text = text.strip()
    if "=" not in text:
        return delta(text)
    overrides = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{part!r}: give DRUM=DELTA pairs, e.g. TT=0.75,CY=0.5")
        overrides[name.strip()] = delta(value.strip())
    return overrides


def with_overrides(instruments: Sequence[DrumInstrument], deltas: np.ndarray,
                   overrides: dict[str, float]) -> np.ndarray:
    """`deltas` with some drums' replaced, in the order given: a key names a scoring group (HH: closed and
    open hi-hat; CY: crash and ride) or one drum (OH, CR), so "HH=0.3,OH=0.5" sets the closed hi-hat to 0.3
    and the open one to 0.5. Raises ValueError for a name the model does not have."""
    out = np.array(deltas, dtype=np.float32)
    for name, d in overrides.items():
        rows = [k for k, i in enumerate(instruments) if i.group == name] or \
               [k for k, i in enumerate(instruments) if i.abbrev == name]
        if not rows:
            known = sorted({i.abbrev for i in instruments} | {i.group for i in instruments})
            raise ValueError(f"no drum {name} in this model (it has {', '.join(known)})")
        out[rows] = d
    return out
