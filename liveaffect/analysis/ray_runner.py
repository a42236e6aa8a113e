"""The same per-video work on a Ray cluster: ``analyze ... --ray [ADDRESS]``.

Each worker is a Ray actor holding one :class:`~liveaffect.analysis.runner.VideoAnalyzer`
(the model is loaded once per worker); a video is the unit of work
(:func:`~liveaffect.analysis.job.process_video`, the code the single-process run uses,
so the rows are the same). The driver hands the next video to whichever worker is free.
When a worker process dies (killed, out of memory, its node lost) Ray restarts the actor
(it reloads the model) and runs the video again; a video's files are written under
temporary names and renamed when complete, so a death leaves nothing that looks whole,
and the retry cleans up what it left. A video that keeps killing workers is recorded as
failed and the others go on.

Without an address a local cluster is started on this machine (one worker per
``--threads`` cores, default one per core);
with ``auto`` or ``ray://host:10001`` an existing cluster is joined, and ``--out`` must
then be a path every node can write (NFS, or ``gs://`` through ``tf.io.gfile``).
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from liveaffect.analysis.archive import (
    ArchiveResult,
    claim_folders,
    pending_jobs,
    progress_bar,
    write_summary,
)
from liveaffect.analysis.inputs import VideoJob
from liveaffect.analysis.job import failure
from liveaffect.analysis.runner import AnalysisSettings
from liveaffect.analysis.storage import OutputStore
from liveaffect.runtime.signals import interrupt_reason

log = logging.getLogger(__name__)

MAX_RESTARTS = 4
"""Times Ray restarts a dead worker (each restart reloads the model)."""
MAX_TASK_RETRIES = 2
"""Times a video is run again after the worker running it died."""


class RayUnavailable(RuntimeError):
    """Ray is not installed (it is an optional extra), or the cluster cannot be reached."""


class WorkerStartError(RuntimeError):
    """A worker could not be built (the model or detector does not load on its node);
    the message is the worker's error."""


