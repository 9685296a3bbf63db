"""The selection table of the model rules: BD+SD+HH F with given beats on rendered validation pieces
(drums and mixes, from their stored spectrograms) and on annotated recordings (stems and raw sums),
their mean, and F per drum group. Each model decides with its own thresholds and rules.

    python bench/selection.py --valid data_v3/validation --recordings MDB_DEV models/crnn.pt runs/x32_t.pt

"validation mean" in docs/experiments.md is the "mean" column: the four BD+SD+HH cells, weighted alike.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tatumdrum.metrics import OnsetCounts  # noqa: E402
from tatumdrum.thresholds import counts_with, recorded_items, rendered_items  # noqa: E402
from tatumdrum.weights import load_model  # noqa: E402

GROUPS = ("BD", "SD", "HH", "TT", "CY")


def _counts(model, items) -> dict[str, OnsetCounts]:
    return counts_with(items, model.instruments, model.policy.thresholds, model.policy.given)


def cells(path: Path, valid: Path | None, recordings: Path | None, max_pieces: int) -> dict[str, dict[str, OnsetCounts]]:
    """Counts per set ("valid drums", "valid mix", "rec drums", "rec mix") and scoring group."""
    model = load_model(path)
    out = {}
    for source in ("drums", "mix"):
        # A routed file (a stem model and a mix model) hears each source with the model meant for it.
        heard = model.stem_model if source == "drums" and model.stem_model is not None else model
        if valid is not None:
            out[f"valid {source}"] = _counts(heard, rendered_items(heard, valid, max_pieces, (source,)))
        if recordings is not None:
            out[f"rec {source}"] = _counts(heard, recorded_items(heard, recordings, (source,)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--valid", type=Path, help="build-dataset validation pieces")
    ap.add_argument("--recordings", type=Path, help="annotated recordings (MDB Drums layout)")
    ap.add_argument("--max-pieces", type=int, default=124, help="first renders used, as tune-thresholds")
    args = ap.parse_args()
    for path in args.models:
        table = cells(path, args.valid, args.recordings, args.max_pieces)
        means = [100 * c["all"].f_measure for c in table.values()]
        print(f"\n{path}: mean BD+SD+HH F {sum(means) / len(means):.2f}")
        print("| set | BD+SD+HH | kit | " + " | ".join(GROUPS) + " | TT false / true |")
        print("|---|---|---|" + "---|" * len(GROUPS) + "---|")
        for name, c in table.items():
            groups = " | ".join(f"{100 * c[g].f_measure:.1f}" if g in c else "" for g in GROUPS)
            tt = c.get("TT", OnsetCounts())
            print(f"| {name} | {100 * c['all'].f_measure:.1f} | {100 * c['kit'].f_measure:.1f} | {groups} | "
                  f"{tt.estimated - tt.correct} / {tt.correct} |")


if __name__ == "__main__":
    main()
