"""JSON output: the tatum grid, the beats, and the onsets, for other programs to read."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..score import DrumScore


def _times(values: np.ndarray) -> list[float]:
    # Microsecond precision is far below any onset tolerance and keeps the file small.
    return [round(float(t), 6) for t in values]


SCHEMA = "tatumdrum-score"
# Version 2: schema/version keys, provenance (source, model, threshold, separation, duration, beats),
# bars, tempo and velocities. Version 1 (unmarked) had the grid, instruments, onsets and probabilities.
SCHEMA_VERSION = 2


def score_to_dict(score: DrumScore) -> dict[str, Any]:
    """The JSON document for `score` as plain Python values (README, "JSON schema")."""
    bars = score.bars()
    intervals = np.diff(score.beats.times)
    data: dict[str, Any] = {
        "schema": SCHEMA,
        "version": SCHEMA_VERSION,
        "source": score.meta.get("source"),
        "model": score.meta.get("model"),
        "threshold": score.meta.get("threshold"),
        "separation": score.meta.get("separation"),
        "duration": score.meta.get("duration"),
        "beat_source": score.meta.get("beats"),
        # "stem" or "mix": which of the model's two models heard the audio (None: it has one).
        "input": score.meta.get("input"),
        "tempo_bpm": round(60.0 / float(np.median(intervals)), 3),
        "bars": [{"start": round(float(score.beats.times[a]), 6), "beats": int(b - a)} for a, b in bars],
        "tatums_per_beat": score.tatums_per_beat,
        "tatum_times": _times(score.tatum_times),
        "beats": {
            "times": _times(score.beats.times),
            "positions": [int(p) for p in score.beats.positions],
        },
        "instruments": [
            {"name": inst.name, "abbrev": inst.abbrev, "gm_note": inst.gm_note} for inst in score.instruments
        ],
        "onsets": {abbrev: _times(times) for abbrev, times in score.onset_times().items()},
    }
    if score.meta.get("given_thresholds"):
        # The model's higher thresholds where another drum is written (decisions.py).
        data["given_thresholds"] = score.meta["given_thresholds"]
    if score.velocities is not None:
        # MIDI velocity (1-127) of each onset, in the order of "onsets".
        data["velocities"] = {inst.abbrev: [int(np.clip(round(127 * float(v)), 1, 127))
                                            for v in score.velocities[k, score.onsets[k]]]
                              for k, inst in enumerate(score.instruments)}
    if score.probabilities is not None:
        data["probabilities"] = np.round(np.asarray(score.probabilities, dtype=float), 4).tolist()
    return data


def write_json(score: DrumScore, path: Path) -> None:
    """Write `score` as a JSON document (see `score_to_dict`)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(score_to_dict(score), f, indent=1)
        f.write("\n")
