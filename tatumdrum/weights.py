"""Saving and finding trained transcription models; the default one ships inside the package."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from .decisions import GivenThreshold, decide
from .instruments import DrumInstrument, instruments_from_abbrevs
from .model import CRNNConfig, FrameCRNN, TatumCRNN, TatumEnsemble

DEFAULT_MODEL = "crnn.pt"
FORMAT = "tatumdrum-model-1"
# A file of several networks; its own name, so that a version without ensembles refuses it cleanly.
ENSEMBLE_FORMAT = "tatumdrum-ensemble-1"
# A model with a second model for drum stems (`TrainedModel.stem_model`).
ROUTED_FORMAT = "tatumdrum-routed-1"


class ModelFileError(ValueError):
    """A model file that is missing or not a tatumdrum model."""


@dataclass
class TrainedModel:
    """A network with what inference needs to use it: its kind, instruments and threshold."""

    net: TatumCRNN | FrameCRNN | TatumEnsemble
    kind: str  # "tatum" or "frame"
    instruments: tuple[DrumInstrument, ...]
    threshold: float
    info: dict = field(default_factory=dict)
    # One delta per instrument, chosen on validation data (`tatumdrum tune-thresholds`); None: `threshold`
    # for every instrument (v1 and the first v2 files).
    class_thresholds: tuple[float, ...] | None = None
    # A second model for drum stems, and the percussiveness (input_kind.py) from which a file counts as one;
    # None: this model hears every file.
    stem_model: "TrainedModel | None" = None
    stem_percussiveness: float | None = None
    # Deltas on the tatums where another drum is written (decisions.py), chosen on validation data by
    # `tatumdrum tune-thresholds --given`; () in older files.
    given_thresholds: tuple[GivenThreshold, ...] = ()

    def for_input(self, mel: np.ndarray, kind: str = "auto") -> tuple["TrainedModel", str | None]:
        """The model that hears this log-mel spectrogram, and the input kind it was picked for (None: one model)."""
        from .input_kind import input_kind

        if self.stem_model is None:
            return self, None
        if kind == "auto":
            kind = input_kind(mel, self.stem_percussiveness)
        return (self.stem_model if kind == "stem" else self), kind

    def thresholds(self) -> np.ndarray:
        """delta per instrument, (K,)."""
        if self.class_thresholds is not None:
            return np.asarray(self.class_thresholds, dtype=np.float32)
        return np.full(len(self.instruments), self.threshold, dtype=np.float32)

    def onsets(self, phi: np.ndarray, deltas: np.ndarray | None = None) -> np.ndarray:
        """(K, M) bool: where this model writes a stroke, by its deltas (or `deltas`) and given thresholds."""
        return decide(phi, self.instruments, self.thresholds() if deltas is None else deltas, self.given_thresholds)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        torch.save(self._blob(), tmp)
        tmp.replace(path)

    def _blob(self) -> dict:
        if isinstance(self.net, TatumEnsemble):
            networks = {"format": ENSEMBLE_FORMAT,
                        "members": [{"config": m.cfg.to_dict(), "state_dict": _on_cpu(m)} for m in self.net.members]}
        else:
            networks = {"format": FORMAT, "config": self.net.cfg.to_dict(), "state_dict": _on_cpu(self.net)}
        blob = {**networks, "kind": self.kind, "instruments": [i.abbrev for i in self.instruments],
                "threshold": self.threshold, "info": self.info,
                "class_thresholds": None if self.class_thresholds is None else list(self.class_thresholds),
                "given_thresholds": [list(g) for g in self.given_thresholds]}
        if self.stem_model is not None:
            # Its own format name, so that a version without stem models refuses the file cleanly.
            blob.update(format=ROUTED_FORMAT, networks_format=blob["format"], stem=self.stem_model._blob(),
                        stem_percussiveness=self.stem_percussiveness)
        return blob


def bundled_model_path(name: str = DEFAULT_MODEL) -> Path:
    """Path of a model shipped in the package (the repository's models/ folder).

    Installed, models/ is the subpackage `tatumdrum.models`; in a source checkout it sits beside
    the package, so both places are looked at.
    """
    try:
        return Path(str(resources.files("tatumdrum.models").joinpath(name)))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "models" / name


def load_model(path: Path | None = None) -> TrainedModel:
    path = bundled_model_path() if path is None else Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelFileError(f"{path}: not a readable model file ({type(exc).__name__})") from None
    if not isinstance(blob, dict) or blob.get("format") not in (FORMAT, ENSEMBLE_FORMAT, ROUTED_FORMAT):
        raise ModelFileError(f"{path}: not a tatumdrum transcription model")
    return _from_blob(blob, path)


def _from_blob(blob: dict, path: Path) -> TrainedModel:
    stem = None
    if blob["format"] == ROUTED_FORMAT:
        stem = _from_blob(blob["stem"], path)
        blob = {**blob, "format": blob["networks_format"]}
    if blob["format"] == ENSEMBLE_FORMAT:
        net = TatumEnsemble([_network("tatum", m["config"], m["state_dict"]) for m in blob["members"]])
    else:
        net = _network(blob["kind"], blob["config"], blob["state_dict"])
    net.eval()
    instruments = instruments_from_abbrevs(blob["instruments"])
    per_class = blob.get("class_thresholds")
    if per_class is not None and len(per_class) != len(instruments):
        raise ModelFileError(f"{path}: {len(per_class)} class thresholds for {len(instruments)} instruments")
    given = tuple((str(d), str(g), float(t)) for d, g, t in blob.get("given_thresholds", []))
    names = {i.abbrev for i in instruments}
    for drum, other, _ in given:
        if drum not in names or other not in names:
            raise ModelFileError(f"{path}: a given threshold for {drum} on {other}, not among its drums")
    return TrainedModel(net, blob["kind"], instruments, float(blob["threshold"]), blob.get("info", {}),
                        None if per_class is None else tuple(float(t) for t in per_class), stem,
                        None if stem is None else float(blob["stem_percussiveness"]), given)


def _on_cpu(net: torch.nn.Module) -> dict:
    """The weights as CPU tensors, so that a model trained on a GPU loads anywhere."""
    return {k: v.detach().cpu() for k, v in net.state_dict().items()}


def _network(kind: str, config: dict, state_dict: dict) -> TatumCRNN | FrameCRNN:
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
    deltas; the mean of several networks is smoother than any one, so tune the result's thresholds
    (`tatumdrum tune-thresholds`) before using it.
    """
    members: list[TatumCRNN] = []
    for model, name in zip(models, names):
        if model.kind != "tatum":
            raise ModelFileError(f"{name}: a frame-level model; only tatum models can be averaged")
        if model.stem_model is not None:
            raise ModelFileError(f"{name}: holds a mix model and a stem model; average models before joining them")
        _check_same_drums(model, name, models[0], names[0])
        members += list(model.net.members) if isinstance(model.net, TatumEnsemble) else [model.net]
    deltas = np.mean([m.thresholds() for m in models], axis=0)
    return TrainedModel(TatumEnsemble(members), "tatum", models[0].instruments,
                        float(np.mean([m.threshold for m in models])),
                        {"members": [{"name": n, **m.info} for n, m in zip(names, models)]},
                        tuple(round(float(d), 4) for d in deltas))


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
