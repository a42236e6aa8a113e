"""One video from start to published results: the unit of work, locally and on Ray.

:func:`process_video` skips a video whose results are complete (unless ``force``),
otherwise analyses it into temporary files, computes the summary from the CSV, draws the
report and publishes ``faces.csv``, ``report.png`` and finally ``summary.json``. It
returns the video's summary (``status`` ``ok``) or a failure record (``status``
``failed`` and the ``reason``); it never raises for a bad video, so the other videos go
on. Ctrl-C removes the video's temporary files and is passed on.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from liveaffect.analysis.inputs import VideoJob
from liveaffect.analysis.report import render_report
from liveaffect.analysis.runner import Progress, VideoAnalyzer, VideoError, VideoStats
from liveaffect.analysis.storage import (
    FACES_CSV,
    REPORT_PNG,
    SUMMARY_JSON,
    OutputStore,
    source_stamp,
)
from liveaffect.analysis.summary import read_faces_csv, summarize_faces

SKIPPED_REASON = "complete from an earlier run (use --force to redo)"


def failure(job: VideoJob, reason: str, status: str = "failed") -> dict[str, Any]:
    """The record of a video that did not complete."""
    return {"video": job.name, "status": status, "reason": reason, "path": job.path}


def _summary(job, analyzer: VideoAnalyzer, stats: VideoStats, stamp, faces) -> dict[str, Any]:
    card = analyzer.card
    heads = analyzer.trained_heads
    settings = analyzer.settings
    return {
        "video": job.name,
        "status": "ok",
        "reason": "",
        "source": stamp,
        "duration_s": round(stats.duration_s, 3),
        "frames": stats.frames,
        "fps": round(stats.fps, 3),
        "frame_size": list(stats.frame_size),
        "faces": len(stats.face_ids),
        "face_rows": stats.face_rows,
        "processing_fps": round(stats.processing_fps, 2),
        "elapsed_s": round(stats.elapsed_s, 2),
        "host": os.uname().nodename,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "model": {
            "name": card.name,
            "path": str(settings.model),
            "heads_shown": list(heads),
            "heads_hidden": [h for h in ("expr", "va", "au") if h not in heads],
            "weak_aus": list(analyzer.weak_aus),
            "engine": getattr(analyzer.engine, "name", "?"),
        },
        "options": {
            "detector": settings.detector,
            "min_face_score": settings.min_face_score,
            "small_faces": settings.small_faces,
            "blazeface_model": settings.blazeface_model,
            "full_range_every": settings.full_range_every,
            "smooth": settings.smooth,
            "tta": settings.tta,
        },
        "face_summaries": faces,
    }


def process_video(
    analyzer: VideoAnalyzer,
    job: VideoJob,
    store: OutputStore,
    force: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Analyse ``job`` into ``store`` unless it is already complete; see the module doc."""
    try:
        stamp = source_stamp(job.path)
    except OSError as exc:
        return failure(job, f"cannot read {job.path}: {exc.strerror}")
    if not force:
        done = store.completed(job.name, stamp)
        if done is not None:
            return {**done, "reason": SKIPPED_REASON, "skipped": True}
    scratch = None
    try:
        scratch = store.begin(job.name)  # its folder cannot be made: this video fails
        csv_tmp = store.scratch_file(scratch, FACES_CSV)
        png_tmp = store.scratch_file(scratch, REPORT_PNG)
        json_tmp = store.scratch_file(scratch, SUMMARY_JSON)
        stats = analyzer.analyze(job.path, csv_tmp, progress)
        table = read_faces_csv(csv_tmp)
        faces = summarize_faces(table, analyzer.trained_heads)
        summary = _summary(job, analyzer, stats, stamp, faces)
        title = f"{job.name}: {stats.frames} frames, {stats.duration_s:.1f} s, {len(faces)} faces"
        render_report(table, faces, analyzer.trained_heads, title, png_tmp, analyzer.weak_aus)
        with open(json_tmp, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=2)
        store.publish(job.name, csv_tmp, FACES_CSV)
        store.publish(job.name, png_tmp, REPORT_PNG)
        store.publish(job.name, json_tmp, SUMMARY_JSON)  # last: marks the video complete
        return summary
    except VideoError as exc:
        return failure(job, str(exc))
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # one bad video must not stop the archive
        return failure(job, f"{type(exc).__name__}: {exc}")
    finally:
        if scratch is not None:
            store.discard(scratch)
            store.finish(scratch)
