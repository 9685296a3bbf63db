"""Build a training split: GMD drum MIDI to drums-only and full-mix log-mel spectrograms with tatum targets.

Each file gets its own random generator from (seed, index), so the result does not depend on the
number of workers or on which worker renders which file.
"""
from __future__ import annotations

import json
import multiprocessing as mp
import time
import traceback
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import pretty_midi
import soundfile as sf

from ..features import log_mel
from ..instruments import DEFAULT_INSTRUMENTS, DrumInstrument, by_abbrev, instruments_from_abbrevs
from ..score import merge_rows
from ..tatums import BeatGrid
from . import effects
from .accompaniment import random_accompaniment
from .gmd import QuantizationStats, drum_hits, midi_beat_grid, quantize_onsets, read_info
from .playing import vary_playing
from .kits import kit_has_side_stick, list_kits, folder_kits, random_kit, render_drums
from .synthesis import SAMPLE_RATE, Kit

# What every piece holds; v2 builds (`BuildOptions.v2`) add mel_band, velocities and instruments.
NPZ_KEYS = ("mel_drums", "mel_mix", "tatum_times", "beat_times", "beat_positions", "tatums_per_beat", "targets",
            *(f"onset_times_{inst.abbrev}" for inst in DEFAULT_INSTRUMENTS), "kit")


@dataclass(frozen=True)
class BuildOptions:
    """What a build renders beyond v1's defaults (all off: v1's three classes and fixed mixes).

    `v2` stores the clean drum stem and the band stem apart (`mel_band`, for remixing per training
    crop), velocities, and the instrument list; `vary` edits the playing (playing.py); `record_like`
    adds band.py's layers; kit and piano folders add recorded kits and sampled pianos.
    """

    instruments: tuple[str, ...] = tuple(i.abbrev for i in DEFAULT_INSTRUMENTS)
    renders: int = 1
    v2: bool = False
    vary: bool = False
    record_like: bool = False
    kit_dirs: tuple[str, ...] = ()
    piano_dirs: tuple[str, ...] = ()
    # (name, probability) pairs that override playing.VARIATION_PROBABILITY.
    variations: tuple[tuple[str, float], ...] = ()
    # Drum-to-band level (RMS dB) of the full mix, drawn per render: from drums buried in the band
    # to drums on top.
    drum_to_band_db: tuple[float, float] = (-9.0, 3.0)
    # Chance of an unlabelled hand-percussion layer (tambourine, cabasa, maracas) in the band (band.py).
    band_percussion: float = 0.0
    # Also store the bundled separator's drum estimate of the mix (`mel_separated`), so that a model
    # learns to hear what `--separation` gives it, artefacts and leaked band included.
    separated: bool = False

# Share of drum-only examples that keep a faint band, like a drum stem from source separation.
BLEED_PROBABILITY = 0.25
BLEED_DB = (-30.0, -12.0)
PEAK_DB = (-9.0, -0.3)
PREROLL_SECONDS = (0.0, 0.6)
TAIL_SECONDS = (0.3, 1.0)


@dataclass
class CroppedScore:
    """The part of a drum file that becomes one example, and its quantised targets."""

    pm: pretty_midi.PrettyMIDI  # drum notes inside the crop only
    grid: BeatGrid
    targets: np.ndarray  # (K, M) bool
    tatum_times: np.ndarray
    onsets: list[np.ndarray]  # unquantised onset times of each instrument inside the crop
    stats: QuantizationStats
    grid_end: float  # where the last tatum's span ends
    velocities: np.ndarray  # (K, M) float, velocity / 127 of the onset at each tatum (0 where none)
    instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS


def crop_time(pm: pretty_midi.PrettyMIDI, max_seconds: float) -> float | None:
    """End of the crop: the last downbeat at or before `max_seconds`, or None if the file is short enough."""
    if pm.get_end_time() <= max_seconds:
        return None
    downbeats = pm.get_downbeats()
    inside = downbeats[(downbeats > 1e-6) & (downbeats <= max_seconds + 1e-6)]
    return float(inside[-1]) if len(inside) else float(max_seconds)


