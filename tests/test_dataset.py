"""Training crops: remixing in the mel domain, drum levels, band EQ, negative and balanced crops."""
from __future__ import annotations

import numpy as np

from tatumdrum.dataset import remix_mel
from tatumdrum.features import log_mel
from tatumdrum.instruments import SEVEN_CLASSES
from tatumdrum.tatums import BeatGrid

SR = 44100


def test_remix_adds_band_power_and_gain_in_the_mel_domain():
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    drums = log_mel((np.sin(2 * np.pi * 100 * t) * (t % 0.5 < 0.05)).astype(np.float32))
    band = log_mel((0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    only_drums = remix_mel(drums, band, np.random.default_rng(1), 0.0, None)
    with_band = remix_mel(drums, band, np.random.default_rng(1), 0.0, 0.0)
    assert with_band.shape == drums.shape and np.all(np.isfinite(with_band))
    assert np.all(with_band >= only_drums - 1e-5)  # power only adds
    louder_band = remix_mel(drums, band, np.random.default_rng(1), -20.0, 0.0)
    drum_bins = slice(0, 8)
    assert louder_band[:, drum_bins].mean() < with_band[:, drum_bins].mean()
    assert rng is not None


def _two_stem_piece():
    """A 4-s v2 piece whose drums (100 Hz clicks) and band (a 3 kHz tone) sit in separate mel bins."""
    from tatumdrum.dataset import Piece

    t = np.arange(4 * SR) / SR
    drums = log_mel((np.sin(2 * np.pi * 100 * t) * (t % 0.5 < 0.05)).astype(np.float32)).astype(np.float16)
    band = log_mel((0.3 * np.sin(2 * np.pi * 3000 * t)).astype(np.float32)).astype(np.float16)
    grid = BeatGrid.regular(120.0, 8)
    return Piece("p", {"drums": drums, "mix": drums, "band": band}, np.arange(32) * 0.125,
                 np.zeros((7, 32), np.uint8), np.full(32, 16), np.arange(0, 32, 16), {}, grid, 4, SEVEN_CLASSES)


def test_remix_crops_take_their_drum_level_from_the_range_asked_for():
    from tatumdrum.dataset import source_mel

    piece = _two_stem_piece()
    drums = piece.mels["drums"]

    def drum_to_band(level: float) -> float:
        mel = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(2), (level, level))
        return float(np.expm1(mel[:, :12]).mean() / np.expm1(mel[:, 40:]).mean())

    # The same draw of EQ and gain; only the drum level moves, by the range given (20 dB: 10x).
    low, mid, high = drum_to_band(-20.0), drum_to_band(0.0), drum_to_band(20.0)
    assert 5 * low < mid and 5 * mid < high


def test_band_eq_colours_the_band_apart_from_the_drums():
    from tatumdrum.dataset import source_mel

    piece = _two_stem_piece()
    drums = piece.mels["drums"]

    def log_balance(band_eq: float, seed: int) -> float:
        mel = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(seed), (0.0, 0.0), band_eq)
        return float(np.log(np.expm1(mel[:, :12]).mean() / np.expm1(mel[:, 40:]).mean()))

    # The common EQ already tilts drums against band; a band EQ of its own widens that spread
    # (two independent curves instead of one), and never touches crops when it is off.
    common = np.std([log_balance(0.0, seed) for seed in range(200)])
    own = np.std([log_balance(1.0, seed) for seed in range(200)])
    assert own > 1.15 * common  # 1.25 with these seeds; exactly 1 if the band EQ did nothing
    plain = source_mel(piece, "remix", 0, len(drums), np.random.default_rng(5), (0.0, 0.0))
    assert np.array_equal(plain, source_mel(piece, "remix", 0, len(drums), np.random.default_rng(5), (0.0, 0.0), 0.0))


def test_negative_crops_have_empty_scores_and_no_attacks():
    from tatumdrum.dataset import Piece, make_batch, steady_sound
    from tatumdrum.features import log_mel

    rng = np.random.default_rng(0)
    for _ in range(8):
        x = steady_sound(3 * 44100, rng)
        assert x.dtype == np.float32 and np.all(np.isfinite(x))
        # Steady: the level of what is above the bass (first difference) never jumps; a stroke rises by
        # tens of dB within 20 ms.
        hf = np.diff(x.astype(np.float64))
        rms = np.sqrt(np.mean(hf[: len(hf) // 441 * 441].reshape(-1, 441) ** 2, axis=1))
        assert np.max(20 * np.log10(rms[2:] / rms[:-2])) < 6.0
    score = np.zeros((7, 64), np.uint8)
    score[0, ::4] = 1
    grid = BeatGrid(np.arange(17) * 0.5, np.arange(17) % 4 + 1)
    mel = np.full((900, 80), 0.5, np.float16)
    piece = Piece("p", {"drums": mel, "mix": mel, "band": mel}, np.arange(64) * 0.125, score,
                  np.full(64, 16), np.arange(0, 64, 16), {}, grid, 4, SEVEN_CLASSES, score * 100)
    batch = make_batch([piece], 8, 32, rng, ("drums", "mix", "remix"), negatives=1.0)
    assert batch.targets.sum() == 0 and batch.velocities.sum() == 0
    assert make_batch([piece], 8, 32, rng, ("drums", "mix", "remix"), negatives=0.0).targets.sum() > 0


def test_balanced_crops_hold_a_stroke_of_the_drawn_class():
    from tatumdrum.dataset import Piece, make_batch, pieces_by_class

    grid = BeatGrid(np.arange(33) * 0.5, np.arange(33) % 4 + 1)
    mel = np.full((1700, 80), 0.5, np.float16)
    common = np.zeros((7, 128), np.uint8)
    common[0, ::4] = 1  # a kick on every beat
    rare = common.copy()
    rare[4, 120] = 1  # one tom stroke, in the last bar
    pieces = [Piece(f"p{i}", {"drums": mel, "mix": mel}, np.arange(128) * 0.125, s, np.full(128, 16),
                    np.arange(0, 128, 16), {}, grid, 4, SEVEN_CLASSES, s * 100)
              for i, s in enumerate([common] * 9 + [rare])]
    by_class = pieces_by_class(pieces)
    assert by_class[0].tolist() == list(range(10)) and by_class[4].tolist() == [9] and by_class[1].size == 0
    toms = [make_batch(pieces, 16, 32, np.random.default_rng(seed), ("drums", "mix"), balance=share,
                       by_class=by_class).targets[:, 4].sum().item() for share in (0.0, 1.0) for seed in range(5)]
    # Plain crops find the one tom stroke in about 1 of 40 crops; class-first crops in every crop drawn
    # for the toms: half of them, as only the kick and the toms have strokes here.
    assert sum(toms[:5]) < 10 and sum(toms[5:]) > 20


def test_a_build_stopped_midway_leaves_a_temporary_file_that_loading_skips(tiny_dataset, tmp_path):
    import shutil

    from tatumdrum.dataset import load_pieces

    folder = tmp_path / "train"
    shutil.copytree(tiny_dataset / "train", folder)
    (folder / ".piece9.tmp.npz").write_bytes(b"PK\x03\x04 cut short")
    assert len(load_pieces(folder)) == len(list((tiny_dataset / "train").glob("*.npz")))
