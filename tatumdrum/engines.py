"""Engines that run a folder's jobs: here, in a pool of local processes, or on a Ray cluster.

Each yields `(job, result)` as songs finish, in any order, with the job as the caller planned it;
the caller reports progress, keeps the manifest and prints the summary, the same for every engine.
A worker loads the models once and keeps them for every song it takes (batch.py).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

from .batch import JobResult, load_transcriber, run_job
from .writers.outputs import Job

Settings = dict  # Transcriber.load's keyword arguments; a separator is (name, local weights) or None

# Ray retries a song whose worker died (killed, out of memory, lost machine) this many times.
RAY_RETRIES = 3


class EngineError(RuntimeError):
    """The engine itself cannot run (Ray missing, no cluster at the address); the message says why."""


def run_local(jobs: list[Job], transcriber, beats=None, beats_file: Path | None = None,
              stage_for=None) -> Iterator[tuple[Job, JobResult]]:
    """One song after another in this process, with the transcriber already loaded."""
    for job in jobs:
        stage = stage_for(job) if stage_for else None
        yield job, run_job(transcriber, job, beats, beats_file, stage)


def run_pool(jobs: list[Job], settings: Settings, separator, n_workers: int) -> Iterator[tuple[Job, JobResult]]:
    """`--jobs N`: a spawned pool of N processes on this machine, each loading the models once."""
    import multiprocessing as mp

    from .batch import init_worker, transcribe_job

    by_audio = {job.audio: job for job in jobs}
    # spawn: a fork of a process that has loaded torch or onnxruntime can deadlock.
    with mp.get_context("spawn").Pool(n_workers, initializer=init_worker, initargs=(settings, separator)) as pool:
        for result in pool.imap_unordered(transcribe_job, jobs):
            yield by_audio[result.audio], result


# --- Ray ---------------------------------------------------------------------------------------------

_RAY_WORKER: dict = {}


def _ray_transcribe(settings: Settings, separator, job: Job) -> JobResult:
    """A Ray task: the worker process loads the transcriber with its first song and keeps it."""
    key = repr((sorted(settings.items()), separator))
    if _RAY_WORKER.get("key") != key:
        import warnings

        warnings.simplefilter("ignore")
        _RAY_WORKER["transcriber"] = load_transcriber(settings, separator)
        _RAY_WORKER["key"] = key
    return run_job(_RAY_WORKER["transcriber"], job)


def start_ray(address: str | None):
    """Connect to the cluster at `address`, or start a local one on this machine; quiet either way."""
    try:
        import ray
    except ImportError:
        raise EngineError("--engine ray needs Ray: pip install 'tatumdrum[ray]'") from None
    try:
        # The driver never prints Ray's logs or its workers' output: errors come back as results.
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
                 configure_logging=True)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = address or "a local cluster"
        raise EngineError(f"--address {where}: cannot connect to Ray ({' '.join(str(exc).split())})") from None
    return ray


def run_ray(jobs: list[Job], settings: Settings, separator, address: str | None = None,
            n_workers: int | None = None) -> Iterator[tuple[Job, JobResult]]:
    """`--engine ray`: one Ray task per song, at most `n_workers` at once (default: the cluster's CPUs).

    Ray schedules the tasks over the cluster's machines and retries a song whose worker died. Paths
    travel absolute, so inputs and outputs must be on storage every machine sees at the same path.
    """
    ray = start_ray(address)
    pending: dict = {}
    try:
        remote = ray.remote(num_cpus=1, max_retries=RAY_RETRIES)(_ray_transcribe)
        cpus = int(ray.cluster_resources().get("CPU", 1))
        limit = max(1, min(n_workers or cpus, len(jobs)))
        settings = {**settings, "model_path": _absolute(settings.get("model_path"))}
        settings_ref = ray.put(settings)
        queue = list(reversed(jobs))
        while queue or pending:
            # Submit no more than `limit` songs ahead: Ray places them, we only bound the work in flight.
            while queue and len(pending) < limit:
                job = queue.pop()
                pending[remote.remote(settings_ref, separator, job.absolute())] = job
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except ray.exceptions.RayError as exc:
                reason = type(exc).__name__
                result = JobResult(job.audio, job.outputs, f"{job.audio}: its Ray worker failed "
                                   f"{RAY_RETRIES + 1} times ({reason})")
            yield job, JobResult(job.audio, job.outputs, result.error, result.warnings, result.onsets,
                                 result.beats, result.fatal, result.seconds)
    finally:
        for ref in pending:  # interrupted: stop the songs in flight
            ray.cancel(ref, force=True)
        ray.shutdown()


def _absolute(path):
    return None if path is None else Path(path).absolute()
