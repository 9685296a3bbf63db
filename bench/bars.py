"""Bars benchmark: beat and downbeat F (mir_eval, +-70 ms) on rendered GMD grooves (beats, not fills), as
drum stems and mixes, with the time each decoder takes on the same activations:

- tatumdrum: madmom's downbeat DBN with its default 60 tempi, decoded by tatumdrum.dbn;
- madmom 60: madmom's own DBNDownBeatTrackingProcessor with the same settings (must give the same beats);
- madmom 30: the same with 30 tempo states, the decoder of tatumdrum up to v2.9;
- written: the downbeats tatumdrum writes with `--meter auto` (the drums' bar correction; off by default).

    python bench/bars.py FOLDER [FOLDER ...]   # build-dataset --keep-audio splits, rendered full length

One row per file, then per source the means, the files whose bar lines are all wrong (downbeat F 0),
and the decoders' total seconds.
"""
import sys
import time

import numpy as np
from madmom.features.downbeats import DBNDownBeatTrackingProcessor

from grooves import beat_grooves
from tatumdrum.beats import BEAT_FPS, BeatTrackingError
from tatumdrum.evaluation import beat_f
from tatumdrum.inference import Transcriber
from tatumdrum.tatums import BeatGrid


def f_measures(reference: BeatGrid, beats: np.ndarray) -> tuple[float, float]:
    """(beat F, downbeat F); a decoder that finds fewer than two beats scores 0."""
    if len(beats) < 2:
        return 0.0, 0.0
    return beat_f(reference, BeatGrid(beats[:, 0], beats[:, 1].astype(int)))


transcriber = Transcriber.load(correct_bars=True)  # the written bars of --meter auto
tracker = transcriber.beat_tracker
decoders = {"tatumdrum": tracker.decode,
            "madmom 60": DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], min_bpm=55.0, max_bpm=215.0, fps=BEAT_FPS),
            "madmom 30": DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], min_bpm=55.0, max_bpm=215.0, fps=BEAT_FPS,
                                                      num_tempi=30)}
tracker._decoder(np.random.default_rng(0).uniform(0, 0.5, (500, 2)))  # load the compiled decoder before timing it
rows = []
for track, source, audio, activations in beat_grooves(sys.argv[1:], tracker):
    row = {"name": track.name, "source": source, "seconds": len(audio) / 44100}
    for name, decode in decoders.items():
        start = time.perf_counter()
        beats = decode(activations)
        row[name + " s"] = time.perf_counter() - start
        row[name] = f_measures(track.beats, beats)
        row[name + " beats"] = beats
    row["same"] = np.array_equal(row["tatumdrum beats"], row["madmom 60 beats"])
    try:
        score, _ = transcriber.transcribe_audio(audio, None)
        row["written"] = beat_f(track.beats, score.beats)[1]
    except BeatTrackingError:
        row["written"] = 0.0
    rows.append(row)
    print(track.name, source, *(f"{name} {row[name][0]:.3f}/{row[name][1]:.3f}" for name in decoders),
          f"written {row['written']:.3f}", flush=True)
for source in ("drums", "mix"):
    mine = [r for r in rows if r["source"] == source]
    print(f"\n{source}: {len(mine)} files, {sum(r['seconds'] for r in mine) / 60:.1f} minutes")
    for name in decoders:
        f = np.array([r[name] for r in mine])
        print(f"  {name}: beat F {f[:, 0].mean():.3f}, downbeat F {f[:, 1].mean():.3f}, "
              f"all bars wrong {int((f[:, 1] == 0).sum())}, decoding {sum(r[name + ' s'] for r in mine):.1f} s")
    written = np.array([r["written"] for r in mine])
    print(f"  written with --meter auto: downbeat F {written.mean():.3f}, all bars wrong {int((written == 0).sum())}")
print(f"\ntatumdrum's beats equal madmom 60's on {sum(r['same'] for r in rows)} of {len(rows)} files")
total = {name: sum(r[name + " s"] for r in rows) for name in decoders}
print(f"\ndecoding time, all files: tatumdrum / madmom 60 = {total['tatumdrum'] / total['madmom 60']:.2f}, "
      f"tatumdrum / madmom 30 = {total['tatumdrum'] / total['madmom 30']:.2f}")
