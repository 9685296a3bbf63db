"""Onset matching at 50 ms, one to one (mir_eval's rule)."""
from __future__ import annotations

import numpy as np

from tatumdrum.metrics import match_onsets, score_onsets


def test_match_onsets_uses_50ms_one_to_one():
    c = match_onsets(np.array([1.0, 2.0, 3.0]), np.array([1.04, 2.06, 3.0, 3.01]))
    assert (c.correct, c.estimated, c.reference) == (2, 4, 3)
    s = score_onsets({"BD": np.array([1.0]), "SD": np.array([2.0])}, {"BD": np.array([1.0])})
    assert s["all"].correct == 1 and s["all"].recall == 0.5 and s["all"].precision == 1.0
