"""Does LM regularisation make transcriptions more 'natural'? LM perplexity of each model's scores.

    python bench/naturalness.py /path/to/mdb-dev -m models/table2/crnn_none.pt -m models/table2/crnn_bigram.pt

For every track of an MDB-layout folder (given beats, drums-only and mix audio) it transcribes with
each model and reports the bundled bi-gram and GRU language models' per-tatum perplexity of the
estimated scores, next to that of the annotated score quantised to the same tatums, and the number
of onsets per instrument. A regulariser that works pulls the estimates' perplexity towards the
reference's without inflating onset counts.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tatumdrum.data.gmd import quantize_onsets  # noqa: E402
from tatumdrum.evaluation import mdb_tracks  # noqa: E402
from tatumdrum.features import load_audio  # noqa: E402
from tatumdrum.inference import Transcriber  # noqa: E402
from tatumdrum.lm import load_language_model, perplexity  # noqa: E402
from tatumdrum.tatums import extend_beats  # noqa: E402
from tatumdrum.weights import bundled_model_path  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mdb", type=Path)
    ap.add_argument("-m", "--model", type=Path, action="append", required=True)
    args = ap.parse_args()
    lms = {name: load_language_model(bundled_model_path(f"lm/{name}.pt")) for name in ("bigram", "gru")}
    transcribers = {p.stem: Transcriber.load(p) for p in args.model}
    scores: dict[str, list] = {"reference": []}
    for track in mdb_tracks(args.mdb):
        for source, path in track.audio.items():
            audio = load_audio(path)
            beats = extend_beats(track.beats, len(audio) / 44100)
            ref, _ = quantize_onsets([track.reference[k] for k in ("BD", "SD", "HH")], beats)
            scores["reference"].append(ref)
            for name, transcriber in transcribers.items():
                scores.setdefault(name, []).append(transcriber.transcribe_audio(audio, beats)[0])
    print("| scores | bi-gram perplexity | GRU perplexity | BD | SD | HH onsets |")
    print("|---|---|---|---|---|---|")
    for name, items in scores.items():
        counts = np.sum([s.onsets.sum(axis=1) for s in items], axis=0)
        ppl = [perplexity(lm, items) for lm in lms.values()]
        print(f"| {name} | {ppl[0]:.3f} | {ppl[1]:.3f} | " + " | ".join(str(int(c)) for c in counts) + " |")


if __name__ == "__main__":
    main()
