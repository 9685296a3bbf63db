"""Drum MIDI (the Groove MIDI Dataset) to tatum-level target scores, with Table I statistics."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from ..instruments import DEFAULT_INSTRUMENTS, DrumInstrument, note_to_row
from ..score import DrumScore
from ..tatums import BeatGrid, quantize_to_tatums


@dataclass(frozen=True)
class GmdEntry:
    midi_path: Path
    split: str
    bpm: float
    beat_type: str  # "beat" or "fill"
    time_signature: str
    style: str
    duration: float


def read_info(gmd_root: Path, split: str | None = None) -> list[GmdEntry]:
    """Rows of GMD's info.csv, optionally of one split (train, validation or test)."""
    gmd_root = Path(gmd_root)
    info = gmd_root / "info.csv"
    if not info.is_file():
        raise FileNotFoundError(f"{gmd_root}: no info.csv here; pass the Groove MIDI Dataset folder")
    entries = []
    with open(info, newline="") as fh:
        for row in csv.DictReader(fh):
            if split is not None and row["split"] != split:
                continue
            entries.append(GmdEntry(gmd_root / row["midi_filename"], row["split"], float(row["bpm"]),
                                    row["beat_type"], row["time_signature"], row["style"], float(row["duration"])))
    return entries


def drum_hits(pm: pretty_midi.PrettyMIDI, instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
              ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per instrument, sorted onset times and their MIDI velocities, folding notes as `note_to_row` says."""
    table = note_to_row(instruments)
    hits: list[list[tuple[float, int]]] = [[] for _ in instruments]
    for track in pm.instruments:
        if not track.is_drum:
            continue
        for note in track.notes:
            if note.pitch in table:
                hits[table[note.pitch]].append((note.start, note.velocity))
    out = []
    for h in hits:
        h.sort()
        out.append((np.asarray([t for t, _ in h], dtype=float), np.asarray([v for _, v in h], dtype=float)))
    return out


def drum_onsets(pm: pretty_midi.PrettyMIDI, instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
                ) -> list[np.ndarray]:
    """Sorted onset times of each instrument, folding the kit's notes as `note_to_row` says."""
    return [times for times, _ in drum_hits(pm, instruments)]


def midi_beat_grid(pm: pretty_midi.PrettyMIDI, end_time: float | None = None) -> BeatGrid:
    """The MIDI file's own beats and bar positions (its tempo map and time signatures)."""
    end = pm.get_end_time() if end_time is None else end_time
    beats = pm.get_beats()
    beats = beats[beats <= end + 1e-6]
    downbeats = pm.get_downbeats()
    positions = np.zeros(len(beats), dtype=int)
    for i, t in enumerate(beats):
        last_down = downbeats[downbeats <= t + 1e-6]
        last_down = last_down[-1] if len(last_down) else beats[0]
        positions[i] = int(np.sum((beats >= last_down - 1e-6) & (beats <= t + 1e-6)))
    return BeatGrid(beats, positions)


@dataclass
class QuantizationStats:
    """Section IV-B: onsets a tatum score cannot represent. Counts add across files."""

    total: int = 0
    conflict: int = 0  # a second onset of the same drum landing on an already-used tatum
    far: int = 0  # farther than `tolerance` from its nearest tatum
    either: int = 0

    def add(self, other: "QuantizationStats") -> None:
        self.total += other.total
        self.conflict += other.conflict
        self.far += other.far
        self.either += other.either

    def ratios(self) -> dict[str, float]:
        n = max(self.total, 1)
        return {"conflict": self.conflict / n, "far": self.far / n, "conflict_or_far": self.either / n}


def quantize_onsets(onsets: list[np.ndarray], grid: BeatGrid, tatums_per_beat: int = 4,
                    instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS,
                    tolerance: float = 0.05, velocities: list[np.ndarray] | None = None
                    ) -> tuple[DrumScore, QuantizationStats]:
    """Snap each onset to its nearest tatum (section IV-B) and count what that loses (Table I).

    With `velocities` (MIDI 1-127 per onset) the score carries velocity / 127 per tatum: the loudest
    stroke where several land on one tatum (a flam sounds as loud as its louder stroke).
    """
    shape = (len(instruments), len(grid.times) * tatums_per_beat)
    empty = DrumScore(grid, tatums_per_beat, np.zeros(shape), instruments,
                      velocities=None if velocities is None else np.zeros(shape, dtype=np.float32))
    tatum_times = empty.tatum_times
    stats = QuantizationStats()
    for k, times in enumerate(onsets):
        idx = quantize_to_tatums(times, tatum_times)
        far = np.abs(tatum_times[idx] - times) > tolerance
        conflict = np.zeros(len(idx), dtype=bool)
        seen: set[int] = set()
        for j, m in enumerate(idx):
            conflict[j] = m in seen
            seen.add(int(m))
        empty.onsets[k, idx] = True
        if velocities is not None and len(idx):
            np.maximum.at(empty.velocities[k], idx, np.asarray(velocities[k], dtype=np.float32) / 127.0)
        stats.total += len(idx)
        stats.conflict += int(conflict.sum())
        stats.far += int(far.sum())
        stats.either += int((conflict | far).sum())
    return empty, stats


def midi_to_score(path: Path, tatums_per_beat: int = 4,
                  instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS
                  ) -> tuple[DrumScore, QuantizationStats]:
    """Read a drum MIDI file and quantise it to the tatums of its own tempo map."""
    pm = pretty_midi.PrettyMIDI(str(path))
    grid = midi_beat_grid(pm)
    hits = drum_hits(pm, instruments)
    return quantize_onsets([t for t, _ in hits], grid, tatums_per_beat, instruments,
                           velocities=[v for _, v in hits])
