"""Drum MIDI to audio through a randomly chosen kit: the kits installed here (General MIDI soundfonts,
avldrums, Hydrogen kits) and recorded multi-mic kits given by folder, drawn family first, each render
with its own velocity response, group levels and tuning."""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pretty_midi

from .drumnotes import GROUP_LEVEL_DB, GROUPS, remap_to_gm
from .hydrogen import hydrogen_kit, installed_hydrogen_kits, render_hydrogen_kit
from .multimic import load_multimic_kit, render_multimic
from .sampler import group_tuning
from .soundfont_kits import render_soundfont_kit, soundfont_note_map
from .synthesis import SAMPLE_RATE, SOUNDFONT_DIRS, FluidError, Kit, timgm_path

# Presets of a GM soundfont's drum bank that differ in sound. The orchestra kit is left out: its
# notes are timpani and concert percussion, not a drum set.
GM_DRUM_PRESETS: dict[int, str] = {0: "Standard", 8: "Room", 16: "Power", 24: "Electronic", 25: "TR-808",
                                   32: "Jazz", 40: "Brush"}
# Drawing a family first keeps the 9 Hydrogen kits from crowding out the soundfonts, and the other way round.
# Recorded multi-mic kits (given with `build-dataset --kit-dir`) sound most like records and are
# remixed per render, so they get the largest share when present.
FAMILY_WEIGHTS: dict[str, float] = {"FluidR3_GM": 0.12, "MuseScore_General": 0.12, "TimGM6mb": 0.05,
                                    "avldrums": 0.12, "hydrogen": 0.24, "multimic": 0.35}


def _gm_soundfonts() -> list[tuple[str, Path]]:
    found = []
    for name, path in (("FluidR3_GM", SOUNDFONT_DIRS[0] / "FluidR3_GM.sf2"),
                       ("MuseScore_General", SOUNDFONT_DIRS[1] / "MuseScore_General.sf3"),
                       ("TimGM6mb", timgm_path())):
        if path.is_file():
            found.append((name, path))
    return found


@functools.lru_cache(maxsize=None)
def list_kits() -> tuple[Kit, ...]:
    """Every kit installed on this machine that maps at least kick, snare and hi-hat."""
    kits: list[Kit] = []
    for sf_name, path in _gm_soundfonts():
        for preset, preset_name in GM_DRUM_PRESETS.items():
            kits.append(Kit(f"{sf_name}/{preset_name}", "soundfont", path, 128, preset, sf_name))
    for name in ("Black_Pearl_4_LV2", "Red_Zeppelin_4_LV2"):
        path = SOUNDFONT_DIRS[0] / f"{name}.sf2"
        if path.is_file():
            # avldrums kits are single melodic-bank presets laid out on GM drum notes.
            kits.append(Kit(f"avldrums/{name.removesuffix('_LV2')}", "soundfont", path, 0, 0, "avldrums"))
    for xml in installed_hydrogen_kits():
        kits.append(Kit(f"hydrogen/{xml.parent.name}", "hydrogen", xml, family="hydrogen"))
    return tuple(kits)


def kit_has_side_stick(kit: Kit) -> bool:
    """Whether `kit` sounds GM note 37 as a side stick rather than a snare standing in for it.

    A recorded multi-mic kit has no cross-stick take; a soundfont or Hydrogen kit may lack one too.
    Where it does, a side stick in the MIDI sounds as a snare and must be labelled as one.
    """
    if kit.kind == "soundfont":
        return soundfont_note_map(kit).get(37) == 37
    if kit.kind == "hydrogen":
        return bool(hydrogen_kit(kit.path).roles.get("stick"))
    return False


