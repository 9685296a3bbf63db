"""Drum classes: folding onto older models' classes, and MDB Drums' scoring groups."""
from __future__ import annotations

import numpy as np

from tatumdrum.instruments import SEVEN_CLASSES, THREE_CLASSES, note_to_row
from tatumdrum.metrics import group_onsets, score_onsets


def test_folding_keeps_three_class_models_whole():
    # An open hi-hat is a hi-hat to a three-class model, and a class of its own to a seven-class one.
    three, seven = note_to_row(THREE_CLASSES), note_to_row(SEVEN_CLASSES)
    assert three[46] == three[42] == 2 and 49 not in three and 47 not in three
    assert seven[46] == 3 and seven[42] == 2 and seven[43] == seven[50] == 4 and seven[55] == 5 and seven[59] == 6
    # Scoring groups follow MDB Drums' classes: HH = closed + open, CY = crash + ride.
    grouped = group_onsets({"HH": np.array([1.0, 2.0]), "OH": np.array([2.0, 3.0]), "CR": np.array([4.0]),
                            "RD": np.array([5.0])})
    assert set(grouped) == {"HH", "CY"} and grouped["HH"].tolist() == [1.0, 2.0, 3.0]
    counts = score_onsets({"BD": np.array([1.0]), "HH": np.array([2.0]), "TT": np.array([3.0])},
                          {"BD": np.array([1.0]), "OH": np.array([2.01]), "TT": np.array([3.3])})
    assert counts["all"].correct == 2 and counts["all"].reference == 2 and counts["TT"].correct == 0
    assert counts["kit"].reference == 3
