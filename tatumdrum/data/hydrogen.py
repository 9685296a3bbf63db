"""Hydrogen drum kits (drumkit.xml with wav/flac/aiff samples in velocity layers) and their sampler."""
from __future__ import annotations

import functools
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pretty_midi

from .drumnotes import NOTE_GROUP
from .sampler import mix_hits, pitch_shift, read_mono
from .synthesis import Kit

HYDROGEN_DIR = Path("/usr/share/hydrogen/data/drumkits")

@dataclass(frozen=True)
class _Layer:
    path: Path
    vmin: float
    vmax: float
    gain: float
    pitch: float


@dataclass(frozen=True)
class _HInstrument:
    name: str
    volume: float
    layers: tuple[_Layer, ...]


@dataclass
class HydrogenKit:
    name: str
    roles: dict[str, list[_HInstrument]]

    @property
    def usable(self) -> bool:
        return all(self.roles.get(r) for r in ("kick", "snare", "hh_closed"))


ROLE_OF_NOTE: dict[int, str] = {
    35: "kick", 36: "kick", 37: "stick", 38: "snare", 40: "snare_rim",
    42: "hh_closed", 44: "hh_pedal", 46: "hh_open",
    41: "tom_low", 43: "tom_low", 45: "tom_mid", 47: "tom_mid", 48: "tom_high", 50: "tom_high",
    49: "crash", 55: "crash", 57: "crash2", 51: "ride", 53: "ride_bell",
}
ROLE_FALLBACKS: dict[str, tuple[str, ...]] = {
    "stick": ("snare_rim", "snare"), "snare_rim": ("snare",), "hh_pedal": ("hh_closed",),
    "hh_open": ("hh_closed",), "tom_low": ("tom_mid", "tom_high"), "tom_mid": ("tom_high", "tom_low"),
    "tom_high": ("tom_mid", "tom_low"), "crash": ("crash2", "ride"), "crash2": ("crash", "ride"),
    "ride": ("ride_bell", "crash"), "ride_bell": ("ride",),
}
# Hand percussion and effects would be wrong stand-ins for any drum-set piece.
_SKIP = re.compile(r"clap|cowbell|tamb|conga|bongo|cajon|djembe|agogo|clave|wood|snap|whistle|zap|\bfx\b|maraca|"
                   r"glass|click\b|shaker|roll|swish|choke|flink|china|\bnone\b|sample:|\bdrum \d|cymbal \d|"
                   r"sangban|dununba|kenkeni")


def classify_instrument(name: str) -> list[str]:
    """Drum-set roles a Hydrogen instrument can play, judged from its name (empty if none)."""
    n = name.lower()
    if _SKIP.search(n) and not re.search(r"rim click", n):
        return []
    if re.search(r"kick|bass ?drum|\bbd\b", n):
        return ["kick"]
    if re.search(r"stick|rim click", n):
        return ["stick"]
    if "snare" in n:
        return ["snare_rim"] if "rim" in n else ["snare"]
    if re.search(r"hat|\bhh\b|hi-hat", n):
        if re.search(r"pedal|\bpd\b", n):
            return ["hh_pedal"]
        if re.search(r"open|\bop\b|semi", n):
            return ["hh_open"]
        if re.search(r"free", n):
            return []
        return ["hh_closed"]
    if re.search(r"\btom", n):
        if re.search(r"floor|low|\blo\b", n):
            return ["tom_low"]
        if re.search(r"mid|\b2\b", n):
            return ["tom_mid"]
        return ["tom_high"]
    if re.search(r"bell|cup", n):
        return ["ride_bell"]
    roles = []
    if "crash" in n:
        roles += ["crash", "crash2"]
    if "ride" in n:
        roles.append("ride")
    if "splash" in n:
        roles.append("crash2")
    return roles


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child_text(elem: ET.Element, name: str) -> str | None:
    for child in elem:
        if _local(child.tag) == name:
            return child.text
    return None


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


