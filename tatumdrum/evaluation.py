"""`tatumdrum evaluate`: P/R/F at 50 ms against annotations, with estimated and with given beats (Table II).

Two corpus layouts are read:
- MDB Drums style: one folder per track with `drums.wav`, `rawsum.wav` (mix), `onsets.tsv`
  (time, class: KD/SD/HH/...) and `beats.tsv` (time, bar position);
- rendered pieces from `tatumdrum build-dataset --keep-audio`: `<name>.npz` with `<name>_drums.flac`
  and `<name>_mix.flac` beside it;
- audio files with a drum MIDI annotation of the same name (`song.wav` + `song.mid`), scored as "mix".
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from .beats import read_beats_tsv
from .features import load_audio
from .inference import Transcriber
from .instruments import ANNOTATION_LABELS
from .metrics import OnsetCounts, fold_to, score_onsets
from .tatums import BeatGrid

BEAT_CONDITIONS = ("estimated", "given")


@dataclass
class Track:
    name: str
    audio: dict[str, Path]  # source ("drums" / "mix") -> audio file
    reference: dict[str, np.ndarray]  # instrument abbrev -> onset times
    beats: BeatGrid
    # The classes the annotation tells apart (`metrics.fold_to`); None: MDB Drums' own groups.
    classes: tuple[str, ...] | None = None


def read_onsets_tsv(path: Path) -> dict[str, np.ndarray]:
    """Annotated onsets (time, class) folded to tatumdrum's scoring groups (BD, SD, HH, TT, CY); others
    (MDB Drums' OT, side sticks among them) are dropped."""
    times: dict[str, list[float]] = {g: [] for g in dict.fromkeys(ANNOTATION_LABELS.values())}
    for line in Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] in ANNOTATION_LABELS:
            times[ANNOTATION_LABELS[parts[1]]].append(float(parts[0]))
    return {k: np.sort(np.asarray(v)) for k, v in times.items()}


def mdb_tracks(root: Path) -> Iterator[Track]:
    for folder in sorted(p for p in Path(root).iterdir() if (p / "onsets.tsv").is_file()):
        audio = {src: folder / name for src, name in (("drums", "drums.wav"), ("mix", "rawsum.wav"))
                 if (folder / name).is_file()}
        yield Track(folder.name, audio, read_onsets_tsv(folder / "onsets.tsv"), read_beats_tsv(folder / "beats.tsv"))


def rendered_tracks(folder: Path) -> Iterator[Track]:
    for npz in sorted(Path(folder).glob("*.npz")):
        audio = {src: npz.with_name(f"{npz.stem}_{src}.flac") for src in ("drums", "mix")}
        audio = {k: v for k, v in audio.items() if v.is_file()}
        if not audio:
            continue
        with np.load(npz) as z:
            ref = {k[len("onset_times_"):]: z[k].astype(float) for k in z.files if k.startswith("onset_times_")}
            beats = BeatGrid(z["beat_times"].astype(float), z["beat_positions"].astype(int))
            classes = tuple(str(a) for a in z["instruments"]) if "instruments" in z.files else tuple(ref)
        yield Track(npz.stem, audio, ref, beats, classes)


def midi_annotated_tracks(folder: Path) -> Iterator[Track]:
    """Audio files with a drum MIDI file of the same name beside them; beats from the MIDI's tempo map."""
    import pretty_midi

    from .data.gmd import drum_onsets, midi_beat_grid
    from .instruments import ALL_INSTRUMENTS

    for audio in sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in {".wav", ".flac", ".ogg", ".mp3"}):
        midi = next((m for m in (audio.with_suffix(".mid"), audio.with_suffix(".midi")) if m.is_file()), None)
        if midi is None:
            continue
        pm = pretty_midi.PrettyMIDI(str(midi))
        onsets = drum_onsets(pm, ALL_INSTRUMENTS)
        yield Track(audio.stem, {"mix": audio}, {i.abbrev: t for i, t in zip(ALL_INSTRUMENTS, onsets)},
                    midi_beat_grid(pm), tuple(i.abbrev for i in ALL_INSTRUMENTS))


