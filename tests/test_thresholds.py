"""tune-thresholds: one onset threshold per drum, chosen, saved and applied."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tatumdrum.decisions import DecisionPolicy
from tatumdrum.weights import load_model


def test_per_drum_thresholds_are_tuned_saved_and_applied(tmp_path):
    """tune-thresholds on annotated audio writes a model whose per-drum thresholds decide the onsets."""
    import json

    from typer.testing import CliRunner

    from tatumdrum.cli import app
    from tatumdrum.metrics import OnsetCounts
    from tatumdrum.thresholds import TRIED_THRESHOLDS, choose

    examples = Path(__file__).resolve().parents[1] / "examples"
    # One eight-class network (the bundled file holds a stem and a mix model, each tuned on its own audio).
    plain = examples.parent / "models" / "table2" / "v24_crnn_bigram.pt"
    tuned = tmp_path / "tuned.pt"
    result = CliRunner().invoke(app, ["tune-thresholds", str(plain), "-o", str(tuned),
                                      "--recordings", str(examples)])
    assert result.exit_code == 0, result.output
    model = load_model(tuned)
    assert len(model.policy.thresholds) == len(model.instruments)
    assert all(d in TRIED_THRESHOLDS for d in model.policy.thresholds)
    # Open and closed hi-hat share the HH group's threshold.
    abbrevs = [i.abbrev for i in model.instruments]
    assert model.policy.thresholds[abbrevs.index("OH")] == model.policy.thresholds[abbrevs.index("HH")]
    # Applied per drum: make the thresholds very different and read the score back from JSON.
    model.policy = DecisionPolicy(model.instruments, tuple(0.05 if a == "HH" else 0.95 for a in abbrevs))
    model.save(tmp_path / "odd.pt")
    out = tmp_path / "odd.json"
    result = CliRunner().invoke(app, ["transcribe", str(examples / "groove.wav"), "-o", str(out), "-m",
                                      str(tmp_path / "odd.pt"), "--quiet"])
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["threshold"]["HH"] == 0.05 and doc["threshold"]["BD"] == 0.95
    phi = np.asarray(doc["probabilities"])
    for k, abbrev in enumerate(abbrevs):
        # (JSON rounds phi to 4 decimals; no tatum sits that close to these thresholds here.)
        assert len(doc["onsets"][abbrev]) == int(np.sum(phi[k] >= doc["threshold"][abbrev]))
    assert len(doc["onsets"]["HH"]) > 0
    # choose(): the threshold with the best mean F over the sets, each set one vote.
    a = {0.3: {"BD": OnsetCounts(9, 10, 10)}, 0.5: {"BD": OnsetCounts(8, 8, 10)}}
    b = {0.3: {"BD": OnsetCounts(5, 20, 10)}, 0.5: {"BD": OnsetCounts(9, 10, 10)}}
    assert choose([a, b])["BD"][0] == 0.5 and choose([a])["BD"][0] == 0.3
