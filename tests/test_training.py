"""`train` runs the real loop on small real spectrograms: it learns, checkpoints, resumes and exports."""
import json
import numpy as np
import pytest
import torch
from tatumdrum.dataset import load_pieces, make_batch
from tatumdrum.training import TrainConfig, _mean_f, train
from tatumdrum.weights import load_model


def test_batches_are_bar_aligned_crops(tiny_dataset):
    pieces = load_pieces(tiny_dataset / "train")
    batch = make_batch(pieces, 3, 32, np.random.default_rng(0))
    assert batch.targets.shape == (3, 3, 32) and batch.bar_lengths.shape == (3, 32)
    assert set(batch.bar_lengths.unique().tolist()) == {16}
    for spans in batch.spans:
        assert spans.shape == (32, 2) and int(spans[:, 1].max()) <= batch.mel.shape[1]
    # bar-aligned: each crop starts with a downbeat where the bass drum of the fixture plays
    assert batch.targets[:, 0, 0].sum() == 3


def test_train_learns_checkpoints_and_resumes(tiny_dataset, tmp_path):
    out = tmp_path / "m.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), epochs=2, steps_per_epoch=15, batch_size=4,
                      crop_tatums=32, channels=(8, 8), gru_hidden=16, lr=3e-3)
    state = train(cfg)
    assert state["epoch"] == 2 and out.is_file() and out.with_suffix(".ckpt").is_file()
    first, last = state["history"][0]["l_tran"], state["history"][-1]["l_tran"]
    assert last < first
    # Resume: asking for 3 epochs continues from the checkpoint and runs one more.
    cfg.epochs = 3
    state = train(cfg)
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    model = load_model(out)
    assert model.kind == "tatum" and model.policy.thresholds == (0.2,) * len(model.instruments)
    assert "valid" in model.info and json.loads(out.with_suffix(".history.json").read_text())["epoch"] == 3


def test_a_run_continued_from_a_copied_checkpoint_writes_its_own_model(tiny_dataset, tmp_path):
    import shutil

    first = tmp_path / "first.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(first), epochs=1, steps_per_epoch=5, batch_size=2,
                      crop_tatums=32, channels=(8, 8), gru_hidden=16)
    train(cfg)
    # The recipe of models/CARD.md: copy a checkpoint, then continue it under a new name.
    second = tmp_path / "second.pt"
    shutil.copy(first.with_suffix(".ckpt"), second.with_suffix(".ckpt"))
    cfg.out, cfg.epochs = str(second), 2
    state = train(cfg)
    assert [h["epoch"] for h in state["history"]] == [1, 2]
    assert second.is_file() and load_model(second).info["epoch"] == 2
    assert state["best_f"] == _mean_f(state["history"][1]["valid"])


def test_keep_last_writes_the_last_epoch_whatever_the_check_says(tiny_dataset, tmp_path):
    out = tmp_path / "last.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), epochs=1, steps_per_epoch=3, batch_size=2,
                      crop_tatums=32, channels=(8, 8), gru_hidden=16)
    train(cfg)
    # A best F no epoch can beat: only --keep-last may write the later epochs.
    ckpt_path = out.with_suffix(".ckpt")
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
    ckpt["state"]["best_f"] = 2.0
    torch.save(ckpt, ckpt_path)
    cfg.epochs, cfg.keep_last = 3, True
    state = train(cfg)
    model = load_model(out)
    assert model.info["epoch"] == 3 and state["best_f"] == 2.0
    final = torch.load(ckpt_path, map_location="cpu", weights_only=False)["net"]
    assert all(torch.equal(model.net.state_dict()[k], v) for k, v in final.items())


def test_frame_baseline_trains(tiny_dataset, tmp_path):
    out = tmp_path / "frame.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), kind="frame", epochs=1, steps_per_epoch=5,
                      batch_size=2, crop_frames=200, channels=(8, 8), gru_hidden=16)
    state = train(cfg)
    assert state["epoch"] == 1 and load_model(out).kind == "frame"


def test_lm_regularised_training_uses_the_frozen_bundled_lm(tiny_dataset, tmp_path):
    from tatumdrum.lm import load_language_model
    from tatumdrum.weights import bundled_model_path

    lm_path = bundled_model_path("lm/bigram.pt")
    before = {k: v.clone() for k, v in load_language_model(lm_path).state_dict().items()}
    out = tmp_path / "bigram.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), lm="bigram", epochs=1, steps_per_epoch=3,
                      batch_size=2, crop_tatums=32, channels=(8, 8), gru_hidden=16)
    state = train(cfg)
    hist = state["history"][0]
    assert hist["l_lang"] > 0  # the regulariser really ran
    assert state["epoch"] == 1 and load_model(out).info["train_config"]["alpha"] == 0.068
    after = load_language_model(lm_path).state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def _train_cli(*args: str):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "tatumdrum.cli", "train", *args], capture_output=True, text=True,
                          timeout=300)


def test_train_refuses_a_device_that_is_not_there(tiny_dataset, tmp_path):
    out = tmp_path / "m.pt"
    wanted = ["gpu"] + ([] if torch.cuda.is_available() else ["cuda"])
    for device in wanted:
        result = _train_cli(str(tiny_dataset), "--out", str(out), "--device", device, "--epochs", "1")
        assert result.returncode != 0 and f"--device {device}" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not out.exists() and not out.with_suffix(".ckpt").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the device check runs it)")