def crop_and_quantise(pm: pretty_midi.PrettyMIDI, max_seconds: float, tatums_per_beat: int,
                      instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS) -> CroppedScore:
    """Crop to whole bars within `max_seconds`, then quantise with the file's own beats (gmd.py)."""
    end = crop_time(pm, max_seconds)
    if end is None:
        file_end = pm.get_end_time()
        if len(pm.get_beats()) < 2:
            # A fill shorter than two beats: a silent placeholder stretches the tempo map so that
            # the grid has the two beats a BeatGrid needs.
            pad = pretty_midi.Instrument(0, name="grid placeholder")
            pad.notes.append(pretty_midi.Note(1, 60, 0.0, file_end + 4.0 * _first_beat_length(pm)))
            pm.instruments.append(pad)
            grid = midi_beat_grid(pm, end_time=max(file_end, float(pm.get_beats()[1])))
            pm.instruments.remove(pad)
        else:
            grid = midi_beat_grid(pm)
        note_limit = np.inf
    else:
        # Beats strictly before the crop's downbeat: the last beat's tatums then end exactly at the crop.
        grid = midi_beat_grid(pm, end_time=end - 1e-3)
        last_tatum = (end - grid.times[-1]) / tatums_per_beat
        # A note played just ahead of the next bar belongs to that bar, which is cut off.
        note_limit = end - 0.5 * last_tatum
    cropped = pretty_midi.PrettyMIDI(resolution=pm.resolution)
    for track in pm.instruments:
        if not track.is_drum:
            continue
        keep = pretty_midi.Instrument(track.program, is_drum=True, name=track.name)
        keep.notes = [n for n in track.notes if n.start < note_limit]
        cropped.instruments.append(keep)
    hits = drum_hits(cropped, instruments)
    onsets = [t for t, _ in hits]
    score, stats = quantize_onsets(onsets, grid, tatums_per_beat, instruments, velocities=[v for _, v in hits])
    grid_end = float(grid.times[-1] + (grid.times[-1] - grid.times[-2]))
    return CroppedScore(cropped, grid, score.onsets, score.tatum_times, onsets, stats, grid_end, score.velocities,
                        instruments)


def fold_class(crop: CroppedScore, source: str, into: str) -> CroppedScore:
    """The crop with `source`'s strokes labelled as `into` (a kit that plays one as the other)."""
    abbrevs = [i.abbrev for i in crop.instruments]
    if source not in abbrevs or into not in abbrevs:
        return crop
    s, k = abbrevs.index(source), abbrevs.index(into)
    rows = [k if j == s else j for j in range(len(abbrevs))]
    onsets = list(crop.onsets)
    onsets[k] = np.sort(np.concatenate([np.asarray(onsets[k], float), np.asarray(onsets[s], float)]))
    onsets[s] = np.zeros(0)
    return replace(crop, targets=merge_rows(crop.targets, rows, len(rows)),
                   velocities=merge_rows(crop.velocities, rows, len(rows)), onsets=onsets)


def _first_beat_length(pm: pretty_midi.PrettyMIDI) -> float:
    _, tempi = pm.get_tempo_changes()
    return 60.0 / float(tempi[0]) if len(tempi) else 0.5


@dataclass
class Rendered:
    drums: np.ndarray
    mix: np.ndarray
    offset: float
    meta: dict
    band: np.ndarray | None = None  # the band as mixed, without drums (v2 builds)
    clean_drums: np.ndarray | None = None  # the drum stem without bleed, at the mix's drum level


