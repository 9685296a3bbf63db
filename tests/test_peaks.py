"""Eq. 10's peak picking for the frame-level baseline."""
from __future__ import annotations

import numpy as np

from tatumdrum.peaks import pick_peaks


def test_pick_peaks_follows_eq10_rules():
    act = np.array([0, 0, 0.9, 0.5, 0.1, 0.8, 0.0, 0.0, 0.1, 0.15, 0, 0, 0.6, 0.7, 0])
    # 2: peak. 5: within w5 = 2 frames? 5 - 2 = 3 > 2 -> kept. 9: below mean + 0.2. 12 then 13: 13 is a new
    # max but only one frame after 12, so rule 3 drops it.
    assert pick_peaks(act).tolist() == [2, 5, 12]