def import_ray():
    """Import Ray, or explain how to install it."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable(
            "--ray needs Ray, which is not installed: pip install -r requirements-ray.txt"
        ) from None
    return ray


class VideoWorker:
    """What a Ray actor holds: one analyzer (one model copy) and the output store.

    Args:
        settings: how to analyse (the model path must exist on the worker's node).
        out: the ``--out`` folder or URL.
        show_progress: show a per-video frame bar (Ray's distributed tqdm).
    """

    def __init__(self, settings: AnalysisSettings, out: str, show_progress: bool = True) -> None:
        from liveaffect.analysis.runner import VideoAnalyzer
        from liveaffect.runtime.quiet import quiet_native_stderr

        with quiet_native_stderr():  # LiteRT's and TensorFlow's start-up lines, as locally
            self.analyzer = VideoAnalyzer(settings)
        self.store = OutputStore(out)
        self.show_progress = show_progress

    def pid(self) -> int:
        """The worker's process id."""
        return os.getpid()

    def run(self, job: VideoJob, force: bool) -> dict[str, Any]:
        """Analyse one video (see :func:`~liveaffect.analysis.job.process_video`)."""
        from liveaffect.analysis.job import process_video

        bar = None
        if self.show_progress:
            from ray.experimental.tqdm_ray import tqdm as ray_tqdm

            bar = ray_tqdm(desc=job.name[:30], total=1)
        try:
            result = process_video(self.analyzer, job, self.store, force, bar)
        finally:
            if bar is not None:
                bar.close()
        return {**result, "worker_pid": os.getpid()}


def _connect(ray, address: str | None, workers: int | None, threads: int, quiet: bool) -> int:
    """Start or join a cluster; returns how many workers of ``threads`` CPUs each it can
    hold (a worker that does not fit would wait for CPUs forever, and its video with it)."""
    common = {
        "runtime_env": {"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "3"}},
        "ignore_reinit_error": True,
        "logging_level": logging.WARNING,
        "log_to_driver": not quiet,  # the workers' output (their progress bars)
    }
    if address:
        try:
            ray.init(address=address, **common)
        except ConnectionError as exc:  # Ray's own text names its CLI's --address flag
            said = str(exc).split(". ")[0].rstrip(".")
            msg = f"--ray {address}: cannot connect to a Ray cluster: {said}"
            raise RayUnavailable(msg) from None
    else:
        cpus = workers * threads if workers else max(os.cpu_count() or 1, threads)
        ray.init(num_cpus=cpus, include_dashboard=False, **common)
    fit = int(max(1, ray.cluster_resources().get("CPU", 1) // threads))
    if workers and workers > fit:  # a cluster that was already running: it may be smaller
        log.warning(
            "--workers %d: the Ray cluster has CPUs for %d worker(s) of %d thread(s); starting %d",
            workers,
            fit,
            threads,
            fit,
        )
    return min(workers, fit) if workers else fit


def analyze_on_ray(
    jobs: list[VideoJob],
    settings: AnalysisSettings,
    out: str,
    force: bool = False,
    quiet: bool = False,
    address: str | None = None,
    workers: int | None = None,
    on_workers: Callable[[list[int]], Any] | None = None,
) -> ArchiveResult:
    """Analyse ``jobs`` on Ray; the same results and ``summary.csv`` as a local run.

    Args:
        address: None to start a local cluster, else ``auto`` or ``ray://host:port``.
        workers: actors to start (default: one per `settings.threads` CPUs of the cluster,
            at most one per video).
        on_workers: called with the workers' process ids once they are up (tests use it).

    Raises:
        RayUnavailable: Ray is not installed.
    """
    ray = import_ray()
    store = OutputStore(out)  # its root is absolute: workers do not share the driver's cwd
    # a worker uses --threads cores (default 1: one model copy beside its detector)
    settings = replace(
        settings, model=Path(settings.model).absolute(), threads=settings.threads or 1
    )
    jobs = claim_folders(jobs, store)
    done, todo = pending_jobs(jobs, store, force)
    records: dict[str, dict] = dict(done)
    result = ArchiveResult()
    if todo:
        started_here = not ray.is_initialized()
        try:
            capacity = _connect(ray, address, workers, settings.threads, quiet)
            n = max(1, min(capacity, len(todo)))
            _run(ray, todo, settings, store, force, quiet, n, on_workers, records, result)
        except KeyboardInterrupt as exc:  # while the cluster or its workers start
            result.interrupted = True
            for job in todo:
                records.setdefault(job.name, failure(job, interrupt_reason(exc), "not started"))
        finally:
            if started_here and ray.is_initialized():
                ray.shutdown()
    result.videos = [records[job.name] for job in jobs if job.name in records]
    result.summary_path = write_summary(store, result.videos)
    return result


def _let_bars_close(ray, timeout_s: float = 3.0) -> None:
    """Wait (at most ``timeout_s``) until the driver has drawn the workers' per-video bars
    to their end. A worker's last bar state reaches the driver through its log lines, a
    moment after its video's result; the workers were killed before that, so the last
    video's bar stayed at its previous update (86% of the frames, say). Ray has no public
    call that waits for those lines, so this polls its bar manager."""
    from ray.experimental import tqdm_ray

    manager = tqdm_ray.instance()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with manager.lock:
            if not any(group.bars_by_uuid for group in manager.bar_groups.values()):
                return
        time.sleep(0.05)


def _started(ray, actors) -> list[int]:
    """Wait for the workers to load the model; their process ids.

    Raises:
        WorkerStartError: a worker's model or detector does not load (every worker would
            fail the same way, so no video is handed out).
    """
    pids = []
    for ref in [a.pid.options(max_task_retries=0).remote() for a in actors]:
        try:
            pids.append(ray.get(ref))
        except ray.exceptions.RayActorError as exc:
            if not getattr(exc, "actor_init_failed", False):
                continue  # died for another reason: Ray restarts it
            lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
            raise WorkerStartError(lines[-1] if lines else "?") from None  # the error's line
    return pids


def _run(ray, todo, settings, store, force, quiet, n, on_workers, records, result):
    out = store.root
    options = {"max_restarts": MAX_RESTARTS, "max_task_retries": MAX_TASK_RETRIES}
    remote = ray.remote(num_cpus=settings.threads, **options)(VideoWorker)
    actors = [remote.remote(settings, out, not quiet) for _ in range(n)]
    queue: deque[VideoJob] = deque(todo)
    running: dict[Any, tuple[Any, VideoJob]] = {}
    overall = progress_bar(quiet, total=len(todo), unit="video", desc="videos")
    try:
        pids = _started(ray, actors)
        if on_workers is not None:
            on_workers(pids)
        while queue or running:
            idle = [a for a in actors if all(a is not b for b, _ in running.values())]
            for actor in idle:
                if queue:
                    job = queue.popleft()
                    running[actor.run.remote(job, force)] = (actor, job)
            ready, _ = ray.wait(list(running), num_returns=1)
            actor, job = running.pop(ready[0])
            try:
                records[job.name] = ray.get(ready[0])
            except (ray.exceptions.RayActorError, ray.exceptions.RayTaskError) as exc:
                records[job.name] = failure(job, f"worker died {MAX_TASK_RETRIES + 1} times: {exc}")
                store.abandon(job.name)
                actors = [a for a in actors if a is not actor] or [
                    remote.remote(settings, out, not quiet)
                ]
            overall.update(1)
        if not quiet:
            _let_bars_close(ray)
    except KeyboardInterrupt as exc:
        result.interrupted = True
        reason = interrupt_reason(exc)
        for _, job in running.values():
            records[job.name] = failure(job, reason, status="interrupted")
        for job in queue:
            records[job.name] = failure(job, reason, status="not started")
    finally:
        overall.close()
        for actor in actors:
            ray.kill(actor, no_restart=True)
    if result.interrupted and running:
        # the killed workers' calls end before their videos' temporary files are removed
        ray.wait(list(running), num_returns=len(running), timeout=30)
        for _, job in running.values():
            store.abandon(job.name)
