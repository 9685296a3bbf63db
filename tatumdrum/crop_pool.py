"""Training batches made by worker processes, so that cutting and remixing crops runs beside the network.

On a CPU a batch's crops cost a few milliseconds beside a step of hundreds, but on a GPU, where a step
takes milliseconds too, crops made between steps would leave it idle (bench/capacity.py --pieces).
Each batch gets its own random generator from (seed, epoch, step), so the batches do not depend on how
many workers make them, and a run resumed at an epoch's start sees the same ones.
"""
from __future__ import annotations

import multiprocessing as mp
from collections import deque
from typing import Callable, Iterator

import numpy as np
import torch

from .dataset import Batch, Piece, make_batch

# What a worker holds: set before the pool forks, so that the pieces are shared, not pickled per task.
_PIECES: list[Piece] = []
_MAKE: Callable[[list[Piece], np.random.Generator], Batch] | None = None


def step_rng(seed: int, epoch: int, step: int) -> np.random.Generator:
    """The generator of one batch: a function of the run's seed and the step alone."""
    return np.random.default_rng((seed, epoch, step))


def _arrays(batch: Batch) -> tuple:
    # Plain arrays cross the process boundary; torch tensors would travel as shared-memory handles.
    return (batch.mel.numpy(), [s.numpy() for s in batch.spans], batch.targets.numpy(),
            batch.bar_lengths.numpy(), None if batch.velocities is None else batch.velocities.numpy())


def _batch(arrays: tuple) -> Batch:
    mel, spans, targets, bar_lengths, velocities = arrays
    return Batch(torch.from_numpy(mel), [torch.from_numpy(s) for s in spans], torch.from_numpy(targets),
                 torch.from_numpy(bar_lengths), None if velocities is None else torch.from_numpy(velocities))


def _work(key: tuple[int, int, int]) -> tuple:
    assert _MAKE is not None
    return _arrays(_MAKE(_PIECES, step_rng(*key)))


class CropPool:
    """`workers` forked processes that make the batches of an epoch in order, a few steps ahead."""

    def __init__(self, pieces: list[Piece], make: Callable[[list[Piece], np.random.Generator], Batch],
                 workers: int, seed: int):
        global _PIECES, _MAKE
        if workers < 1:
            raise ValueError("a crop pool needs at least one worker")
        _PIECES, _MAKE = pieces, make
        # fork: the workers inherit the pieces; they never touch torch's threads or a GPU.
        self._pool = mp.get_context("fork").Pool(workers)
        self._ahead = 2 * workers
        self._seed = seed

    def epoch(self, epoch: int, steps: int) -> Iterator[Batch]:
        pending: deque = deque()
        asked = 0
        for _ in range(steps):
            while len(pending) < self._ahead and asked < steps:
                pending.append(self._pool.apply_async(_work, ((self._seed, epoch, asked),)))
                asked += 1
            yield _batch(pending.popleft().get())

    def close(self) -> None:
        self._pool.terminate()
        self._pool.join()

    def __enter__(self) -> "CropPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def make_batch_fn(batch_size: int, n_tatums: int, **options) -> Callable[[list[Piece], np.random.Generator], Batch]:
    """`make_batch` with a run's settings bound, for the pool's workers (a closure survives fork)."""
    return lambda pieces, rng: make_batch(pieces, batch_size, n_tatums, rng, **options)