@functools.lru_cache(maxsize=None)
def hydrogen_kit(xml: Path) -> HydrogenKit:
    """Parse a Hydrogen drumkit.xml (old single-file and newer layered formats, with or without namespace)."""
    root = ET.parse(xml).getroot()
    folder = Path(xml).parent
    roles: dict[str, list[_HInstrument]] = {}
    for inst in root.iter():
        if _local(inst.tag) != "instrument":
            continue
        name = _child_text(inst, "name") or ""
        wanted = classify_instrument(name)
        if not wanted:
            continue
        layers = []
        for layer in inst.iter():
            if _local(layer.tag) != "layer":
                continue
            fname = _child_text(layer, "filename")
            if fname and (folder / fname).is_file():
                layers.append(_Layer(folder / fname, _float(_child_text(layer, "min"), 0.0),
                                     _float(_child_text(layer, "max"), 1.0), _float(_child_text(layer, "gain"), 1.0),
                                     _float(_child_text(layer, "pitch"), 0.0)))
        fname = _child_text(inst, "filename")
        if not layers and fname and (folder / fname).is_file():
            layers.append(_Layer(folder / fname, 0.0, 1.0, 1.0, 0.0))
        if not layers:
            continue
        entry = _HInstrument(name, _float(_child_text(inst, "volume"), 1.0), tuple(layers))
        for role in wanted:
            roles.setdefault(role, []).append(entry)
    return HydrogenKit(folder.name, roles)


@functools.lru_cache(maxsize=512)
def _load_sample(path: Path) -> np.ndarray:
    """A sample as mono float32 at 44.1 kHz, its leading silence cut so that it sounds at the note time."""
    audio = read_mono(path)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak > 0:
        start = int(np.argmax(np.abs(audio) > peak * 1e-3))
        audio = audio[max(start - 8, 0):]
    return np.ascontiguousarray(audio, dtype=np.float32)


def _choose_layer(inst: _HInstrument, velocity: float, rng: np.random.Generator) -> _Layer:
    fitting = [layer for layer in inst.layers if layer.vmin - 1e-6 <= velocity <= layer.vmax + 1e-6]
    if not fitting:
        centre = np.array([(layer.vmin + layer.vmax) / 2 for layer in inst.layers])
        return inst.layers[int(np.argmin(np.abs(centre - velocity)))]
    # Kits that stack several samples on one range mean them as round robin.
    return fitting[rng.integers(len(fitting))]


def _resolve_roles(kit: HydrogenKit, rng: np.random.Generator) -> dict[str, _HInstrument]:
    """One instrument per role, taking the role's fallbacks and then a donor kit for missing pieces."""
    chosen: dict[str, _HInstrument] = {}
    # Sorted: a set's order changes with each process's string hashing, and so would the draws.
    roles = sorted(set(ROLE_OF_NOTE.values()))
    for role in roles:
        for candidate in (role,) + ROLE_FALLBACKS.get(role, ()):
            options = kit.roles.get(candidate)
            if options:
                chosen[role] = options[rng.integers(len(options))]
                break
    missing = [r for r in roles if r not in chosen]
    if missing:
        # Kits without toms or cymbals (electronic ones) borrow them from another kit, as a hybrid kit would.
        donors = list(installed_hydrogen_kits().values())
        for role in missing:
            pool = [inst for d in donors for inst in d.roles.get(role, [])]
            if pool:
                chosen[role] = pool[rng.integers(len(pool))]
    return chosen


def render_hydrogen_kit(notes: list[pretty_midi.Note], velocities: np.ndarray, levels: dict[str, float],
                         tuning: dict[str, float], kit: Kit, rng: np.random.Generator, n_samples: int) -> np.ndarray:
    instruments = _resolve_roles(hydrogen_kit(kit.path), rng)
    pitched: dict[tuple[Path, float], np.ndarray] = {}
    hits = []
    for n, v in zip(notes, velocities):
        role, group = ROLE_OF_NOTE.get(n.pitch), NOTE_GROUP.get(n.pitch)
        if role is None or group is None or role not in instruments:
            continue
        inst = instruments[role]
        vel = float(v) / 127.0
        layer = _choose_layer(inst, vel, rng)
        key = (layer.path, layer.pitch + tuning[group])
        if key not in pitched:
            pitched[key] = pitch_shift(_load_sample(layer.path), key[1])
        # Hydrogen scales each hit linearly with velocity on top of the layer choice.
        gain = vel * layer.gain * inst.volume * 10 ** (levels[group] / 20.0)
        hits.append((n.start, n.pitch, pitched[key], gain))
    return mix_hits(hits, n_samples)


@functools.lru_cache(maxsize=None)
def installed_hydrogen_kits() -> dict[Path, HydrogenKit]:
    """The usable Hydrogen kits of Debian's hydrogen-drumkits, by drumkit.xml, in name order."""
    found = {}
    for xml in sorted(HYDROGEN_DIR.glob("*/drumkit.xml")):
        try:
            kit = hydrogen_kit(xml)
        except (ET.ParseError, OSError):
            continue
        if kit.usable:
            found[xml] = kit
    return found
