"""Choosing the onset threshold of each drum (the paper's delta) on validation data (`tatumdrum tune-thresholds`).

A model's phi is computed once per validation item (rendered pieces, drums-only and mix, and real
recordings with their annotated beats); each scoring group (BD, SD, SS, HH, TT, CY) then gets the threshold
with the best mean F over the validation sets, and every class of the group takes it (open and closed
hi-hat share the HH threshold, crash and ride the CY one). Sets count equally, so a handful of real
recordings weighs as much as a hundred renders. A given threshold (decisions.py) is chosen after the
thresholds, by the same criterion.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from .decisions import GivenThreshold, decide
from .instruments import ALL_INSTRUMENTS, DrumInstrument
from .metrics import OnsetCounts, fold_to, score_onsets
from .weights import TrainedModel

TRIED_THRESHOLDS = tuple(float(round(d, 2)) for d in np.arange(0.15, 0.851, 0.05))
GROUPS = tuple(dict.fromkeys(i.group for i in ALL_INSTRUMENTS))


@dataclass
class Item:
    """One validation example: phi (K, M) on its tatums, and the reference onsets per class or group."""

    phi: np.ndarray
    tatum_times: np.ndarray
    reference: dict[str, np.ndarray]
    classes: tuple[str, ...] | None = None  # the classes the annotation tells apart (`metrics.fold_to`)


def rendered_items(model: TrainedModel, folder: Path, max_pieces: int | None = None,
                   sources: tuple[str, ...] = ("drums", "mix")) -> Iterable[Item]:
    """Items from `build-dataset` pieces (their spectrograms and their own tatum grid, i.e. given beats)."""
    from .dataset import load_piece
    from .inference import tatum_outputs

    files = sorted(Path(folder).glob("*.npz"))
    # First renders only: a second render of the same performance adds little that is new.
    firsts = [f for f in files if "__r" not in f.stem] or files
    for path in firsts[:max_pieces]:
        piece = load_piece(path)
        for source in sources:
            phi, _ = tatum_outputs(model, piece.mels[source].astype(np.float32), piece.tatum_times)
            yield Item(phi, piece.tatum_times, piece.onset_times, tuple(i.abbrev for i in piece.instruments))


def recorded_items(model: TrainedModel, root: Path, sources: tuple[str, ...] = ("drums", "mix")) -> Iterable[Item]:
    """Items from annotated recordings (MDB Drums layout), transcribed with their annotated beats;
    the source "separated" is the mix through the bundled separator, as `--separation` hears it."""
    from .evaluation import find_tracks
    from .features import load_audio
    from .inference import Transcriber

    hearing = {source: Transcriber(model, correct_bars=False) for source in sources if source != "separated"}
    if "separated" in sources:
        from .separation import DrumSeparator

        hearing["separated"] = Transcriber(model, correct_bars=False, separator=DrumSeparator.load())
    for track in find_tracks(Path(root)):
        audio = {}  # the mix is read once when both "mix" and "separated" hear it
        for source, transcriber in hearing.items():
            path = track.audio.get("mix" if source == "separated" else source)
            if path is None:
                continue
            if path not in audio:
                audio[path] = load_audio(path)
            score, _ = transcriber.transcribe_audio(audio[path], track.beats)
            yield Item(score.probabilities, score.tatum_times, track.reference, track.classes)


def sweep(items: Iterable[Item], instruments: tuple[DrumInstrument, ...], thresholds: tuple[float, ...] = TRIED_THRESHOLDS
          ) -> dict[float, dict[str, OnsetCounts]]:
    """Onset counts per threshold and scoring group, summed over the items."""
    totals: dict[float, dict[str, OnsetCounts]] = {d: {} for d in thresholds}
    for item in items:
        for d in thresholds:
            _add(totals[d], item_counts(item, instruments, (d,) * len(instruments)))
    return totals


def item_counts(item: Item, instruments: tuple[DrumInstrument, ...], thresholds: tuple[float, ...],
                given: tuple[GivenThreshold, ...] = ()) -> dict[str, OnsetCounts]:
    """One item's onset counts per scoring group at these thresholds and given thresholds."""
    written = decide(item.phi, instruments, thresholds, given)
    est = {inst.abbrev: item.tatum_times[written[k]] for k, inst in enumerate(instruments)}
    return score_onsets(item.reference, fold_to(est, item.classes))


