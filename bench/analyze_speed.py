"""Frames per second: ``analyze`` against the live app, on the same clip, in one run.

    python bench/analyze_speed.py --source ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 \
        --model final_model --rounds 5 --json bench/results/analyze_vs_live.json

Both load the model once, then process every frame of the clip headless into a CSV
(model loading is not timed). "live" is the live app's loop (``runtime.live.run`` with the
pipeline, engine and detector built as ``live --no-display --csv`` builds them: engine on
all cores, one frame at a time); "analyze" is one video of the ``analyze`` command
(``VideoAnalyzer.analyze``: decoder thread, faces of several frames per engine call on an
inference thread while the next frames are detected). Rounds alternate live / analyze so
that a busy machine slows both alike; medians are reported, with every round's figure.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result


def live_round(bundle, detector, engine, source_path: str, csv_path: str, smooth: int) -> float:
    """One pass of the live app's loop over the clip; returns frames per second."""
    from liveaffect.runtime.live import Pipeline, run_loop
    from liveaffect.runtime.sinks import CsvSink
    from liveaffect.runtime.smoothing import PredictionSmoother
    from liveaffect.runtime.video import open_source

    pipeline = Pipeline(
        detector, engine, bundle.card.preprocess, smoother=PredictionSmoother(smooth)
    )
    with open_source(source_path) as source, CsvSink(csv_path, bundle.card) as sink:
        summary = run_loop(source, pipeline, [sink])
    return summary.mean_fps


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="video clip")
    p.add_argument("--model", default="final_model", help="bundle folder")
    p.add_argument("--rounds", type=int, default=5, help="timed rounds of each (median)")
    p.add_argument("--no-tta", action="store_true", help="one view per face in both")
    p.add_argument(
        "--engine", default="auto", help="inference engine of both (auto, tflite, tflite-int8 ...)"
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    from liveaffect import engines
    from liveaffect.analysis.runner import AnalysisSettings, VideoAnalyzer
    from liveaffect.runtime.detectors import build_detector
    from liveaffect.runtime.options import LiveOptions

    analyzer = VideoAnalyzer(
        AnalysisSettings(model=Path(args.model), tta=not args.no_tta, engine=args.engine)
    )
    # The live app's parts, built from its own options as `live SOURCE --no-display --csv
    # FILE` builds them (defaults: BlazeFace on one thread, the engine on all cores).
    live = LiveOptions(
        source=args.source,
        model=Path(args.model),
        display=False,
        tta=not args.no_tta,
        engine=args.engine,
    )
    live_detector = build_detector(live.detector_options)
    live_engine = engines.build_engine(analyzer.bundle, live.engine_options)
    smooth = analyzer.settings.smooth
    rates: dict[str, list[float]] = {"live": [], "analyze": []}
    cpu_ms: dict[str, list[float]] = {"live": [], "analyze": []}
    with tempfile.TemporaryDirectory() as tmp:
        csv_live, csv_an = os.path.join(tmp, "live.csv"), os.path.join(tmp, "analyze.csv")
        live_round(analyzer.bundle, live_detector, live_engine, args.source, csv_live, smooth)
        analyzer.analyze(args.source, csv_an)  # warm-up of both
        for r in range(args.rounds):
            cpu0 = time.process_time()
            fps_live = live_round(
                analyzer.bundle, live_detector, live_engine, args.source, csv_live, smooth
            )
            cpu1 = time.process_time()
            stats = analyzer.analyze(args.source, csv_an)
            cpu2 = time.process_time()
            fps_an = stats.processing_fps
            rates["live"].append(round(fps_live, 2))
            rates["analyze"].append(round(fps_an, 2))
            cpu_ms["live"].append(round((cpu1 - cpu0) * 1000 / stats.frames, 2))
            cpu_ms["analyze"].append(round((cpu2 - cpu1) * 1000 / stats.frames, 2))
            print(
                f"round {r + 1}: live {fps_live:.1f} FPS ({cpu_ms['live'][-1]:.1f} CPU ms/frame), "
                f"analyze {fps_an:.1f} FPS ({cpu_ms['analyze'][-1]:.1f} CPU ms/frame), "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
        with open(csv_live) as a, open(csv_an) as b:
            rows_live, rows_an = a.read().splitlines(), b.read().splitlines()
    median_live, median_an = statistics.median(rates["live"]), statistics.median(rates["analyze"])
    same_rows = len(rows_live) == len(rows_an)
    result = {
        "source": args.source,
        "model": args.model,
        "tta": not args.no_tta,
        "engine": args.engine,
        "rounds": args.rounds,
        "live_fps": rates["live"],
        "analyze_fps": rates["analyze"],
        "live_fps_median": round(median_live, 2),
        "analyze_fps_median": round(median_an, 2),
        "speedup_median": round(median_an / median_live, 3),
        "speedup_per_round": [
            round(a / b, 3) for a, b in zip(rates["analyze"], rates["live"], strict=True)
        ],
        "live_cpu_ms_per_frame": cpu_ms["live"],
        "analyze_cpu_ms_per_frame": cpu_ms["analyze"],
        "live_cpu_ms_per_frame_median": statistics.median(cpu_ms["live"]),
        "analyze_cpu_ms_per_frame_median": statistics.median(cpu_ms["analyze"]),
        "csv_rows_equal_count": same_rows,
        "analyze_engine": getattr(analyzer.engine, "name", "?"),
        "analyze_inference_threads": analyzer.settings.inference_threads,
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
    }
    print(
        f"median: live {median_live:.1f} FPS, analyze {median_an:.1f} FPS, "
        f"x{result['speedup_median']:.2f} (load average {result['load_average_1min_at_end']})"
    )
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