def render_example(crop: CroppedScore, rng: np.random.Generator, kits: tuple[Kit, ...] | None = None,
                   options: BuildOptions = BuildOptions()) -> Rendered:
    """Drums through a random kit and effects, and a full mix with a generated band, both peak-normalised.

    The audio starts with a short random silence (`offset`): real songs seldom put a beat at
    sample 0, and it moves the tatums' phase against the 10 ms frames.
    """
    last_note = max((n.start for t in crop.pm.instruments for n in t.notes), default=0.0)
    duration = max(crop.grid_end, last_note + 0.1) + float(rng.uniform(*TAIL_SECONDS))
    pad = np.zeros(int(round(rng.uniform(*PREROLL_SECONDS) * SAMPLE_RATE)), dtype=np.float32)
    offset = len(pad) / SAMPLE_RATE

    kit = random_kit(rng, kits)
    drums = np.concatenate([pad, render_drums(crop.pm, kit, rng, duration)])
    drum_chain = effects.random_chain(rng, "drums")
    drums = drum_chain(drums)

    band = random_accompaniment(crop.grid.times, crop.grid.positions, duration, rng,
                                kick_times=crop.onsets[by_abbrev("BD", crop.instruments)], end_time=crop.grid_end,
                                record_like=options.record_like,
                                piano_dirs=tuple(Path(d) for d in options.piano_dirs),
                                percussion=options.band_percussion)
    band_chain = effects.random_chain(rng, "accompaniment")
    band_audio = band_chain(np.concatenate([pad, band.audio]))
    ratio_db = float(rng.uniform(*options.drum_to_band_db))
    if np.any(band_audio):
        band_audio = effects.gain(band_audio, effects.rms_db(drums) - ratio_db - effects.rms_db(band_audio))

    master_chain = effects.random_chain(rng, "master")
    mix = effects.normalize_peak(master_chain(drums + band_audio), float(rng.uniform(*PEAK_DB)))
    stems = None
    if options.v2:
        # The stems at the level they have in the mix before mastering, for remixing per crop.
        scale = 10 ** (float(rng.uniform(*PEAK_DB)) / 20) / (float(np.max(np.abs(drums + band_audio))) + 1e-9)
        stems = (drums * np.float32(scale), band_audio * np.float32(scale))

    drums_out = drums
    bleed_db = None
    if rng.random() < BLEED_PROBABILITY:
        bleed_db = float(rng.uniform(*BLEED_DB))
        drums_out = drums + effects.gain(band_audio, bleed_db)
    drums_out = effects.normalize_peak(drums_out, float(rng.uniform(*PEAK_DB)))
    meta = {"kit": kit.name, "band_soundfont": band.soundfont, "band": band.arrangement.describe(),
            "drum_to_band_db": round(ratio_db, 2), "bleed_db": None if bleed_db is None else round(bleed_db, 2),
            "drum_effects": drum_chain.names, "band_effects": band_chain.names, "master_effects": master_chain.names,
            "offset": round(offset, 4), "band_layers": band.layers, "side_stick": kit_has_side_stick(kit)}
    if stems is None:
        return Rendered(drums_out, mix, offset, meta)
    return Rendered(drums_out, mix, offset, meta, band=stems[1], clean_drums=stems[0])


def example_arrays(crop: CroppedScore, rendered: Rendered, tatums_per_beat: int) -> dict[str, np.ndarray]:
    """The npz content of one example (exactly NPZ_KEYS), all times shifted by the render's offset."""
    off = rendered.offset
    arrays: dict[str, np.ndarray] = {
        "mel_drums": log_mel(rendered.drums).astype(np.float16),
        "mel_mix": log_mel(rendered.mix).astype(np.float16),
        "tatum_times": (crop.tatum_times + off).astype(np.float32),
        "beat_times": (crop.grid.times + off).astype(np.float32),
        "beat_positions": np.asarray(crop.grid.positions, dtype=np.int16),
        "tatums_per_beat": np.asarray(tatums_per_beat),
        "targets": crop.targets.astype(np.uint8),
    }
    for inst, times in zip(crop.instruments, crop.onsets):
        arrays[f"onset_times_{inst.abbrev}"] = (np.asarray(times) + off).astype(np.float32)
    arrays["kit"] = np.asarray(rendered.meta["kit"])
    if rendered.band is not None:
        # The clean stem replaces the bled one: training adds bleed per crop (dataset.py).
        arrays["mel_drums"] = log_mel(rendered.clean_drums).astype(np.float16)
        arrays["mel_band"] = log_mel(rendered.band).astype(np.float16)
        arrays["velocities"] = np.round(crop.velocities * 127).astype(np.uint8)
        arrays["instruments"] = np.asarray([i.abbrev for i in crop.instruments])
    return arrays


