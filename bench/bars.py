"""Bars benchmark: beat and downbeat F (mir_eval, +-70 ms) on rendered GMD grooves (beats, not fills), as
drum stems and mixes: tatumdrum's tracker (NUM_TEMPI tempo states), madmom's default downbeat decoder
(60) on the same activations, and the downbeats as written after the drums' bar correction.

    python bench/bars.py FOLDER      # a build-dataset --keep-audio split, rendered full length

One row per file, then the means per source, the files whose bar lines are all wrong (downbeat F 0),
and how often the correction changed the bars.
"""
import sys
import numpy as np
from madmom.features.downbeats import DBNDownBeatTrackingProcessor
from tatumdrum.beats import BEAT_FPS
from tatumdrum.evaluation import beat_f, rendered_tracks
from tatumdrum.features import load_audio
from tatumdrum.inference import Transcriber
from tatumdrum.tatums import BeatGrid, extend_beats

folder = sys.argv[1]
tr = Transcriber.load()
tracker = tr.beat_tracker
default = DBNDownBeatTrackingProcessor(beats_per_bar=[3, 4], fps=BEAT_FPS)
rows = []
for track in rendered_tracks(folder):
    if "_beat_" not in track.name:
        continue
    for src, path in track.audio.items():
        audio = load_audio(path)
        act = tracker.activations(audio)
        ours = tracker(audio)
        b = default(act)
        dflt = BeatGrid(b[:, 0], b[:, 1].astype(int))
        score, _ = tr.transcribe_audio(audio, ours)
        r = (track.name, src) + beat_f(track.beats, ours) + beat_f(track.beats, dflt) + (beat_f(track.beats, score.beats)[1],)
        rows.append(r)
        print(*r, flush=True)
arr = np.array([r[2:] for r in rows])
for src in ("drums", "mix"):
    a = np.array([r[2:] for r in rows if r[1] == src])
    print(src, len(a), "ours beat %.3f downbeat %.3f | madmom default beat %.3f downbeat %.3f | written downbeat %.3f" % tuple(a.mean(axis=0)))
    print(src, "files with all bars wrong (downbeat F 0): ours %d, default %d, written %d" % ((a[:, 1] == 0).sum(), (a[:, 3] == 0).sum(), (a[:, 4] == 0).sum()))
    print(src, "files where the correction made bars worse than tracked: %d, better: %d" % ((a[:, 4] < a[:, 1] - 1e-9).sum(), (a[:, 4] > a[:, 1] + 1e-9).sum()))
