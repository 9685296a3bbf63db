"""The CRNN (model.py): eq. 1's max-pooling by hand, chunked encoding, output shapes."""
from __future__ import annotations

import numpy as np
import torch

from tatumdrum.model import ConvEncoder, CRNNConfig, TatumCRNN, encode_in_chunks, tatum_max_pool
from tatumdrum.tatums import tatum_frame_spans


def test_tatum_max_pool_matches_hand_computed_eq1():
    frames = torch.tensor([[1.0, 0.0], [5.0, 1.0], [2.0, 7.0], [0.0, 3.0], [4.0, 4.0], [9.0, 2.0]])
    # tatums at frames 0, 2 and 5 (fps = 1): boundaries 0, 1, 3.5, 5 -> spans [0,1), [1,4), [4,6)
    spans = torch.from_numpy(tatum_frame_spans(np.array([0.0, 2.0, 5.0]), fps=1.0, n_frames=6)).long()
    assert spans.tolist() == [[0, 1], [1, 4], [4, 6]]
    g = tatum_max_pool(frames, spans)
    assert g.tolist() == [[1.0, 0.0], [5.0, 7.0], [9.0, 4.0]]


def test_encoder_in_chunks_equals_one_pass():
    torch.manual_seed(0)
    enc = ConvEncoder(CRNNConfig()).eval()
    mel = torch.rand(1000, 80)
    with torch.no_grad():
        whole = enc(mel[None])[0]
        chunked = encode_in_chunks(enc, mel, chunk_frames=137)
    torch.testing.assert_close(whole, chunked, rtol=1e-4, atol=1e-5)


def test_crnn_outputs_one_probability_per_drum_and_tatum():
    net = TatumCRNN(CRNNConfig(n_instruments=4)).eval()
    mel = torch.rand(2, 300, 80)
    tatums = np.arange(0.1, 2.9, 0.125)
    spans = [torch.from_numpy(tatum_frame_spans(tatums, 100.0, 300)).long()] * 2
    assert net(mel, spans).shape == (2, 4, len(tatums))