_SEPARATOR = None  # one per worker process: loading Open-Unmix costs more than separating a piece


def separated_drums(mix: np.ndarray) -> np.ndarray:
    """The bundled separator's drum stem of a rendered mix (mono), as `transcribe --separation` makes it."""
    global _SEPARATOR
    if _SEPARATOR is None:
        import torch

        from ..separation import DrumSeparator

        torch.set_num_threads(1)  # the build's workers are the parallelism
        _SEPARATOR = DrumSeparator.load()
    return _SEPARATOR.separate(mix, SAMPLE_RATE).mean(axis=0)


def stem_of(gmd_root: Path, midi_path: Path) -> str:
    """A unique file stem: GMD reuses names like 1_funk-groove1_138_beat_4-4 across drummers and sessions."""
    try:
        rel = Path(midi_path).relative_to(gmd_root)
    except ValueError:
        rel = Path(Path(midi_path).name)
    return "_".join(rel.with_suffix("").parts)


def _build_one(task: tuple) -> dict:
    index, midi_path, stem, out_split, seed, tatums_per_beat, max_seconds, keep_audio, render, kits, options = task
    started = time.perf_counter()
    try:
        # Render 0 keeps v1's seeds, so a one-render build is the same as before renders existed.
        rng = np.random.default_rng([seed, index] if render == 0 else [seed, index, render])
        pm = pretty_midi.PrettyMIDI(str(midi_path))
        variations = vary_playing(pm, rng, dict(options.variations)) if options.vary else []
        crop = crop_and_quantise(pm, max_seconds, tatums_per_beat, instruments_from_abbrevs(options.instruments))
        rendered = render_example(crop, rng, kits, options)
        rendered.meta["variations"] = variations
        if not rendered.meta["side_stick"]:
            crop = fold_class(crop, "SS", "SD")
        arrays = example_arrays(crop, rendered, tatums_per_beat)
        if options.separated:
            arrays["mel_separated"] = log_mel(separated_drums(rendered.mix)).astype(np.float16)
        tmp = out_split / f".{stem}.tmp.npz"
        np.savez_compressed(tmp, **arrays)
        tmp.replace(out_split / f"{stem}.npz")
        if keep_audio:
            sf.write(out_split / f"{stem}_drums.flac", rendered.drums, SAMPLE_RATE, subtype="PCM_16")
            sf.write(out_split / f"{stem}_mix.flac", rendered.mix, SAMPLE_RATE, subtype="PCM_16")
            if rendered.band is not None:
                # The stems at their level in the mix, for training a separator (train-separator).
                sf.write(out_split / f"{stem}_clean_drums.flac", rendered.clean_drums, SAMPLE_RATE, subtype="PCM_16")
                sf.write(out_split / f"{stem}_band.flac", rendered.band, SAMPLE_RATE, subtype="PCM_16")
        s = crop.stats
        return {"index": index, "stem": stem, "ok": True, "seconds": len(rendered.mix) / SAMPLE_RATE,
                "stats": [s.total, s.conflict, s.far, s.either], "meta": rendered.meta,
                "render_seconds": round(time.perf_counter() - started, 3)}
    except Exception as exc:  # one bad file must not stop a build of hundreds
        return {"index": index, "stem": stem, "ok": False, "error": f"{type(exc).__name__}: {exc}",
                "traceback": traceback.format_exc(limit=3)}


