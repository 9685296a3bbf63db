"""Given thresholds (decisions.py): a drum needs more evidence on the tatums where another drum is written.
Chosen by `tune-thresholds --given` on real audio, kept in the model file, applied by the real pipeline."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
import numpy as np
import pytest
import torch
from tatumdrum.decisions import DecisionPolicy, decide
from tatumdrum.instruments import EIGHT_CLASSES
from tatumdrum.thresholds import Item, counts_with, tune_given
from tatumdrum.weights import ModelFileError, load_model

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "examples" / "groove.wav"
# One eight-class network with its own thresholds (the bundled file holds two models, tuned one by one).
PLAIN = ROOT / "models" / "table2" / "v24_crnn_bigram.pt"
ROW = {i.abbrev: k for k, i in enumerate(EIGHT_CLASSES)}
TRIED_THRESHOLDS = tuple(0.45 if i.abbrev != "SS" else 0.65 for i in EIGHT_CLASSES)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", *args], capture_output=True, text=True, timeout=600)


def test_decide_asks_more_of_a_drum_only_where_the_given_drum_is_written():
    phi = np.zeros((8, 4), np.float32)
    phi[ROW["SS"]] = [0.9, 0.9, 0.5, 0.0]  # the side stick is written on tatums 0 and 1 (threshold 0.65)
    phi[ROW["HH"]] = [0.6, 0.8, 0.6, 0.6]
    phi[ROW["OH"]] = [0.7, 0.0, 0.0, 0.0]
    plain = decide(phi, EIGHT_CLASSES, TRIED_THRESHOLDS)
    assert plain[ROW["HH"]].tolist() == [True, True, True, True]
    rules = (("HH", "SS", 0.75), ("OH", "SS", 0.75))
    ruled = decide(phi, EIGHT_CLASSES, TRIED_THRESHOLDS, rules)
    # Tatum 0: a hi-hat at 0.6 under a written side stick goes; tatum 1: a sure one (0.8) stays;
    # tatum 2: the side stick is not written, so its 0.6 hi-hat stays.
    assert ruled[ROW["HH"]].tolist() == [False, True, True, True]
    assert ruled[ROW["OH"]].tolist() == [False, False, False, False]
    others = [k for k in range(8) if k not in (ROW["HH"], ROW["OH"])]
    assert (ruled[others] == plain[others]).all()


def _item(hh_on_ss: float, hat_played_there: bool) -> Item:
    """16 tatums at 8 per second: hats on every even tatum (phi 0.9), side sticks on 4 and 12 (phi 0.95), and
    a hi-hat phi of `hh_on_ss` on the side sticks, where a hat was played or not."""
    times = np.arange(16) / 8
    phi = np.zeros((8, 16), np.float32)
    phi[ROW["HH"], ::2] = 0.9
    phi[ROW["SS"], [4, 12]] = 0.95
    phi[ROW["HH"], [4, 12]] = hh_on_ss
    hats = [t for t in range(0, 16, 2) if hat_played_there or t not in (4, 12)]
    reference = {"HH": times[hats], "SS": times[[4, 12]]}
    return Item(phi, times, reference)


def test_tune_given_finds_a_rule_only_where_it_helps():
    false_hats = {"a": [_item(0.6, False)] * 3, "b": [_item(0.55, False)]}
    rules, f, without = tune_given(false_hats, EIGHT_CLASSES, TRIED_THRESHOLDS, "HH", "SS")
    # Any threshold above 0.6 and at most 0.9 removes the two false hats; the first such one is chosen.
    assert rules == (("HH", "SS", 0.65), ("OH", "SS", 0.65))
    assert without < 1.0 and f == pytest.approx(1.0)
    assert counts_with(false_hats["a"], EIGHT_CLASSES, TRIED_THRESHOLDS, rules)["HH"].f_measure == pytest.approx(1.0)
    played = {"a": [_item(0.6, True)]}
    assert tune_given(played, EIGHT_CLASSES, TRIED_THRESHOLDS, "HH", "SS")[0] == ()


def test_given_thresholds_are_tuned_saved_and_applied(tmp_path):
    tuned = tmp_path / "tuned.pt"
    result = run("tune-thresholds", str(PLAIN), "-o", str(tuned), "--recordings",
                 str(ROOT / "examples"), "--given", "HH:SS")
    assert result.returncode == 0, result.stderr
    assert "HH where SS is written:" in result.stdout + result.stderr
    model = load_model(tuned)
    hh = model.policy.thresholds[ROW["HH"]]
    assert all(d in ("HH", "OH") and g == "SS" and t > hh for d, g, t in model.policy.given)
    # Applied by the pipeline: the side stick written almost everywhere, and a hi-hat on those tatums
    # only above 0.99. Read back from JSON, with the model's phi.
    thresholds = tuple(0.001 if i.abbrev == "SS" else d for i, d in zip(EIGHT_CLASSES, model.policy.thresholds))
    for name, rules in (("plain", ()), ("ruled", (("HH", "SS", 0.99),))):
        model.policy = DecisionPolicy(EIGHT_CLASSES, thresholds, rules)
        model.save(tmp_path / f"{name}.pt")
        out = tmp_path / f"{name}.json"
        result = run("transcribe", str(CLIP), "-o", str(out), "-m", str(tmp_path / f"{name}.pt"), "--quiet")
        assert result.returncode == 0, result.stderr
    plain, ruled = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("plain", "ruled"))
    assert "given_thresholds" not in plain
    assert ruled["given_thresholds"] == [{"drum": "HH", "given": "SS", "threshold": 0.99}]
    phi = np.asarray(ruled["probabilities"])
    times = np.asarray(ruled["tatum_times"])
    ss = phi[ROW["SS"]] >= 0.001
    expected = (phi[ROW["HH"]] >= hh) & (~ss | (phi[ROW["HH"]] >= 0.99))
    written = np.isin(np.round(times, 6), np.round(ruled["onsets"]["HH"], 6))
    # JSON rounds phi to 4 decimals: tatums that close to a threshold can go either way.
    clear = ((np.abs(phi[ROW["SS"]] - 0.001) > 1e-4) & (np.abs(phi[ROW["HH"]] - hh) > 1e-4)
             & (np.abs(phi[ROW["HH"]] - 0.99) > 1e-4))
    assert clear.mean() > 0.9 and (written[clear] == expected[clear]).all()
    assert 0 < len(ruled["onsets"]["HH"]) < len(plain["onsets"]["HH"])
    assert ruled["onsets"]["BD"] == plain["onsets"]["BD"] and ruled["onsets"]["SD"] == plain["onsets"]["SD"]


def test_bad_given_options_and_files_end_in_one_line(tmp_path):
    out = tmp_path / "bad.pt"
    for given, words in (("XX:SS", "XX:SS"), ("HH:XX", "HH:XX"), ("OH:SS", "scoring group"), ("HH:OH", "own"),
                         ("HH", "GROUP:DRUM")):
        result = run("tune-thresholds", str(PLAIN), "-o", str(out), "--recordings",
                     str(ROOT / "examples"), "--given", given)
        assert result.returncode != 0 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "--given" in result.stderr and words in result.stderr
    assert not out.exists()
    blob = torch.load(PLAIN, map_location="cpu", weights_only=True)
    blob["given_thresholds"] = [["HH", "CB", 0.7]]
    torch.save(blob, tmp_path / "odd.pt")
    with pytest.raises(ModelFileError, match="CB"):
        load_model(tmp_path / "odd.pt")
    result = run("transcribe", str(CLIP), "-o", str(tmp_path / "x.mid"), "-m", str(tmp_path / "odd.pt"))
    assert result.returncode != 0 and len(result.stderr.strip().splitlines()) == 1
    assert "odd.pt" in result.stderr and not (tmp_path / "x.mid").exists()


def test_threshold_option_sets_some_drums_over_the_models_own(tmp_path):
    from tatumdrum.decisions import parse_threshold_option, with_overrides

    assert parse_threshold_option("0.3") == 0.3
    assert parse_threshold_option("HH=0.3, OH=0.5,CY=0.7") == {"HH": 0.3, "OH": 0.5, "CY": 0.7}
    own = np.full(8, 0.4, np.float32)
    # A group name sets its drums, a drum name one drum, in the order given.
    got = with_overrides(EIGHT_CLASSES, own, {"HH": 0.3, "OH": 0.5, "CY": 0.7})
    assert got[ROW["HH"]] == pytest.approx(0.3) and got[ROW["OH"]] == pytest.approx(0.5)
    assert got[ROW["CR"]] == got[ROW["RD"]] == pytest.approx(0.7) and got[ROW["BD"]] == pytest.approx(0.4)
    out = tmp_path / "t.json"
    result = run("transcribe", str(CLIP), "-o", str(out), "--threshold", "TT=0.9,HH=0.3,OH=0.5", "--quiet")
    assert result.returncode == 0, result.stderr
    doc = json.loads(out.read_text())
    bundled = load_model(None)
    heard = bundled.stem_model if doc["input"] == "stem" else bundled
    own = dict(zip((i.abbrev for i in heard.instruments), heard.policy.as_array().tolist()))
    expected = {**{k: round(v, 4) for k, v in own.items()}, "TT": 0.9, "HH": 0.3, "OH": 0.5}
    assert doc["threshold"] == expected
    phi, times = np.asarray(doc["probabilities"]), np.asarray(doc["tatum_times"])
    written = np.isin(np.round(times, 6), np.round(doc["onsets"]["BD"], 6))
    clear = np.abs(phi[ROW["BD"]] - expected["BD"]) > 1e-4
    assert (written[clear] == (phi[ROW["BD"]] >= expected["BD"])[clear]).all() and written.any()
    for value, words in (("XX=0.5", "no drum XX"), ("TT=2", "outside 0-1"), ("abc", "not a number"), ("TT=", "not a number"),
                         ("=0.5", "DRUM=DELTA")):
        bad = tmp_path / "bad.mid"
        result = run("transcribe", str(CLIP), "-o", str(bad), "--threshold", value)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "--threshold" in result.stderr and words in result.stderr
        assert not bad.exists()
