"""A training pack: the sound sources of a v2 build, small enough to travel to a machine that renders alone.

A lent GPU machine takes 64 MiB per call and reaches no network, so it cannot receive rendered data
(gigabytes) or the sources as they are (the recorded kit alone is 350 MB). A pack carries GMD's MIDI of
the chosen splits, the multi-mic kits with each microphone group merged into one channel, Hydrogen kits
(Debian's are not on that machine), and the sampled pianos thinned to a few keys and layers, all as mono
Ogg Vorbis at 44.1 kHz. `build-dataset --kit-dir PACK/kits
--piano-dir PACK/pianos` then renders from it as from the full sources.

What a merged kit keeps: one fader per microphone group (multimic.MIC_GROUPS), the unit of
`random_mic_mix`, so a render still draws dry, overhead-heavy or roomy mixes; it loses the spread of
+-1.5 dB between the mics of a group and the two sides of stereo pairs, which a mono render sums anyway.
"""
from __future__ import annotations

import csv
import html
import json
import re
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from .hydrogen import hydrogen_kit
from .kits import folder_kits
from .multimic import MIC_GROUPS, load_multimic_kit
from .sampled import load_sampled_instruments
from .sampler import read_mono
from .synthesis import SAMPLE_RATE

PACK_FORMAT = 1
# libsndfile's Vorbis setting: 0 is the best quality, 1 the smallest file.
DEFAULT_COMPRESSION = 0.5


@dataclass(frozen=True)
class PackOptions:
    splits: tuple[str, ...] = ("train", "validation")
    compression: float = DEFAULT_COMPRESSION
    # Takes kept per kit piece, spread evenly from the quietest to the loudest.
    max_takes: int = 24
    # A take ends where every merged microphone has fallen this far under the take's peak.
    tail_db: float = -60.0
    # Piano keys kept: at least n semitones apart (the sampler varispeeds the nearest key), from at most
    # this many dynamic layers, cut to this length.
    piano_step: int = 4
    max_piano_layers: int = 3
    piano_seconds: float = 4.0


def _write(path: Path, audio: np.ndarray, compression: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.clip(audio, -1.0, 1.0).astype(np.float32), SAMPLE_RATE, format="OGG", subtype="VORBIS",
             compression_level=compression)


def _spread(n: int, k: int) -> list[int]:
    """At most `k` of the indices 0..n-1, evenly spread from the first to the last."""
    return sorted(set(np.linspace(0, n - 1, min(k, n)).round().astype(int)))


def audible_length(channels: list[np.ndarray], tail_db: float) -> int:
    """Samples until every channel stays under `tail_db` relative to the loudest sample of all."""
    peak = max((float(np.max(np.abs(c))) for c in channels if len(c)), default=0.0)
    if peak == 0.0:
        return 0
    floor = peak * 10 ** (tail_db / 20.0)
    ends = [int(np.nonzero(np.abs(c) > floor)[0][-1]) + 1 for c in channels if len(c) and np.any(np.abs(c) > floor)]
    return max(ends, default=0)


def _fade_out(audio: np.ndarray, n: int, fade: int = 441) -> np.ndarray:
    out = audio[:n].copy()
    k = min(fade, len(out))
    if k:
        out[-k:] *= np.linspace(1.0, 0.0, k, dtype=np.float32)
    return out


def merge_mic_groups(take: dict[str, Path]) -> dict[str, np.ndarray]:
    """One channel per microphone group, named after the group's first mic that this take has."""
    merged: dict[str, np.ndarray] = {}
    for names in MIC_GROUPS.values():
        present = [m for m in names if m in take]
        if not present:
            continue
        parts = [read_mono(take[m]) for m in present]
        out = np.zeros(max(len(p) for p in parts), dtype=np.float32)
        for p in parts:
            out[: len(p)] += p
        merged[present[0]] = out
    return merged


Progress = Callable[[str, int, int], None]  # (what, done, total)


def pack_multimic_kit(root: Path, out: Path, options: PackOptions = PackOptions(),
                      progress: Progress | None = None) -> int:
    """Write `root`'s kit under `out` (same layout, Ogg); returns the number of takes written."""
    kit = load_multimic_kit(Path(root))
    written = 0
    for done, (piece, takes) in enumerate(kit.pieces.items()):
        if progress:
            progress(f"kit {Path(root).name}", done, len(kit.pieces))
        for number, index in enumerate(_spread(len(takes), options.max_takes), start=1):
            merged = merge_mic_groups(takes[index])
            n = audible_length(list(merged.values()), options.tail_db)
            for mic, audio in merged.items():
                _write(out / "Samples" / piece / f"{number}-{piece}-{mic}.ogg", _fade_out(audio, n), options.compression)
            written += 1
    return written


_FILENAME = re.compile(r"(<filename>)(.*?)(</filename>)", re.DOTALL)