def build_split(gmd_root: Path, split: str, out_dir: Path, tatums_per_beat: int = 4, seed: int = 0,
                max_files: int | None = None, max_seconds: float = 60.0, workers: int = 2, keep_audio: bool = False,
                progress: Callable[[int, int], None] | None = None, options: BuildOptions = BuildOptions(),
                stride: int = 1) -> dict:
    """Render every GMD file of `split` (every `stride`-th, for a small build spread over all drummers) into `out_dir/<split>/<stem>.npz` and write `stats.json` there.

    With `workers` > 1 the files are rendered by a spawned process pool, so a script that calls this
    must guard its top level with `if __name__ == "__main__":`.

    Returns the statistics written to stats.json: files built and failed, seconds of audio, the
    Table I quantisation ratios over the split, kits used, and the build time.
    """
    started = time.perf_counter()
    gmd_root = Path(gmd_root)
    entries = read_info(gmd_root, split)[::stride]
    if max_files is not None:
        entries = entries[:max_files]
    out_split = Path(out_dir) / split
    out_split.mkdir(parents=True, exist_ok=True)
    kits = list_kits() + folder_kits([Path(d) for d in options.kit_dirs])
    tasks = [(i, e.midi_path, stem_of(gmd_root, e.midi_path) + (f"__r{r}" if r else ""), out_split, seed,
              tatums_per_beat, max_seconds, keep_audio, r, kits, options)
             for r in range(options.renders) for i, e in enumerate(entries)]
    # Longest files first, so that no long file is left running alone at the end.
    order = sorted(range(len(tasks)), key=lambda i: -min(entries[i % len(entries)].duration, max_seconds))
    tasks = [tasks[i] for i in order]
    total = len(tasks)
    results: list[dict] = []
    if progress:
        progress(0, total)
    if workers <= 1 or total <= 1:
        for task in tasks:
            results.append(_build_one(task))
            if progress:
                progress(len(results), total)
    else:
        # spawn, not fork: a fork of a process that has used libfluidsynth (or torch) can deadlock
        # in the child. As with any spawn pool, a calling script needs an `if __name__ == "__main__":` guard.
        with mp.get_context("spawn").Pool(min(workers, total)) as pool:
            for result in pool.imap_unordered(_build_one, tasks, chunksize=1):
                results.append(result)
                if progress:
                    progress(len(results), total)
    results.sort(key=lambda r: (r["index"], r["stem"]))

    quant = QuantizationStats()
    kits: Counter[str] = Counter()
    fonts: Counter[str] = Counter()
    seconds = 0.0
    for r in results:
        if r["ok"]:
            quant.add(QuantizationStats(*r["stats"]))
            kits[r["meta"]["kit"]] += 1
            fonts[r["meta"]["band_soundfont"]] += 1
            seconds += r["seconds"]
    ok = [r for r in results if r["ok"]]
    failed = [r for r in results if not r["ok"]]
    build_seconds = time.perf_counter() - started
    stats = {
        "split": split,
        "files": len(ok),
        "failed": len(failed),
        "failures": [{"stem": r["stem"], "error": r["error"]} for r in failed],
        "seconds": round(seconds, 2),
        "quantization": quant.ratios(),
        "quantization_counts": {"total": quant.total, "conflict": quant.conflict, "far": quant.far,
                                "conflict_or_far": quant.either},
        "kits": dict(sorted(kits.items())),
        "band_soundfonts": dict(sorted(fonts.items())),
        "build_seconds": round(build_seconds, 2),
        "build_seconds_per_audio_second": round(build_seconds / seconds, 5) if seconds else None,
        "workers": workers,
        "seed": seed,
        "tatums_per_beat": tatums_per_beat,
        "max_seconds": max_seconds,
        "options": asdict(options),
        "examples": [{"stem": r["stem"], "seconds": round(r["seconds"], 3), "render_seconds": r["render_seconds"],
                      **r["meta"]} for r in ok],
    }
    with open(out_split / "stats.json", "w") as fh:
        json.dump(stats, fh, indent=1)
    return stats