def _add(totals: dict[str, OnsetCounts], counts: dict[str, OnsetCounts]) -> None:
    for group, c in counts.items():
        totals[group] = totals.get(group, OnsetCounts()) + c


def choose(sweeps: list[dict[float, dict[str, OnsetCounts]]]) -> dict[str, tuple[float, float]]:
    """Per group: the threshold with the best mean F over the sets, and that mean F. Sets without a
    reference stroke of a group do not vote on it; a group none of them has keeps no choice."""
    chosen = {}
    for group in GROUPS:
        voting = [s for s in sweeps if any(c.get(group, OnsetCounts()).reference for c in s.values())]
        if not voting:
            continue
        thresholds = sorted(voting[0])
        means = [np.mean([s[d].get(group, OnsetCounts()).f_measure for s in voting]) for d in thresholds]
        best = int(np.argmax(means))
        chosen[group] = (thresholds[best], float(means[best]))
    return chosen


def class_thresholds(instruments: tuple[DrumInstrument, ...], chosen: dict[str, tuple[float, float]],
                     current: tuple[float, ...]) -> tuple[float, ...]:
    """Onset threshold per drum: its group's choice, else the drum's `current` one."""
    return tuple(float(chosen[i.group][0]) if i.group in chosen else float(d) for i, d in zip(instruments, current))


def tune(model: TrainedModel, sets: dict[str, Callable[[], Iterable[Item]]], thresholds: tuple[float, ...] = TRIED_THRESHOLDS
         ) -> tuple[tuple[float, ...], dict[str, tuple[float, float]], dict[str, dict[float, dict[str, OnsetCounts]]]]:
    """Sweep every named validation set, choose per group; returns class thresholds, choices and sweeps."""
    sweeps = {name: sweep(make(), model.instruments, thresholds) for name, make in sets.items()}
    chosen = choose(list(sweeps.values()))
    return class_thresholds(model.instruments, chosen, model.policy.thresholds), chosen, sweeps


def counts_with(items: Iterable[Item], instruments: tuple[DrumInstrument, ...], thresholds: tuple[float, ...],
                given: tuple[GivenThreshold, ...] = ()) -> dict[str, OnsetCounts]:
    """Onset counts per scoring group, summed over the items, at fixed thresholds and given thresholds."""
    totals: dict[str, OnsetCounts] = {}
    for item in items:
        _add(totals, item_counts(item, instruments, thresholds, given))
    return totals


def tune_given(item_sets: dict[str, list[Item]], instruments: tuple[DrumInstrument, ...],
               thresholds: tuple[float, ...], group: str, given: str, tried: tuple[float, ...] = TRIED_THRESHOLDS
               ) -> tuple[tuple[GivenThreshold, ...], float, float]:
    """The given threshold for `group`'s drums (HH: closed and open hi-hat) on the tatums where the drum
    `given` is written: none, or a threshold from `tried` above the group's own, whichever has the best mean F
    of the group over the sets that have its strokes (none wins ties). Returns the rules (one per drum of
    the group; () for none), and the mean F with them and without."""
    drums = [i.abbrev for i in instruments if i.group == group]
    own = max(d for d, i in zip(thresholds, instruments) if i.group == group)

    def mean_f(rules: tuple[GivenThreshold, ...]) -> float:
        scores = [counts_with(items, instruments, thresholds, rules).get(group, OnsetCounts())
                  for items in item_sets.values()]
        fs = [c.f_measure for c in scores if c.reference]
        return float(np.mean(fs)) if fs else 0.0

    without = mean_f(())
    best: tuple[tuple[GivenThreshold, ...], float] = ((), without)
    for threshold in tried:
        if threshold > own:
            rules = tuple((drum, given, float(threshold)) for drum in drums)
            f = mean_f(rules)
            if f > best[1] + 1e-12:
                best = (rules, f)
    return best[0], best[1], without
