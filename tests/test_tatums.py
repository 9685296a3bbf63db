"""Tatums from beats (section IV-A): interpolation, eq. 1's spans, extension over the audio, quantisation."""
from __future__ import annotations

import numpy as np
import pytest

from tatumdrum.tatums import (BeatGrid, extend_beats, interpolate_tatums, quantize_to_tatums, tatum_boundaries,
                              tatum_frame_spans)


def test_interpolate_tatums_splits_each_beat_evenly_and_extends_the_last():
    beats = np.array([1.0, 2.0, 2.5])
    t = interpolate_tatums(beats, 4)
    np.testing.assert_allclose(t, [1.0, 1.25, 1.5, 1.75, 2.0, 2.125, 2.25, 2.375, 2.5, 2.625, 2.75, 2.875])
    np.testing.assert_allclose(interpolate_tatums(beats, 3)[:3], [1.0, 1 + 1 / 3, 1 + 2 / 3])


def test_tatum_boundaries_follow_eq1_edges():
    b = tatum_boundaries(np.array([0.0, 1.0, 3.0]))
    # b_0 = b_1 and b_{M+1} = b_M: the first span starts at the first tatum, the last ends at the last.
    np.testing.assert_allclose(b, [0.0, 0.5, 2.0, 3.0])


def test_spans_never_empty_at_fast_tempo():
    tatums = np.array([0.100, 0.103, 0.106, 0.109])
    spans = tatum_frame_spans(tatums, fps=100.0, n_frames=50)
    assert np.all(spans[:, 1] > spans[:, 0])


def test_extend_beats_covers_the_audio_and_continues_the_metre():
    grid = BeatGrid(np.array([1.0, 1.5, 2.0, 2.5]), np.array([1, 2, 3, 4]))
    ext = extend_beats(grid, 4.0)
    assert ext.times[0] == pytest.approx(0.0) and ext.times[-1] == pytest.approx(4.0)
    assert ext.positions[:3].tolist() == [3, 4, 1]


def test_quantize_to_nearest_tatum():
    tatums = np.array([0.0, 0.1, 0.2, 0.3])
    assert quantize_to_tatums(np.array([-0.5, 0.04, 0.06, 0.29, 5.0]), tatums).tolist() == [0, 0, 1, 3, 3]