def test_training_on_cuda_learns_resumes_and_loads_on_a_cpu(tiny_dataset, tmp_path):
    from tatumdrum.dataset import load_piece
    from tatumdrum.inference import tatum_outputs

    out = tmp_path / "gpu.pt"
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), lm="bigram", epochs=2, steps_per_epoch=15,
                      batch_size=4, crop_tatums=32, channels=(8, 8), gru_hidden=16, lr=3e-3, device="cuda",
                      class_gamma={"SD": 2.0})
    state = train(cfg)
    assert state["history"][-1]["l_tran"] < state["history"][0]["l_tran"] and state["history"][0]["l_lang"] > 0
    cfg.epochs, cfg.keep_last = 3, True
    state = train(cfg)
    assert [h["epoch"] for h in state["history"]] == [1, 2, 3]
    # The exported model holds CPU tensors and gives the same phi on the CPU as on the GPU.
    model = load_model(out)
    assert all(p.device.type == "cpu" for p in model.net.parameters())
    piece = load_piece(sorted((tiny_dataset / "validation").glob("*.npz"))[0])
    phi_cpu, _ = tatum_outputs(model, piece.mels["drums"], piece.tatum_times)
    model.net.cuda()
    phi_gpu, _ = tatum_outputs(model, piece.mels["drums"], piece.tatum_times)
    np.testing.assert_allclose(phi_cpu, phi_gpu, atol=1e-4)
    final = torch.load(out.with_suffix(".ckpt"), map_location="cpu", weights_only=False)["net"]
    assert all(torch.equal(model.net.state_dict()[k].cpu(), v) for k, v in final.items())


def test_crops_longer_than_every_piece_end_with_one_line_not_a_hang(tiny_dataset, tmp_path):
    # The pieces are 6 bars (96 tatums); the trainer used to draw crops of 512 for ever.
    out = tmp_path / "m.pt"
    result = _train_cli(str(tiny_dataset), "--out", str(out), "--crop-tatums", "512", "--epochs", "1")
    assert result.returncode != 0 and "--crop-tatums" in result.stderr and "512 tatums" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not out.exists() and not out.with_suffix(".ckpt").exists()
    with pytest.raises(ValueError):
        make_batch(load_pieces(tiny_dataset / "train"), 2, 512, np.random.default_rng(0))


def test_crop_workers_make_the_same_batches_whatever_their_number(tiny_dataset):
    from tatumdrum.crop_pool import CropPool, make_batch_fn, step_rng

    pieces = load_pieces(tiny_dataset / "train")
    make = make_batch_fn(3, 32, sources=("drums", "mix"))
    alone = [make(pieces, step_rng(7, 1, step)) for step in range(5)]
    for workers in (1, 2):
        with CropPool(pieces, make, workers, seed=7) as pool:
            made = list(pool.epoch(1, 5))
        assert len(made) == 5
        for a, b in zip(alone, made):
            assert torch.equal(a.mel, b.mel) and torch.equal(a.targets, b.targets)
            assert all(torch.equal(x, y) for x, y in zip(a.spans, b.spans))
    # Another epoch or seed is another batch.
    assert not torch.equal(alone[0].mel, make(pieces, step_rng(7, 2, 0)).mel)


def test_training_with_crop_workers_learns_and_resumes_as_an_unbroken_run(tiny_dataset, tmp_path):
    def run(out, epochs_per_call):
        cfg = TrainConfig(data=str(tiny_dataset), out=str(out), epochs=0, steps_per_epoch=12, batch_size=4,
                          crop_tatums=32, channels=(8, 8), gru_hidden=16, lr=3e-3, crop_workers=2, keep_last=True)
        for epochs in epochs_per_call:
            cfg.epochs = epochs
            state = train(cfg)
        return state

    torch.manual_seed(0)
    whole = run(tmp_path / "whole.pt", [2])
    torch.manual_seed(0)
    parts = run(tmp_path / "parts.pt", [1, 2])
    assert whole["history"][-1]["l_tran"] < whole["history"][0]["l_tran"]
    # The second call resumed from the checkpoint and drew the same crops as the unbroken run.
    assert [h["l_tran"] for h in parts["history"]] == pytest.approx([h["l_tran"] for h in whole["history"]], rel=1e-5)


def test_bf16_training_learns_and_writes_a_float32_model(tiny_dataset, tmp_path):
    out = tmp_path / "bf16.pt"
    torch.manual_seed(0)
    cfg = TrainConfig(data=str(tiny_dataset), out=str(out), epochs=2, steps_per_epoch=15, batch_size=4,
                      crop_tatums=32, channels=(8, 8), gru_hidden=16, lr=3e-3, bf16=True, keep_last=True)
    state = train(cfg)
    assert state["history"][-1]["l_tran"] < state["history"][0]["l_tran"]
    model = load_model(out)
    assert model.info["train_config"]["bf16"] is True
    assert all(t.dtype == torch.float32 for t in model.net.state_dict().values() if t.is_floating_point())
    # Its forward pass differs from float32's by bfloat16's rounding only.
    mel = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 200, 80)).astype(np.float32))
    spans = [torch.tensor([[i * 10, i * 10 + 10] for i in range(20)])]
    model.net.eval()
    with torch.no_grad():
        exact = torch.sigmoid(model.net(mel, spans))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            rounded = torch.sigmoid(model.net(mel, spans).float())
    assert float((exact - rounded).abs().max()) < 0.05
