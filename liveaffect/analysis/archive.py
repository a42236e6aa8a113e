"""Many videos in one process: progress bars, failures recorded, ``summary.csv``, Ctrl-C.

:func:`analyze_archive` runs :func:`~liveaffect.analysis.job.process_video` over the
videos in order with one :class:`~liveaffect.analysis.runner.VideoAnalyzer` (the model
is loaded once, and only when some video needs work). A bar counts the videos, another
the frames of the current one (``quiet`` hides both). A video that fails is recorded
with its reason and the others go on. ``summary.csv`` is rewritten (temporary name, then
rename) at the end, also after Ctrl-C, with the interrupted video and those not started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from liveaffect.analysis.inputs import VideoJob, hashed_name, plain_name
from liveaffect.analysis.job import SKIPPED_REASON, failure, process_video
from liveaffect.analysis.runner import AnalysisSettings, VideoAnalyzer
from liveaffect.analysis.storage import SUMMARY_CSV, OutputStore, source_stamp
from liveaffect.analysis.summary import summary_csv
from liveaffect.runtime.signals import interrupt_reason


@dataclass
class ArchiveResult:
    """What a run did: one record per video, in input order.

    Attributes:
        videos: per video its ``summary.json`` content, or a failure record.
        interrupted: Ctrl-C stopped the run.
        summary_path: where ``summary.csv`` was written.
    """

    videos: list[dict[str, Any]] = field(default_factory=list)
    interrupted: bool = False
    summary_path: str = ""

    def count(self, status: str) -> int:
        return sum(v.get("status") == status for v in self.videos)

    @property
    def skipped(self) -> int:
        return sum(bool(v.get("skipped")) for v in self.videos)

    @property
    def exit_code(self) -> int:
        """130 after Ctrl-C, 1 when a video failed, else 0."""
        if self.interrupted:
            return 130
        return 1 if self.count("failed") else 0

    def line(self) -> str:
        """One line for the terminal."""
        done = self.count("ok") - self.skipped
        return (
            f"analyze: {len(self.videos)} videos: {done} analysed, {self.skipped} already "
            f"complete, {self.count('failed')} failed"
            + (", interrupted" if self.interrupted else "")
            + f"; summary: {self.summary_path}"
        )


def write_summary(store: OutputStore, videos: list[dict[str, Any]]) -> str:
    """Write ``summary.csv`` for ``videos`` at the top of the store."""
    return store.write_text(SUMMARY_CSV, summary_csv(videos))


def claim_folders(jobs: list[VideoJob], store: OutputStore) -> list[VideoJob]:
    """The jobs with folder names that keep every video's results its own across runs
    into the same ``--out``: a video whose stem folder holds the results of another file
    (``a/clip.mp4`` from an earlier run, now ``b/clip.mp4``) gets the hashed name instead
    of replacing them, and a video whose stem folder holds its own results keeps it."""
    claimed = []
    for job in jobs:
        plain = plain_name(job.path)
        owner = store.source_path(plain)
        if owner == job.path:
            name = plain
        elif job.name == plain and owner is not None:
            name = hashed_name(job.path)
        else:
            name = job.name
        claimed.append(replace(job, name=name))
    return claimed


def pending_jobs(
    jobs: list[VideoJob], store: OutputStore, force: bool
) -> tuple[dict[str, dict], list[VideoJob]]:
    """Split ``jobs`` into those complete from an earlier run (name -> summary) and the rest."""
    done: dict[str, dict] = {}
    todo: list[VideoJob] = []
    for job in jobs:
        summary = None
        if not force:
            try:
                summary = store.completed(job.name, source_stamp(job.path))
            except OSError:
                summary = None
        if summary is not None:
            done[job.name] = {**summary, "reason": SKIPPED_REASON, "skipped": True}
        else:
            todo.append(job)
    return done, todo


def progress_bar(quiet: bool, **kw):
    from tqdm.auto import tqdm

    return tqdm(disable=quiet, dynamic_ncols=True, **kw)


def analyze_archive(
    jobs: list[VideoJob],
    settings: AnalysisSettings,
    out: str,
    force: bool = False,
    quiet: bool = False,
    make_analyzer: Callable[[AnalysisSettings], VideoAnalyzer] = VideoAnalyzer,
) -> ArchiveResult:
    """Analyse ``jobs`` one after another into ``out``; see the module docstring.

    Raises:
        Errors of ``make_analyzer`` (a model or detector that cannot be built).
    """
    store = OutputStore(out)
    jobs = claim_folders(jobs, store)
    done, todo = pending_jobs(jobs, store, force)
    records: dict[str, dict] = dict(done)
    result = ArchiveResult()
    overall = progress_bar(quiet, total=len(jobs), unit="video", desc="videos", position=0)
    overall.update(len(done))
    current = None
    try:
        analyzer = make_analyzer(settings) if todo else None  # a stop while it loads counts
        for job in todo:
            current = job
            bar = progress_bar(quiet, unit="frame", desc=job.name[:30], position=1, leave=False)
            with bar:
                records[job.name] = process_video(analyzer, job, store, force, bar)
            current = None
            overall.update(1)
    except KeyboardInterrupt as exc:
        result.interrupted = True
        reason = interrupt_reason(exc)
        for job in todo:
            if job.name not in records:
                status = "interrupted" if job is current else "not started"
                records[job.name] = failure(job, reason, status=status)
    finally:
        overall.close()
    result.videos = [records[job.name] for job in jobs if job.name in records]
    result.summary_path = write_summary(store, result.videos)
    return result
