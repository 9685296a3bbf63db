"""A trained model (torch) as an export that transcribes without torch (runtime.py, onnxruntime).

Each distinct network becomes two ONNX graphs with dynamic lengths: the encoder, log-mel (1, T, F) to
frames (1, T, D), and the decoder, pooled features (1, S, D) to onset logits (1, K, S) and, with a
velocity head, velocity logits. model.json keeps the rest of the model file (routes, policies, info).
"""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

from .runtime import EXPORT_FORMAT
from .weights import ModelFileError, TrainedModel, require_torch

OPSET = 17


def _decoder_module(net):
    """The decoder as a module of its own: features to (logits, velocity logits), or logits alone."""
    torch = require_torch("export")

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, features):
            logits, velocity = self.net.decode(features)
            return (logits, velocity) if velocity is not None else logits

    # In eval mode: the exporter puts a module back in the mode it found it in, and that would switch
    # the network's dropout and batch norm to training.
    return Decoder().eval()


def _to_onnx(module, example, input_name: str, output_names: list[str], output_axis: int) -> bytes:
    """`module` as ONNX bytes, its input's axis 1 and its outputs' `output_axis` of dynamic length."""
    torch = require_torch("export")
    try:
        import onnx  # noqa: F401  (torch's exporter needs it; say which extra brings it)
    except ImportError:
        raise ModelFileError("export needs the onnx package: pip install 'tatumdrum[train]'") from None
    buffer = io.BytesIO()
    axes = {input_name: {1: "steps"}, **{name: {output_axis: "steps"} for name in output_names}}
    with warnings.catch_warnings(), torch.inference_mode():
        # The TorchScript exporter: deprecated (it warns) in favour of torch.export's, which would also
        # need onnxscript; this one needs only onnx, and its graphs are checked against torch on export.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buffer, input_names=[input_name], output_names=output_names,
                          dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


def export_model(model: TrainedModel, path: Path) -> None:
    """Write `model` as an export at `path` (a zip), atomically."""
    torch = require_torch("export")
    networks, routes = model.layout()
    header = {"format": EXPORT_FORMAT, **model.header(), "routes": routes, "networks": []}
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for i, net in enumerate(networks):
                net = net.cpu().eval()
                mel = torch.zeros(1, 200, net.cfg.n_mels)
                frames = net.encoder(mel)
                velocity = net.cfg.velocity
                z.writestr(f"net{i}_encoder.onnx", _to_onnx(net.encoder, mel, "mel", ["frames"], 1))
                z.writestr(f"net{i}_decoder.onnx", _to_onnx(_decoder_module(net), frames[:, :50], "features",
                                                            ["logits", "velocity"] if velocity else ["logits"], 2))
                header["networks"].append({"encoder": f"net{i}_encoder.onnx", "decoder": f"net{i}_decoder.onnx",
                                           "receptive_radius": net.encoder.receptive_radius, "out_dim": net.encoder.out_dim,
                                           "velocity": velocity,
                                           "config": net.cfg.to_dict()})
            z.writestr("model.json", json.dumps(header, indent=1))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
