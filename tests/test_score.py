"""DrumScore: bar lengths per tatum from the bar structure."""
from __future__ import annotations

import numpy as np

from tatumdrum.score import DrumScore
from tatumdrum.tatums import BeatGrid


def test_bar_lengths_come_from_the_bar_structure():
    # A 3/4 piece with a one-beat pickup: every tatum's skip is 12, never 16.
    grid = BeatGrid(np.arange(10) * 0.5, np.array([3, 1, 2, 3, 1, 2, 3, 1, 2, 3]))
    score = DrumScore(grid, 4, np.zeros((3, 40), bool))
    assert set(score.bar_tatum_lengths().tolist()) == {12}
