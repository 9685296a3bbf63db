"""Bars from the drums: choose the downbeat phase and the meter that make the transcribed score most likely.

madmom's downbeat tracker sometimes puts the bar line a beat or two off (the backbeat lands on 1
and 3) or hears a 4/4 song in 3/4. The drums say where bars begin: the kick leans on beat 1, the
snare on the backbeats, fills end on the downbeat. A metrical drum-score model gives
p(Y[k, m] = 1 | instrument k, position of tatum m in its bar, meter) for the paper's three drums
(BD, SD, HH), counted on the Groove MIDI Dataset; each candidate (meter, phase) relabels the beats,
and the one under which the transcription is most likely wins, in the spirit of the paper's closing
remark that beats and drum patterns inform each other.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from .instruments import group_rows
from .score import DrumScore
from .tatums import BeatGrid

GROUPS = ("BD", "SD", "HH")
METERS = (3, 4)


class MeterError(ValueError):
    """A --meter value that is not N/4."""


@dataclass
class MetricalModel:
    """p(onset | drum group, tatum position in the bar) per meter (beats per bar), for one tatum rate."""

    tatums_per_beat: int
    tables: dict[int, np.ndarray]  # meter -> (3, meter * tatums_per_beat) onset probabilities

    @classmethod
    def fit(cls, scores: Iterable[DrumScore], tatums_per_beat: int = 4, meters: tuple[int, ...] = METERS
            ) -> "MetricalModel":
        """Count onsets per position in full bars of each meter (add-one smoothed)."""
        ons = {n: np.ones((len(GROUPS), n * tatums_per_beat)) for n in meters}
        tot = {n: np.full(n * tatums_per_beat, 2.0) for n in meters}
        for score in scores:
            if score.tatums_per_beat != tatums_per_beat:
                continue
            y = _group_onsets(score)
            for start, stop in score.bars():
                n = stop - start
                if n in ons:
                    ons[n] += y[:, start * tatums_per_beat: stop * tatums_per_beat]
                    tot[n] += 1
        return cls(tatums_per_beat, {n: ons[n] / tot[n][None, :] for n in meters})

    def log_likelihood(self, y: np.ndarray, positions: np.ndarray, meter: int) -> float:
        """Mean Bernoulli log-likelihood per tatum of group onsets y (3, M) at bar positions (M,)."""
        p = self.tables[meter][:, positions]
        return float(np.mean(np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=0)))

    def save(self, path: Path) -> None:
        Path(path).write_text(json.dumps({"format": "tatumdrum-meter-1", "tatums_per_beat": self.tatums_per_beat,
                                          "groups": list(GROUPS),
                                          "tables": {str(n): t.round(6).tolist() for n, t in self.tables.items()}}))

    @classmethod
    def load(cls, path: Path) -> "MetricalModel":
        blob = json.loads(Path(path).read_text())
        if blob.get("format") != "tatumdrum-meter-1":
            raise ValueError(f"{path}: not a tatumdrum metrical model")
        return cls(int(blob["tatums_per_beat"]), {int(n): np.asarray(t) for n, t in blob["tables"].items()})


def _group_onsets(score: DrumScore) -> np.ndarray:
    rows = group_rows(score.instruments)
    return np.stack([score.onsets[rows[g]].any(axis=0) if g in rows else np.zeros(score.n_tatums, bool)
                     for g in GROUPS]).astype(float)


def relabel(grid: BeatGrid, meter: int, phase: int) -> BeatGrid:
    """The same beats with bar positions cycling through `meter`, the first beat at position phase + 1."""
    positions = (np.arange(len(grid.times)) + phase) % meter + 1
    return BeatGrid(grid.times, positions)


def parse_meter(text: str) -> int:
    """Beats per bar of an N/4 meter."""
    try:
        numerator, denominator = (int(x) for x in text.split("/"))
    except ValueError:
        raise MeterError(f"--meter {text!r}: write it as N/4, e.g. 4/4 or 3/4") from None
    if denominator != 4 or not 1 <= numerator <= 12:
        raise MeterError(f"--meter {text!r}: only N/4 meters (1 to 12 beats of a quarter) are supported")
    return numerator


# Nats per tatum by which another bar labelling must beat the tracker's before it replaces it. On
# MDB-dev (validation) a one-beat phase error or a wrong meter costs the tracker's labelling 0.09 to
# 0.39, while the half-bar shift of a 4/4 groove (kick on 1 and 3, snare on 2 and 4 look alike) is
# within 0.02 either way: that ambiguity is left to the tracker.
OVERRIDE_MARGIN = 0.03


def best_bars(score: DrumScore, model: MetricalModel, meters: tuple[int, ...] = METERS,
              margin: float = OVERRIDE_MARGIN) -> tuple[BeatGrid, dict[tuple[int, int], float]]:
    """The relabelled grid (meter, phase) under which the score's drums are most likely, and every
    candidate's score; the score's own labelling stays unless another is better by `margin`."""
    if score.tatums_per_beat != model.tatums_per_beat or int(score.beats.positions.max()) not in model.tables:
        return score.beats, {}
    y = _group_onsets(score)
    # Only tatums inside the transcription count; the grid's ends have no onsets by construction.
    tpb = score.tatums_per_beat
    scores: dict[tuple[int, int], float] = {}
    for meter in meters:
        if meter not in model.tables:
            continue
        for phase in range(meter):
            positions = ((np.arange(score.n_tatums) // tpb + phase) % meter) * tpb + np.arange(score.n_tatums) % tpb
            scores[(meter, phase)] = model.log_likelihood(y, positions, meter)
    meter, phase = max(scores, key=scores.get)
    own_meter = int(score.beats.positions.max())
    own = (own_meter, int(score.beats.positions[0] - 1) % own_meter)
    if own in scores and scores[(meter, phase)] - scores[own] <= margin:
        return score.beats, scores
    return relabel(score.beats, meter, phase), scores


def with_bars(score: DrumScore, grid: BeatGrid) -> DrumScore:
    """The same onsets on a grid with other bar positions."""
    return DrumScore(grid, score.tatums_per_beat, score.onsets, score.instruments, score.probabilities,
                     score.velocities, dict(score.meta))


def shift_downbeats(grid: BeatGrid, beats: int) -> BeatGrid:
    """Move every bar line `beats` beats later (negative: earlier), keeping the meter."""
    meter = int(grid.positions.max())
    return BeatGrid(grid.times, (grid.positions - 1 - beats) % meter + 1)


def choose_bars(score: DrumScore, model: MetricalModel | None, meter: int | None = None, correct: bool = True,
                shift: int = 0) -> DrumScore:
    """The score with its bars as the user and the drums say.

    `meter` forces N beats per bar (the phase then comes from the drums, or keeps the tracker's first
    downbeat where the model has no table for N); otherwise, with `correct`, the drums may overrule
    the tracker (best_bars). `shift` moves the bar lines by whole beats afterwards.
    """
    grid = score.beats
    if meter is not None:
        if model is not None and meter in model.tables and score.tatums_per_beat == model.tatums_per_beat:
            grid, _ = best_bars(with_bars(score, relabel(grid, meter, 0)), model, meters=(meter,), margin=-np.inf)
        else:
            first_down = int(np.argmax(grid.positions == 1)) if np.any(grid.positions == 1) else 0
            grid = relabel(grid, meter, (-first_down) % meter)
    elif correct and model is not None:
        grid, _ = best_bars(score, model)
    if shift:
        grid = shift_downbeats(grid, shift)
    return score if grid is score.beats else with_bars(score, grid)
