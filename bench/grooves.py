"""The beat grooves (not fills) of rendered GMD folders, each source's audio with madmom's activations:
what bench/bars.py and bench/joint_bars.py both measure on."""
from typing import Iterator

import numpy as np

from tatumdrum.evaluation import Track, rendered_tracks
from tatumdrum.features import load_audio


def beat_grooves(folders: list[str], tracker) -> Iterator[tuple[Track, str, np.ndarray, np.ndarray]]:
    """(track, source, audio, madmom's beat and downbeat activations) for every beat groove's drums and mix."""
    for folder in folders:
        for track in rendered_tracks(folder):
            if "_beat_" not in track.name:
                continue
            for source, path in track.audio.items():
                audio = load_audio(path)
                yield track, source, audio, tracker.activations(audio)