def find_tracks(root: Path) -> list[Track]:
    """Tracks of the first layout that matches: MDB folders, rendered pieces, or audio + drum MIDI pairs."""
    root = Path(root)
    tracks: list[Track] = []
    for layout in (mdb_tracks, rendered_tracks, midi_annotated_tracks):
        if not tracks and root.is_dir():
            tracks = list(layout(root))
    if not tracks:
        raise FileNotFoundError(f"{root}: no annotated tracks (MDB layout, rendered .npz + .flac, or audio + .mid) found")
    return tracks


Table = dict[tuple[str, str], dict[str, OnsetCounts]]  # (source, beats) -> instrument -> counts
# source -> one (beat F, downbeat F as tracked, downbeat F as written) per track, estimated beats.
BeatScores = dict[str, list[tuple[float, float, float]]]
# mir_eval's beat F window (+-70 ms), used for beats and for downbeats alike.
BEAT_WINDOW = 0.07


def beat_f(reference: BeatGrid, estimated: BeatGrid) -> tuple[float, float]:
    """(beat F, downbeat F) of estimated beats against the annotation (mir_eval, +-70 ms).

    Only the estimated beats within the annotated span count: the pipeline extends its grid over the
    whole audio, and an annotation often stops before the audio does.
    """
    import mir_eval

    start, stop = reference.times[0] - BEAT_WINDOW, reference.times[-1] + BEAT_WINDOW
    inside = (estimated.times >= start) & (estimated.times <= stop)
    times, positions = estimated.times[inside], estimated.positions[inside]

    def f(ref: np.ndarray, est: np.ndarray) -> float:
        if len(ref) == 0 or len(est) == 0:
            return float(len(ref) == len(est))
        return float(mir_eval.beat.f_measure(np.asarray(ref, float), np.asarray(est, float), BEAT_WINDOW))

    reference_downbeats = reference.times[reference.positions == 1]
    return f(reference.times, times), f(reference_downbeats, times[positions == 1])


def evaluate(transcriber: Transcriber, tracks: list[Track], sources: tuple[str, ...] = ("drums", "mix"),
             conditions: tuple[str, ...] = BEAT_CONDITIONS,
             on_track: Callable[[str], None] | None = None,
             beat_cache: dict[tuple[str, str], BeatGrid] | None = None,
             per_track: dict[tuple[str, str, str], dict[str, OnsetCounts]] | None = None,
             beat_scores: BeatScores | None = None) -> Table:
    """Transcribe every track from every source under every beat condition and add up the counts.

    Estimated beats go into `beat_cache` (keyed by track and source) so that comparing several
    models tracks each recording once. `per_track`, if given, receives each track's own counts,
    keyed by (track, source, condition). `beat_scores`, if given, receives each track's beat and
    downbeat F with estimated beats: the downbeats as the tracker found them and as the score writes
    them (after the transcriber's bar settings, e.g. the drums' correction where it is on).
    """
    table: Table = {}
    beat_cache = {} if beat_cache is None else beat_cache
    for track in tracks:
        for source in sources:
            if source not in track.audio:
                continue
            audio = load_audio(track.audio[source])
            for condition in conditions:
                if on_track:
                    on_track(f"{track.name} [{source}, {condition} beats]")
                if condition == "given":
                    beats = track.beats
                else:
                    key = (track.name, source)
                    if key not in beat_cache:
                        beat_cache[key] = transcriber.beat_tracker(audio)
                    beats = beat_cache[key]
                score, _ = transcriber.transcribe_audio(audio, beats)
                if beat_scores is not None and condition == "estimated":
                    beat, tracked = beat_f(track.beats, beats)
                    beat_scores.setdefault(source, []).append((beat, tracked, beat_f(track.beats, score.beats)[1]))
                counts = score_onsets(track.reference, fold_to(score.onset_times(), track.classes))
                if per_track is not None:
                    per_track[(track.name, source, condition)] = counts
                cell = table.setdefault((source, condition), {})
                for name, c in counts.items():
                    cell[name] = cell.get(name, OnsetCounts()) + c
    return table