def folder_kits(folders: tuple[Path, ...] | list[Path]) -> tuple[Kit, ...]:
    """The kits in these folders: recorded multi-mic kits (a folder with Samples/<piece>/...) and Hydrogen
    kits (a folder with drumkit.xml), each folder a kit or a folder of kits."""
    kits = []
    for folder in folders:
        folder = Path(folder)
        roots = [folder] if _is_kit(folder) else sorted(p for p in folder.iterdir() if _is_kit(p))
        if not roots:
            raise FileNotFoundError(f"{folder}: no drum kit (a multi-mic kit with Samples/<piece>/..., or a "
                                    "Hydrogen kit with drumkit.xml)")
        for r in roots:
            if (r / "Samples").is_dir():
                kits.append(Kit(f"multimic/{r.name}", "multimic", r, family="multimic"))
            elif hydrogen_kit(r / "drumkit.xml").usable:
                kits.append(Kit(f"hydrogen/{r.name}", "hydrogen", r / "drumkit.xml", family="hydrogen"))
    return tuple(kits)


def _is_kit(folder: Path) -> bool:
    return (folder / "Samples").is_dir() or (folder / "drumkit.xml").is_file()


def random_kit(rng: np.random.Generator, kits: tuple[Kit, ...] | None = None) -> Kit:
    """A kit drawn family first (see FAMILY_WEIGHTS), then uniformly within the family."""
    kits = list_kits() if kits is None else kits
    if not kits:
        raise FluidError("no drum kit installed (fluid-soundfont-gm or hydrogen drumkits)")
    families = sorted({k.family for k in kits})
    weights = np.array([FAMILY_WEIGHTS.get(f, 0.1) for f in families])
    family = families[rng.choice(len(families), p=weights / weights.sum())]
    members = [k for k in kits if k.family == family]
    return members[rng.integers(len(members))]


def _velocity_curve(rng: np.random.Generator):
    """A random velocity response: overall scale, a curve, and a floor (the compression of dynamics)."""
    gamma = rng.uniform(0.6, 1.3)
    scale = rng.uniform(0.85, 1.2)
    floor = rng.uniform(0.0, 25.0)

    def curve(v: np.ndarray) -> np.ndarray:
        out = floor + (127.0 - floor) * (np.asarray(v, float) / 127.0) ** gamma * scale
        return np.clip(np.round(out + rng.normal(0.0, 2.0, np.shape(v))), 1, 127).astype(int)

    return curve


def _group_levels_db(rng: np.random.Generator) -> dict[str, float]:
    return {g: float(rng.uniform(*r)) for g, r in GROUP_LEVEL_DB.items()}


def render_drums(pm: pretty_midi.PrettyMIDI, kit: Kit, rng: np.random.Generator,
                 duration: float | None = None, vary: bool = True) -> np.ndarray:
    """Float32 mono audio at 44.1 kHz of the drum tracks of `pm` played on `kit`.

    Velocities pass a random response curve and each group (kick, snare, hi-hat, toms, cymbals)
    gets a random level and tuning, so that no two renders of a kit balance alike. `vary=False`
    plays the kit as it is (velocities as written, all groups at 0 dB, no tuning).
    """
    notes = remap_to_gm(pm)
    if duration is None:
        duration = (max((n.start for n in notes), default=0.0)) + 2.0
    n_samples = int(np.ceil(duration * SAMPLE_RATE))
    velocities = np.array([n.velocity for n in notes], dtype=int)
    if vary and notes:
        velocities = _velocity_curve(rng)(velocities)
    levels = _group_levels_db(rng) if vary else {g: 0.0 for g in GROUPS}
    tuning = group_tuning(rng) if vary else {g: 0.0 for g in GROUPS}
    if kit.kind == "soundfont":
        return render_soundfont_kit(notes, velocities, levels, tuning, kit, n_samples)
    if kit.kind == "hydrogen":
        return render_hydrogen_kit(notes, velocities, levels, tuning, kit, rng, n_samples)
    if kit.kind == "multimic":
        return render_multimic(notes, velocities, levels, tuning, load_multimic_kit(kit.path), rng, n_samples)
    raise ValueError(f"unknown kit kind {kit.kind!r}")
