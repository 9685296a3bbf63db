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