def beat_markdown(scores: BeatScores, title: str = "") -> str:
    """Mean over tracks of beat F and downbeat F (tracked, and as written after the bar correction)."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| audio | tracks | beat F | downbeat F, tracked | downbeat F, written |", "|---|---|---|---|---|"]
    for source, rows in sorted(scores.items()):
        means = np.mean(np.asarray(rows), axis=0)
        lines.append(f"| {source} | {len(rows)} | " + " | ".join(f"{m:.3f}" for m in means) + " |")
    return "\n".join(lines)


def table_markdown(table: Table, title: str = "") -> str:
    """One row per (source, beats), F (P / R) in percent per group, summed over BD+SD+HH and over the kit."""
    present = {n for cell in table.values() for n in cell}
    names = [n for n in ("all", "BD", "SD", "SS", "HH", "TT", "CY", "kit") if n in present]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| audio | beats | " + " | ".join(f"{n} F (P/R)" for n in names) + " |",
              "|---|---|" + "---|" * len(names)]
    for (source, condition), cell in sorted(table.items()):
        row = [f"{100 * cell[n].f_measure:.1f} ({100 * cell[n].precision:.1f}/{100 * cell[n].recall:.1f})"
               if n in cell else "-" for n in names]
        lines.append(f"| {source} | {condition} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def per_track_markdown(per_track: dict[tuple[str, str, str], dict[str, OnsetCounts]], title: str = "") -> str:
    """One row per track, audio and beats: F per group, then the false positives and misses of each group,
    so that a summed score can be traced to the tracks and instruments that cost it."""
    present = {n for cell in per_track.values() for n in cell}
    names = [n for n in ("all", "BD", "SD", "SS", "HH", "TT", "CY") if n in present]
    lines = [f"**{title}**", ""] if title else []
    lines += ["| track | audio | beats | " + " | ".join(f"{n} F" for n in names) + " | false positives | misses |",
              "|---|---|---|" + "---|" * (len(names) + 2)]

    def errors(cell: dict[str, OnsetCounts], wrong: Callable[[OnsetCounts], int]) -> str:
        found = [f"{n} {wrong(cell[n])}" for n in names[1:] if n in cell and wrong(cell[n])]
        return ", ".join(found) or "-"

    for (track, source, condition), cell in sorted(per_track.items()):
        row = [f"{100 * cell[n].f_measure:.1f}" if n in cell and (cell[n].reference or cell[n].estimated) else "-"
               for n in names]
        lines.append(f"| {track} | {source} | {condition} | " + " | ".join(row) + " | "
                     + errors(cell, lambda c: c.estimated - c.correct) + " | "
                     + errors(cell, lambda c: c.reference - c.correct) + " |")
    return "\n".join(lines)


def table2_markdown(results: dict[str, Table], source: str, title: str = "") -> str:
    """Table II's layout for one audio source: a row per model, F/P/R (%) with estimated and given beats."""
    lines = [f"**{title}**", ""] if title else []
    lines += ["| model | est. beats F | P | R | given beats F | P | R |", "|---|---|---|---|---|---|---|"]
    for name, table in results.items():
        cells = []
        for condition in BEAT_CONDITIONS:
            c = table.get((source, condition), {}).get("all")
            cells += [f"{100 * c.f_measure:.1f}", f"{100 * c.precision:.1f}", f"{100 * c.recall:.1f}"] if c else ["-"] * 3
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def read_transcription(path: Path) -> dict[str, np.ndarray]:
    """Onset times per instrument from a transcription tatumdrum wrote (.mid/.midi or .json)."""
    import json

    from .instruments import ALL_INSTRUMENTS
    from .writers.midi import read_midi_onsets

    if path.suffix.lower() == ".json":
        return {k: np.asarray(v, dtype=float) for k, v in json.loads(path.read_text())["onsets"].items()}
    return read_midi_onsets(path, ALL_INSTRUMENTS)


def evaluate_transcriptions(folder: Path, tracks: list[Track],
                            per_track: dict[tuple[str, str, str], dict[str, OnsetCounts]] | None = None,
                            ) -> dict[str, OnsetCounts]:
    """Score existing transcriptions named after the tracks (`<track>.mid` or `<track>.json`); `per_track`
    as in `evaluate`, keyed (track, "transcription", "-")."""
    total: dict[str, OnsetCounts] = {}
    for track in tracks:
        found = [p for p in (folder / f"{track.name}{ext}" for ext in (".mid", ".midi", ".json")) if p.is_file()]
        if not found:
            raise FileNotFoundError(f"{folder}: no transcription for track {track.name!r}")
        estimated = fold_to(read_transcription(found[0]), track.classes)
        scored = score_onsets(track.reference, estimated)
        if per_track is not None:
            per_track[(track.name, "transcription", "-")] = scored
        for name, counts in scored.items():
            total[name] = total.get(name, OnsetCounts()) + counts
    return total