def pack_hydrogen_kit(folder: Path, out: Path, options: PackOptions = PackOptions()) -> int:
    """A Hydrogen kit (`folder`/drumkit.xml) with every sample it names as mono Ogg at 44.1 kHz and its
    drumkit.xml pointing at them; returns the number of samples written."""
    folder = Path(folder)
    if not hydrogen_kit(folder / "drumkit.xml").usable:
        raise ValueError(f"{folder}: a Hydrogen kit without kick, snare and closed hi-hat")
    written: dict[str, str] = {}

    def repoint(m: re.Match) -> str:
        name = html.unescape(m.group(2).strip())
        if not (folder / name).is_file():
            return m.group(0)
        if name not in written:
            target = str(Path(name).with_suffix(".ogg"))
            _write(out / target, read_mono(folder / name), options.compression)
            written[name] = target
        return m.group(1) + html.escape(written[name], quote=False) + m.group(3)

    xml = _FILENAME.sub(repoint, (folder / "drumkit.xml").read_text(encoding="utf-8"))
    (out / "drumkit.xml").write_text(xml, encoding="utf-8")
    return len(written)


def pack_pianos(folder: Path, out: Path, options: PackOptions = PackOptions(), progress: Progress | None = None) -> int:
    """Keys at least `piano_step` semitones apart from `max_piano_layers` layers of each piano in `folder`
    (quietest, loudest and between), shortened; returns the number of files written."""
    folder = Path(folder)
    written = 0
    instruments = load_sampled_instruments(folder)
    for done, instrument in enumerate(instruments):
        if progress:
            progress(f"pianos {folder.name}", done, len(instruments))
        layers = instrument.layers
        for layer in (layers[i] for i in _spread(len(layers), options.max_piano_layers)):
            last = None
            for note, path in layer:
                if last is not None and note - last < options.piano_step:
                    continue
                last = note
                audio = read_mono(path)
                n = min(len(audio), int(options.piano_seconds * SAMPLE_RATE))
                _write(out / path.relative_to(folder).with_suffix(".ogg"), _fade_out(audio, n, fade=SAMPLE_RATE // 10),
                       options.compression)
                written += 1
    return written


def pack_gmd(gmd_root: Path, out: Path, splits: tuple[str, ...]) -> int:
    """GMD's info.csv cut to `splits`, their MIDI files and the licence; returns the number of files."""
    gmd_root = Path(gmd_root)
    info = gmd_root / "info.csv"
    if not info.is_file():
        raise FileNotFoundError(f"{gmd_root}: no info.csv here; pass the Groove MIDI Dataset folder")
    with info.open(newline="") as fh:
        reader = csv.DictReader(fh)
        fields, rows = reader.fieldnames or [], [r for r in reader if r["split"] in splits]
    out.mkdir(parents=True, exist_ok=True)
    for row in rows:
        target = out / row["midi_filename"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(gmd_root / row["midi_filename"], target)
    with (out / "info.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    for name in ("LICENSE", "README"):
        if (gmd_root / name).is_file():
            shutil.copyfile(gmd_root / name, out / name)
    return len(rows)


def folder_bytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


@dataclass(frozen=True)
class PackSummary:
    gmd_files: int
    kit_takes: dict[str, int]
    piano_files: dict[str, int]
    bytes: int


def make_pack(gmd_root: Path, out: Path, kit_dirs: tuple[Path, ...], piano_dirs: tuple[Path, ...],
              options: PackOptions = PackOptions(), progress: Progress | None = None) -> PackSummary:
    """Write a pack folder `out`: gmd/, kits/<kit>/ (multi-mic and Hydrogen), pianos/<folder>/ and pack.json."""
    out = Path(out)
    gmd_files = pack_gmd(gmd_root, out / "gmd", options.splits)
    kit_takes = {}
    # Each folder a kit or a folder of kits, as build-dataset's --kit-dir reads them; unusable Hydrogen
    # kits (hand percussion, effects) are left out there and here.
    for kit in folder_kits(list(map(Path, kit_dirs))):
        root = kit.path if kit.kind == "multimic" else Path(kit.path).parent
        if kit.kind == "hydrogen":
            if progress:
                progress(f"kit {root.name}", 0, 1)
            kit_takes[root.name] = pack_hydrogen_kit(root, out / "kits" / root.name, options)
        else:
            kit_takes[root.name] = pack_multimic_kit(root, out / "kits" / root.name, options, progress)
    piano_files = {Path(p).name: pack_pianos(Path(p), out / "pianos" / Path(p).name, options, progress)
                   for p in piano_dirs}
    meta = {"format": PACK_FORMAT, "options": asdict(options), "gmd_files": gmd_files, "kit_takes": kit_takes,
            "piano_files": piano_files}
    (out / "pack.json").write_text(json.dumps(meta, indent=1))
    return PackSummary(gmd_files, kit_takes, piano_files, folder_bytes(out))
