"""Start-up: seconds and peak memory from ``python emotion_classifier.py`` to its first frame.

    python bench/startup.py --source ../shared/data/videos/pyfeat_single_face.mp4 \
        --rounds 5 --json bench/results/startup.json

Each round runs the app once per case in a fresh process (``--no-display --max-frames 1
--csv``) and times it from the parent, interpreter start included; the process reports its
peak RSS and whether TensorFlow was imported. Cases alternate within a round, so a busy
machine slows them alike; medians are reported with every round's figure.

* ``warm``: the model's TFLite cache exists (what every start after the first sees);
* ``cold``: the bundle copied to an empty folder, no cache anywhere (the first start:
  Keras loads the model and converts it);
* ``keras``: ``--engine keras`` (TensorFlow runs the model, as with a GPU).

``--repo`` times another checkout's app (e.g. an older commit in a ``git worktree``)
with the same cases, for a before/after on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _results import write_result

CASES = ("warm", "cold", "keras")

PROBE = """\
import json, resource, runpy, sys
repo, report = sys.argv[1], sys.argv[2]
sys.path.insert(0, repo)
sys.argv = ["emotion_classifier.py", *sys.argv[3:]]
code = 0
try:
    runpy.run_path(repo + "/emotion_classifier.py", run_name="__main__")
except SystemExit as exc:
    code = exc.code or 0
with open(report, "w") as f:
    json.dump({"rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "tensorflow": "tensorflow" in sys.modules, "exit": code}, f)
sys.exit(code)
"""


def run_case(case: str, repo: Path, source: str, model: Path, tmp: Path) -> dict:
    """One start of the app in ``case``; returns wall seconds, peak RSS, TensorFlow used."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if case == "cold":  # no cache beside the bundle nor in the user's cache folder
        fresh = Path(tempfile.mkdtemp(dir=tmp))
        shutil.copy(model / "model.keras", fresh / "model.keras")
        shutil.copy(model / "card.json", fresh / "card.json")
        model = fresh
        env["XDG_CACHE_HOME"] = str(fresh / "home-cache")
    args = [source, "--no-display", "--max-frames", "1", "--csv", str(tmp / f"{case}.csv")]
    args += ["--model", str(model)] + (["--engine", "keras"] if case == "keras" else [])
    report = tmp / f"{case}.json"
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(repo), str(report), *args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{case}: the app failed (exit {proc.returncode}): {proc.stderr[-800:]}")
    out = json.loads(report.read_text())
    return {"wall_s": wall, "rss_mib": out["rss_mib"], "tensorflow": out["tensorflow"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="video file (only its first frame is used)")
    p.add_argument("--model", default="final_model", help="bundle folder (model.keras + card)")
    p.add_argument("--rounds", type=int, default=5, help="starts of each case (median)")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument(
        "--repo",
        default=str(Path(__file__).resolve().parents[1]),
        help="the checkout whose emotion_classifier.py is timed (default: this one)",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases):
        p.error(f"--cases: choose from {', '.join(CASES)}, got {args.cases!r}")
    if args.rounds < 1:
        p.error(f"--rounds must be 1 or more, got {args.rounds}")
    repo, model = Path(args.repo).resolve(), Path(args.model).resolve()
    if not (repo / "emotion_classifier.py").is_file():
        p.error(f"--repo: no emotion_classifier.py in {repo}")
    if not (model / "model.keras").is_file() or not (model / "card.json").is_file():
        p.error(f"--model: {model} is not a bundle folder (model.keras + card.json)")
    if not Path(args.source).is_file():
        p.error(f"--source: no such file: {args.source}")

    runs: dict[str, list[dict]] = {c: [] for c in cases}
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        run_case("warm", repo, args.source, model, tmp)  # builds the cache; not timed
        for r in range(args.rounds):
            for case in cases:
                runs[case].append(run_case(case, repo, args.source, model, tmp))
                got = runs[case][-1]
                print(f"round {r + 1} {case:5s} {got['wall_s']:6.2f} s {got['rss_mib']:6.0f} MiB "
                      f"tensorflow={got['tensorflow']}", flush=True)  # fmt: skip
    result = {"source": args.source, "model": str(args.model), "repo": str(repo),
              "rounds": args.rounds, "cases": {}}  # fmt: skip
    print(f"\n{'case':6s} {'median s':>9s} {'median MiB':>11s}  TensorFlow imported")
    for case, got in runs.items():
        summary = {
            "median_wall_s": statistics.median(g["wall_s"] for g in got),
            "median_rss_mib": statistics.median(g["rss_mib"] for g in got),
            "tensorflow_imported": sorted({g["tensorflow"] for g in got}),
            "runs": got,
        }
        result["cases"][case] = summary
        print(f"{case:6s} {summary['median_wall_s']:9.2f} {summary['median_rss_mib']:11.0f}  "
              f"{'/'.join(map(str, summary['tensorflow_imported']))}")  # fmt: skip
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
