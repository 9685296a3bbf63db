"""Saving and finding trained transcription models; the default one ships inside the package."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .decisions import DecisionPolicy
from .instruments import DrumInstrument, instruments_from_abbrevs

if TYPE_CHECKING:  # torch is the `train` extra: a transcription runs the ONNX export (runtime.py)
    import torch

    from .model import FrameCRNN, TatumCRNN, TatumEnsemble
    from .runtime import OnnxNetwork

DEFAULT_MODEL = "crnn.pt"
# The bundled model as `tatumdrum export` writes it: what `transcribe` and `evaluate` run (onnxruntime).
DEFAULT_EXPORT = "crnn.onnx.zip"
# One format for every model file: the networks, each stored once, and one or two named routes (a route
# is the networks whose phi is averaged, and its decision policy): "all", or "mix" and "stem", where the
# audio's percussiveness picks the route per file (input_kind.py).
FORMAT = "tatumdrum-model-2"
# Files written before it (single networks, ensembles, routed pairs) still load.
OLD_FORMATS = ("tatumdrum-model-1", "tatumdrum-ensemble-1", "tatumdrum-routed-1")


class ModelFileError(ValueError):
    """A model file that is missing or not a tatumdrum model."""


def require_torch(what: str, hint: str = ""):
    """torch, or a one-line error naming the extra that brings it."""
    try:
        import torch
    except ImportError:
        raise ModelFileError(f"{what} needs PyTorch: pip install 'tatumdrum[train]'{hint}") from None
    return torch


@dataclass
class TrainedModel:
    """A network (or several, phi averaged) with what inference needs: its kind, drums and decision policy."""

    net: "TatumCRNN | FrameCRNN | TatumEnsemble | OnnxNetwork"
    kind: str  # "tatum" or "frame"
    instruments: tuple[DrumInstrument, ...]
    policy: DecisionPolicy
    info: dict = field(default_factory=dict)
    # The model for drum stems, and the percussiveness (input_kind.py) from which a file counts as one;
    # None: this model hears every file.
    stem_model: "TrainedModel | None" = None
    stem_percussiveness: float | None = None

    def for_input(self, mel: np.ndarray, kind: str = "auto") -> tuple["TrainedModel", str | None]:
        """The model that hears this log-mel spectrogram, and the input kind it was picked for (None: one model)."""
        from .input_kind import input_kind

        if self.stem_model is None:
            return self, None
        if kind == "auto":
            kind = input_kind(mel, self.stem_percussiveness)
        return (self.stem_model if kind == "stem" else self), kind

    def save(self, path: Path) -> None:
        torch = require_torch(f"saving {path}")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self._blob(), tmp)
        tmp.replace(path)

    def layout(self) -> tuple[list, dict]:
        """The file layout of both formats: the distinct networks, and the routes ("all", or "mix" and
        "stem") that name them by index, each with its decision policy and info."""
        from .model import TatumEnsemble

        networks: list = []

        def index(net) -> int:
            for i, known in enumerate(networks):
                if _same_network(known, net):
                    return i
            networks.append(net)
            return len(networks) - 1

        def route(model: TrainedModel) -> dict:
            ensemble = isinstance(model.net, TatumEnsemble)
            members = list(model.net.members) if ensemble else [model.net]
            return {"networks": [index(m) for m in members], "ensemble": ensemble,
                    "policy": model.policy.to_dict(), "info": model.info}

        routes = {"all": route(self)} if self.stem_model is None else \
            {"mix": route(self), "stem": route(self.stem_model)}
        return networks, routes

    def header(self) -> dict:
        """What both formats store beside the networks and routes."""
        return {"kind": self.kind, "instruments": [i.abbrev for i in self.instruments],
                "stem_percussiveness": self.stem_percussiveness}

    def _blob(self) -> dict:
        networks, routes = self.layout()
        return {"format": FORMAT, **self.header(), "routes": routes,
                "networks": [{"config": n.cfg.to_dict(), "state_dict": _on_cpu(n)} for n in networks]}


def _same_network(a: "torch.nn.Module", b: "torch.nn.Module") -> bool:
    """The same network, also when loaded twice (a route's networks are often another route's too)."""
    if a is b:
        return True
    if type(a) is not type(b) or a.cfg.to_dict() != b.cfg.to_dict():
        return False
    import torch

    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model shipped in the package (the repository's models/ folder).

    Installed, models/ is the subpackage `tatumdrum.models`; in a source checkout it sits beside
    the package, so both places are looked at.
    """
    try:
        return Path(str(resources.files("tatumdrum.models").joinpath(name)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "models" / name


def is_export(path: Path) -> bool:
    """An exported model (`tatumdrum export`): a zip of ONNX networks and model.json. (A torch file is a
    zip too, with other members.)"""
    try:
        with zipfile.ZipFile(path) as z:
            return "model.json" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def load_model(path: Path | None = None) -> TrainedModel:
    """A model file: an export (run by onnxruntime, no torch needed) or a torch file (needs the `train`
    extra). None: the bundled model's export."""
    path = bundled_model_path(DEFAULT_EXPORT) if path is None else Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    if is_export(path):
        from .runtime import load_export

        return load_export(path)
    torch = require_torch(f"{path}: a PyTorch model file", " (or run its export, made by `tatumdrum export`)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, *OLD_FORMATS):
        raise ModelFileError(f"{path}: not a tatumdrum transcription model")
    try:
        return _from_blob(blob) if blob["format"] == FORMAT else _from_old_blob(blob)
    except ValueError as exc:  # a decision policy that does not fit the model's drums
        raise ModelFileError(f"{path}: {exc}") from None


def load_trainable(path: Path) -> TrainedModel:
    """A model file whose networks are torch modules: to tune, average, join, export or train from."""
    if Path(path).is_file() and is_export(Path(path)):
        raise ModelFileError(f"{path}: an export (ONNX) runs but cannot be changed; give the model file (.pt) "
                             "it was exported from")
    return load_model(path)


def _from_blob(blob: dict) -> TrainedModel:
    from .model import TatumEnsemble

    networks = [_network(blob["kind"], n["config"], n["state_dict"]) for n in blob["networks"]]
    return from_layout(blob, networks, TatumEnsemble)


def from_layout(header: dict, networks: list, ensemble_of) -> TrainedModel:
    """A model from its header and routes (`TrainedModel.layout`) and its loaded networks; `ensemble_of`
    joins a route's networks (torch's TatumEnsemble, or the ONNX runtime's)."""
    kind = header["kind"]
    instruments = instruments_from_abbrevs(header["instruments"])

    def route(data: dict) -> TrainedModel:
        members = [networks[i] for i in data["networks"]]
        net = ensemble_of(members) if data["ensemble"] else members[0]
        net.eval()
        return TrainedModel(net, kind, instruments, DecisionPolicy.from_dict(instruments, data["policy"]),
                            data.get("info", {}))

    routes = header["routes"]
    if "all" in routes:
        return route(routes["all"])
    return replace(route(routes["mix"]), stem_model=route(routes["stem"]),
                   stem_percussiveness=float(header["stem_percussiveness"]))


def _from_old_blob(blob: dict) -> TrainedModel:
    """Files of the first format family: one network, an ensemble, or a routed pair (a nested blob)."""
    stem = None
    if blob["format"] == "tatumdrum-routed-1":
        stem = _from_old_blob(blob["stem"])
        blob = {**blob, "format": blob["networks_format"]}
    from .model import TatumEnsemble

    if blob["format"] == "tatumdrum-ensemble-1":
        net = TatumEnsemble([_network("tatum", m["config"], m["state_dict"]) for m in blob["members"]])
    else:
        net = _network(blob["kind"], blob["config"], blob["state_dict"])
    net.eval()
    instruments = instruments_from_abbrevs(blob["instruments"])
    per_class = blob.get("class_thresholds")
    thresholds = [float(blob["threshold"])] * len(instruments) if per_class is None else [float(t) for t in per_class]
    given = tuple((str(d), str(g), float(t)) for d, g, t in blob.get("given_thresholds", []))
    policy = DecisionPolicy(instruments, tuple(thresholds), given)
    return TrainedModel(net, blob["kind"], instruments, policy, blob.get("info", {}), stem,
                        None if stem is None else float(blob["stem_percussiveness"]))


def _on_cpu(net: "torch.nn.Module") -> dict:
    """The weights as CPU tensors, so that a model trained on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def _network(kind: str, config: dict, state_dict: dict) -> "TatumCRNN | FrameCRNN":
    from .model import CRNNConfig, FrameCRNN, TatumCRNN

    net = (TatumCRNN if kind == "tatum" else FrameCRNN)(CRNNConfig.from_dict(config))
    net.load_state_dict(state_dict)
    return net


def _check_same_drums(model: TrainedModel, name: str, reference: TrainedModel, reference_name: str) -> None:
    """Models combined in one file must output the same drums in the same order."""
    if model.instruments != reference.instruments:
        raise ModelFileError(f"{name}: drums {'/'.join(i.abbrev for i in model.instruments)}, not "
                             f"{'/'.join(i.abbrev for i in reference.instruments)} as in {reference_name}")


def ensemble(models: list[TrainedModel], names: list[str]) -> TrainedModel:
    """One model that averages the phi of `models` (tatum models with the same drum classes).

    An ensemble among them contributes its members. Each drum starts from the mean of the members'
    thresholds; the mean of several networks is smoother than any one, so tune the result's thresholds
    (`tatumdrum tune-thresholds`) before using it.
    """
    from .model import TatumEnsemble

    members: list = []
    for model, name in zip(models, names):
        if model.kind != "tatum":
            raise ModelFileError(f"{name}: a frame-level model; only tatum models can be averaged")
        if model.stem_model is not None:
            raise ModelFileError(f"{name}: holds a mix model and a stem model; average models before joining them")
        _check_same_drums(model, name, models[0], names[0])
        members += list(model.net.members) if isinstance(model.net, TatumEnsemble) else [model.net]
    thresholds = np.mean([m.policy.as_array() for m in models], axis=0)
    policy = DecisionPolicy(models[0].instruments, tuple(round(float(d), 4) for d in thresholds))
    return TrainedModel(TatumEnsemble(members), "tatum", models[0].instruments, policy,
                        {"members": [{"name": n, **m.info} for n, m in zip(names, models)]})


def with_stem_model(mix: TrainedModel, stem: TrainedModel, names: tuple[str, str],
                    percussiveness: float) -> TrainedModel:
    """`mix` for every file, but `stem` for the files that sound like a drum stem (input_kind.py).

    Both keep their own thresholds, so tune each on its own kind of audio first
    (`tatumdrum tune-thresholds --sources drums` / `--sources mix`).
    """
    for model, name in zip((mix, stem), names):
        if model.stem_model is not None:
            raise ModelFileError(f"{name}: already holds a stem model")
    _check_same_drums(stem, names[1], mix, names[0])
    info = {**mix.info, "mix_model": names[0], "stem_model": names[1]}
    return replace(mix, info=info, stem_model=replace(stem, info={**stem.info, "name": names[1]}),
                   stem_percussiveness=float(percussiveness))
