"""Training the drum-score language models of section III-C on drum MIDI (e.g. the Groove MIDI Dataset).

    python -m tatumdrum.lm_training --kind bigram --gmd /path/to/gmd --out models/lm/bigram.pt
    python -m tatumdrum.lm_training --kind gru --gmd /path/to/gmd --out models/lm/gru.pt --epochs 30
    python -m tatumdrum.lm_training --kind marginal --gmd /path/to/gmd   # no-context baseline

With --gmd the models are fitted on the train split, the GRU is selected on the validation split,
and perplexities on validation and test are printed (and stored in the saved model's info).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .instruments import DEFAULT_INSTRUMENTS, DrumInstrument, instruments_from_abbrevs
from .lm import GruLM, MarginalLM, ScoreLike, SkipBigram, collate_scores, perplexity, score_arrays
from .score import DrumScore

ProgressCallback = Callable[[dict[str, Any]], None]


def load_scores(source: str | Path | tuple[str | Path, str], tatums_per_beat: int = 4,
                instruments: tuple[DrumInstrument, ...] = DEFAULT_INSTRUMENTS) -> list[DrumScore]:
    """Tatum-level scores of drum MIDI files.

    `source` is either a folder, searched recursively for *.mid / *.midi, or a (gmd_root, split)
    pair naming one split (train, validation, test) of the Groove MIDI Dataset's info.csv.
    Each file is quantised to the tatums of its own tempo map (`midi_to_score`).
    """
    # Imported here so that the LM classes do not pull in pretty_midi.
    from .data.gmd import midi_to_score, read_info

    if isinstance(source, tuple):
        root, split = source
        paths = [e.midi_path for e in read_info(Path(root), split)]
    else:
        folder = Path(source)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: not a folder of drum MIDI files")
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".mid", ".midi") and p.is_file())
    if not paths:
        raise FileNotFoundError(f"no MIDI files in {source}")
    scores = []
    for path in paths:
        score, _ = midi_to_score(path, tatums_per_beat, instruments)
        scores.append(score)
    return scores


def _instruments_of(scores: Sequence[ScoreLike]) -> tuple[DrumInstrument | str, ...]:
    first = scores[0]
    if isinstance(first, DrumScore):
        return first.instruments
    return DEFAULT_INSTRUMENTS[: score_arrays(first)[0].shape[0]]


def _fit_counting_model(cls: type, scores: Sequence[ScoreLike]):
    if not scores:
        raise ValueError("no training scores")
    model = cls(_instruments_of(scores)).fit(scores)
    model.training_info.update(_data_info(scores))
    return model


def train_bigram(scores: Sequence[ScoreLike]) -> SkipBigram:
    """Eq. 3 fitted in closed form (add-one-smoothed transition counts) on the scores."""
    return _fit_counting_model(SkipBigram, scores)


def train_marginal(scores: Sequence[ScoreLike]) -> MarginalLM:
    """The no-context baseline: per-drum onset frequency, add-one smoothed."""
    return _fit_counting_model(MarginalLM, scores)


def _data_info(scores: Sequence[ScoreLike]) -> dict[str, Any]:
    return {"n_scores": len(scores), "n_tatums": int(sum(score_arrays(s)[0].shape[1] for s in scores))}


def _crops(arrays: list[tuple[np.ndarray, np.ndarray]], seq_len: int, align: int,
           rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """One epoch of random crops: about one crop per seq_len tatums of each score.

    Sampling crops in proportion to length makes an epoch see roughly every tatum once, instead
    of over-weighting short fills against long grooves.
    """
    crops = []
    for onsets, lengths in arrays:
        m = onsets.shape[1]
        if m <= seq_len:
            crops.append((onsets, lengths))
            continue
        for _ in range(max(1, round(m / seq_len))):
            start = int(rng.integers(0, (m - seq_len) // align + 1)) * align
            crops.append((onsets[:, start:start + seq_len], lengths[start:start + seq_len]))
    order = rng.permutation(len(crops))
    return [crops[i] for i in order]


def _save_atomic(obj: Any, path: Path) -> None:
    # A run killed while writing must not leave a truncated checkpoint that --resume then chokes on.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_gru(train_scores: Sequence[ScoreLike], valid_scores: Sequence[ScoreLike], epochs: int = 30,
              batch_size: int = 32, seq_len: int = 128, lr: float = 1e-3, weight_decay: float = 0.01,
              checkpoint: str | Path | None = None, resume: bool = False,
              progress: ProgressCallback | None = None, seed: int = 0, hidden_size: int = 64,
              num_layers: int = 3, dropout: float = 0.0, beat_position: bool = False,
              tatums_per_beat: int = 4, clip_norm: float = 1.0) -> GruLM:
    """Train a GruLM by next-tatum BCE on random crops; return the epoch best on validation.

    Each epoch ends with a validation perplexity (on the full validation scores) and, when
    `checkpoint` is given, a checkpoint holding the model, optimizer, epoch, RNG state, best
    validation perplexity and best weights. `resume=True` continues from that checkpoint up to
    `epochs` epochs in all. `progress` is called after every epoch with a dict of
    epoch, epochs, train_loss, valid_perplexity, best_valid_perplexity, epoch_seconds.
    """
    if not train_scores or not valid_scores:
        raise ValueError("train_gru needs training and validation scores")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = GruLM(_instruments_of(train_scores), hidden_size=hidden_size, num_layers=num_layers,
                  dropout=dropout, beat_position=beat_position, tatums_per_beat=tatums_per_beat)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    arrays = [score_arrays(s) for s in train_scores]
    # A beat-position input is only right if crops start on beats; without it, crops start
    # anywhere, as the crops a transcription model is trained on may.
    align = tatums_per_beat if beat_position else 1

    first_epoch, best_ppl, best_state, best_epoch = 0, math.inf, None, -1
    history: list[dict[str, Any]] = []
    ckpt_path = Path(checkpoint) if checkpoint is not None else None
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        if ckpt["config"] != model.config():
            raise ValueError(f"{ckpt_path} was written for {ckpt['config']}, not {model.config()}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        first_epoch = ckpt["epoch"] + 1
        best_ppl, best_epoch = ckpt["best_valid_perplexity"], ckpt["best_epoch"]
        best_state = ckpt["best_model"]
        history = ckpt["history"]
        rng.bit_generator.state = ckpt["numpy_rng"]
        torch.set_rng_state(ckpt["torch_rng"])

    for epoch in range(first_epoch, epochs):
        t0 = time.perf_counter()
        model.train()
        crops = _crops(arrays, seq_len, align, rng)
        loss_sum, cell_sum = 0.0, 0
        for start in range(0, len(crops), batch_size):
            y, bar_lengths, mask = collate_scores(crops[start:start + batch_size])
            nll = model.nll(y, bar_lengths, mask)
            cells = int(mask.sum()) * y.shape[1]
            # Mean BCE per (drum, tatum) cell: log of the quantity perplexity() exponentiates.
            loss = nll.sum() / cells
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            loss_sum += float(loss.detach()) * cells
            cell_sum += cells
        valid_ppl = perplexity(model, valid_scores)
        if valid_ppl < best_ppl:
            best_ppl, best_epoch = valid_ppl, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        record = {"epoch": epoch, "epochs": epochs, "train_loss": loss_sum / cell_sum,
                  "valid_perplexity": valid_ppl, "best_valid_perplexity": best_ppl,
                  "epoch_seconds": time.perf_counter() - t0}
        history.append(record)
        if ckpt_path is not None:
            _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                          "best_valid_perplexity": best_ppl, "best_epoch": best_epoch, "best_model": best_state,
                          "history": history, "config": model.config(),
                          "numpy_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state()}, ckpt_path)
        if progress is not None:
            progress(record)

    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    model.training_info.update(_data_info(train_scores))
    model.training_info.update({
        "epochs": epochs, "best_epoch": best_epoch, "best_valid_perplexity": best_ppl,
        "batch_size": batch_size, "seq_len": seq_len, "lr": lr, "weight_decay": weight_decay,
        "seed": seed, "train_seconds": sum(h["epoch_seconds"] for h in history),
        "history": history,
    })
    return model


def _print_progress(record: dict[str, Any]) -> None:
    print(f"epoch {record['epoch'] + 1}/{record['epochs']}: train BCE {record['train_loss']:.4f}, "
          f"valid ppl {record['valid_perplexity']:.4f} (best {record['best_valid_perplexity']:.4f}), "
          f"{record['epoch_seconds']:.1f} s", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tatumdrum.lm_training", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["bigram", "gru", "marginal"], required=True)
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--gmd", type=Path, help="Groove MIDI Dataset root (train / validation / test splits)")
    data.add_argument("--midi-dir", type=Path, help="folder of drum MIDI files to train on")
    parser.add_argument("--valid-dir", type=Path, help="with --midi-dir: validation MIDI folder "
                        "(default: hold out --valid-fraction of --midi-dir)")
    parser.add_argument("--valid-fraction", type=float, default=0.1)
    parser.add_argument("--test-dir", type=Path, help="with --midi-dir: held-out MIDI folder to report perplexity on")
    parser.add_argument("--out", type=Path, help="where to save the model (.pt)")
    parser.add_argument("--tatums-per-beat", type=int, default=4)
    parser.add_argument("--instruments", default="BD,SD,HH",
                        help="drum classes, comma-separated (v2 models: BD,SD,HH,OH,TT,CR,RD)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-len", type=int, default=128, help="tatums per random training crop")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.01)
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--num-layers", type=int, default=3)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--beat-position", action="store_true", help="GRU: add a one-hot of the tatum's place in its beat")
    parser.add_argument("--checkpoint", type=Path, help="GRU: per-epoch checkpoint (default: OUT + .ckpt)")
    parser.add_argument("--resume", action="store_true", help="GRU: continue from --checkpoint")
    parser.add_argument("--seed", type=int, default=0)
    # One thread by default: a 64-unit GRU step is too small to split, and on a busy 2-core
    # machine two spinning OpenMP threads made training and evaluation 10-60x slower.
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    try:
        instruments = instruments_from_abbrevs([a.strip() for a in args.instruments.split(",") if a.strip()])
    except KeyError as exc:
        parser.error(f"--instruments: {exc.args[0]}")
    t0 = time.perf_counter()
    eval_sets: dict[str, list[DrumScore]] = {}
    tpb = args.tatums_per_beat
    if args.gmd is not None:
        train = load_scores((args.gmd, "train"), tpb, instruments)
        valid = load_scores((args.gmd, "validation"), tpb, instruments)
        eval_sets = {"validation": valid, "test": load_scores((args.gmd, "test"), tpb, instruments)}
        data_desc = f"Groove MIDI Dataset ({args.gmd.name}) train split"
    else:
        train = load_scores(args.midi_dir, tpb, instruments)
        if args.valid_dir is not None:
            valid = load_scores(args.valid_dir, tpb, instruments)
        else:
            order = np.random.default_rng(args.seed).permutation(len(train))
            n_valid = max(1, int(round(args.valid_fraction * len(train))))
            valid = [train[i] for i in order[:n_valid]]
            train = [train[i] for i in order[n_valid:]]
        eval_sets = {"validation": valid}
        if args.test_dir is not None:
            eval_sets["test"] = load_scores(args.test_dir, tpb, instruments)
        data_desc = f"drum MIDI under {args.midi_dir}"
    print(f"loaded {len(train)} training scores ({sum(s.n_tatums for s in train)} tatums) "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)

    t_train = time.perf_counter()
    if args.kind == "bigram":
        model = train_bigram(train)
    elif args.kind == "marginal":
        model = train_marginal(train)
    else:
        checkpoint = args.checkpoint
        if checkpoint is None and args.out is not None:
            checkpoint = args.out.with_name(args.out.name + ".ckpt")
        model = train_gru(train, valid, epochs=args.epochs, batch_size=args.batch_size, seq_len=args.seq_len,
                          lr=args.lr, weight_decay=args.weight_decay, checkpoint=checkpoint, resume=args.resume,
                          progress=_print_progress, seed=args.seed, hidden_size=args.hidden_size,
                          num_layers=args.num_layers, dropout=args.dropout, beat_position=args.beat_position,
                          tatums_per_beat=args.tatums_per_beat)
    train_seconds = time.perf_counter() - t_train

    results = {name: perplexity(model, scores) for name, scores in eval_sets.items()}
    model.training_info.update({
        "data": data_desc, "tatums_per_beat": args.tatums_per_beat,
        "wall_seconds": train_seconds, "torch": str(torch.__version__), "torch_threads": torch.get_num_threads(),
        "command": "python -m tatumdrum.lm_training " + " ".join(sys.argv[1:] if argv is None else argv),
        **{f"{name}_perplexity": ppl for name, ppl in results.items()},
    })
    print(json.dumps({"kind": model.kind, "train_seconds": round(train_seconds, 1),
                      **{f"{k}_perplexity": round(v, 4) for k, v in results.items()}}), flush=True)
    if args.out is not None:
        model.save(args.out)
        print(f"saved {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
