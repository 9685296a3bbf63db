"""Onset P/R/F at 50 ms (eq. 9), computed with mir_eval's matching so counts can be summed."""
from __future__ import annotations

from dataclasses import dataclass

import mir_eval
import numpy as np

from .instruments import ALL_INSTRUMENTS, HEADLINE_GROUPS, fold_row


@dataclass
class OnsetCounts:
    """N_c, N_e and N_g of eq. 9; counts add across instruments and pieces."""

    correct: int = 0
    estimated: int = 0
    reference: int = 0

    def __add__(self, other: "OnsetCounts") -> "OnsetCounts":
        return OnsetCounts(self.correct + other.correct, self.estimated + other.estimated,
                           self.reference + other.reference)

    @property
    def precision(self) -> float:
        return self.correct / self.estimated if self.estimated else 0.0

    @property
    def recall(self) -> float:
        return self.correct / self.reference if self.reference else 0.0

    @property
    def f_measure(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match_onsets(reference: np.ndarray, estimated: np.ndarray, window: float = 0.05) -> OnsetCounts:
    """Count one-to-one matches within `window` seconds, as mir_eval.onset.f_measure does."""
    reference = np.sort(np.asarray(reference, dtype=float))
    estimated = np.sort(np.asarray(estimated, dtype=float))
    if len(reference) == 0 or len(estimated) == 0:
        return OnsetCounts(0, len(estimated), len(reference))
    matching = mir_eval.util.match_events(reference, estimated, window)
    return OnsetCounts(len(matching), len(estimated), len(reference))


def fold_to(onsets: dict[str, np.ndarray], classes: tuple[str, ...] | None) -> dict[str, np.ndarray]:
    """Estimated onsets as an annotation with these classes sees them: a class it does not have
    counts as the class it folds into (a side stick is a snare to a three-class annotation, whose
    cross-sticks were labelled snare). None: the annotation's own groups decide (MDB Drums files
    cross-sticks under "other", so a side stick there is no snare)."""
    if classes is None:
        return onsets
    by_abbrev = {inst.abbrev: inst for inst in ALL_INSTRUMENTS}
    kept = tuple(by_abbrev[c] for c in classes if c in by_abbrev)
    folded: dict[str, list[np.ndarray]] = {}
    for name, times in onsets.items():
        row = fold_row(by_abbrev[name], kept) if name in by_abbrev else None
        folded.setdefault(name if row is None else kept[row].abbrev, []).append(np.asarray(times, dtype=float))
    return {name: np.sort(np.concatenate(parts)) for name, parts in folded.items()}


def group_onsets(onsets: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Onsets per scoring group (BD, SD, SS, HH, TT, CY) from onsets per class: open and closed hi-hat are
    both HH, crash and ride both CY, as in MDB Drums' annotations. Keys that are groups stay as they are."""
    group_of = {inst.abbrev: inst.group for inst in ALL_INSTRUMENTS}
    merged: dict[str, list[np.ndarray]] = {}
    for name, times in onsets.items():
        merged.setdefault(group_of.get(name, name), []).append(np.asarray(times, dtype=float))
    # A stroke written in two classes on one tatum (HH and OH) is one stroke of the group.
    return {g: np.unique(np.concatenate(parts)) for g, parts in merged.items()}


def score_onsets(reference: dict[str, np.ndarray], estimated: dict[str, np.ndarray],
                 window: float = 0.05) -> dict[str, OnsetCounts]:
    """Counts per scoring group (keys of `reference`, see `group_onsets`), their sum over BD, SD and HH
    under "all" (the paper's drums, Table II), and over every group under "kit"."""
    reference, estimated = group_onsets(reference), group_onsets(estimated)
    result: dict[str, OnsetCounts] = {}
    total, kit = OnsetCounts(), OnsetCounts()
    for name, ref in reference.items():
        counts = match_onsets(ref, estimated.get(name, np.zeros(0)), window)
        result[name] = counts
        kit = kit + counts
        if name in HEADLINE_GROUPS:
            total = total + counts
    result["all"] = total
    result["kit"] = kit
    return result
