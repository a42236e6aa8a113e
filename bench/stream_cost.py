"""What streaming costs: end-to-end FPS with all four ``--stream`` outlets on, against none.

    python bench/stream_cost.py --source ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4

Loads the model, detector and engine once, then replays the clip headless through the
live loop (``liveaffect.runtime.live.run``, as ``--no-display``) in rounds that alternate
"none" and "all" (the order flips every round, so a machine whose load drifts does not
favour one side). "all" feeds an LSL outlet, an OSC sender, a WebSocket server and a
JSON-lines file through one ``StreamProcess`` (the streaming process the app uses; it
stays open across rounds); one client each runs in another process (a pylsl inlet, a
python-osc ``BlockingOSCUDPServer`` as in the README, a websockets client) and counts
what arrives. An "all" run's time includes waiting until the streaming process has sent
every frame. CPU per frame is reported for all three processes.
Reports the median FPS of each side, the drop, the median of the per-round ratios, and
the load average before and after.
"""

from __future__ import annotations

import argparse
import collections
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result

from liveaffect.types import Sink


# ----------------------------------------------------------------- the clients' process
def _clients(lsl_name: str, osc_port_box, ws_port, ready, stop, counts, osc_kind) -> None:
    """One client per outlet, counting messages until ``stop`` is set."""
    import pylsl
    from pythonosc import osc_server
    from pythonosc.dispatcher import Dispatcher
    from websockets.sync.client import connect

    got = {"lsl": 0, "osc": 0, "ws": 0}

    def on_osc(address, *args):
        got["osc"] += 1

    dispatcher = Dispatcher()
    dispatcher.set_default_handler(on_osc)
    server = getattr(osc_server, f"{osc_kind.capitalize()}OSCUDPServer")
    osc = server(("127.0.0.1", 0), dispatcher)
    osc_port_box.value = osc.server_address[1]
    threading.Thread(target=osc.serve_forever, daemon=True).start()

    deadline = time.monotonic() + 60
    while True:  # the server may still be starting
        try:
            ws = connect(f"ws://127.0.0.1:{ws_port.value}", max_size=None)
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)

    def websocket():
        with ws:
            while not stop.is_set():
                try:
                    ws.recv(timeout=0.2)
                    got["ws"] += 1
                except TimeoutError:
                    pass

    threading.Thread(target=websocket, daemon=True).start()
    inlet = pylsl.StreamInlet(pylsl.resolve_byprop("name", lsl_name, timeout=30)[0])
    inlet.open_stream(timeout=30)
    ready.set()
    while not stop.is_set():
        chunk, _ = inlet.pull_chunk(timeout=0.2)
        got["lsl"] += len(chunk)
    osc.shutdown()
    counts.update(got)


# ----------------------------------------------------------------- the analysis side
def _build(args):
    from liveaffect import engines
    from liveaffect.bundle import load_bundle
    from liveaffect.runtime.detectors import create_detector

    bundle = load_bundle(args.model)
    engine = engines.create_engine(bundle, args.engine, tta=False if args.no_tta else None)
    detector = create_detector("blazeface", None, 0.5)
    return bundle, engine, detector


def _one_run(args, bundle, engine, detector, streams, clients=None) -> dict:
    """One pass over the clip: FPS, faces, and CPU milliseconds per frame of this process
    (every thread), of the streaming process and of the clients' process (``clients``:
    ``psutil.Process`` objects). With ``streams`` (the ``StreamProcess``) it gets every
    frame, and waiting until it has sent them all counts in the time."""
    from liveaffect.runtime.live import Pipeline, run_loop
    from liveaffect.runtime.video import open_source

    def cpu(process) -> float:
        return sum(process.cpu_times()[:2]) if process is not None else 0.0

    clients = clients or {}
    cpu0, threads0 = time.process_time(), _thread_cpu()
    others0 = {name: cpu(process) for name, process in clients.items()}
    sinks = [_TimedSink(streams)] if streams is not None else []
    with open_source(args.source) as source:
        summary = run_loop(
            source,
            Pipeline(detector, engine, bundle.card.preprocess),
            sinks,
            max_frames=args.frames,
        )
    t0, threads1 = time.perf_counter(), _thread_cpu()
    if streams is not None:
        streams.flush()
    elapsed = summary.elapsed_s + time.perf_counter() - t0
    frames = max(summary.frames, 1)
    mode = "all" if streams is not None else "none"
    _FRAMES[mode] += frames
    for name, seconds in threads1.items():
        _THREADS[mode][name] += seconds - threads0.get(name, 0.0)
    return {
        "fps": round(summary.frames / elapsed, 2),
        "faces": summary.faces,
        "cpu_ms": round(1000 * (time.process_time() - cpu0) / frames, 3),
        **{
            f"{name}_cpu_ms": round(1000 * (cpu(process) - others0[name]) / frames, 3)
            for name, process in clients.items()
        },
    }


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(args, meta, folder: Path):
    """Start the clients' process and the streaming process with all four outlets;
    returns (streams, clients' process, stop event, counts)."""
    from liveaffect.runtime.streams import parse_targets
    from liveaffect.runtime.streams.process import StreamProcess

    lsl_name = f"liveaffect-bench-{os.getpid()}"
    ctx = mp.get_context("spawn")
    osc_port, ws_port = ctx.Value("i", 0), ctx.Value("i", _free_port())
    ready, stop = ctx.Event(), ctx.Event()
    counts = ctx.Manager().dict()
    process = ctx.Process(
        daemon=True,  # ends with this process, also when a round fails
        target=_clients,
        args=(lsl_name, osc_port, ws_port, ready, stop, counts, args.osc_receiver),
    )
    process.start()
    deadline = time.monotonic() + 60
    while not osc_port.value:
        if time.monotonic() > deadline:
            raise SystemExit("error: the client process did not start its OSC server in 60 s")
        time.sleep(0.05)
    targets = [
        f"lsl:{lsl_name}",
        f"ws://127.0.0.1:{ws_port.value}",
        f"osc://127.0.0.1:{osc_port.value}",
        f"jsonl:{folder / 'faces.jsonl'}",
    ]
    streams = StreamProcess(parse_targets(targets), meta, priority=args.priority)
    if not ready.wait(60):
        raise SystemExit("error: the client process did not connect in 60 s")
    return streams, process, stop, counts


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each live thread of this process, added up by name (the Python
    thread's name, else the OS name: liblsl's, TensorFlow's and FFmpeg's threads)."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: collections.Counter = collections.Counter()
    for task in Path("/proc/self/task").iterdir():
        try:
            stat = (task / "stat").read_text()
        except OSError:
            continue  # the thread ended
        comm, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        name = names.get(int(task.name), comm)
        out[name.rstrip("0123456789_-")] += (int(fields[11]) + int(fields[12])) / tick
    return dict(out)


_THREADS = {"none": collections.Counter(), "all": collections.Counter()}
_FRAMES = collections.Counter()
"""CPU seconds per thread name and frames, over all runs of each side."""


class _Clock:
    """Adds up the wall time and the calling thread's CPU time of timed calls."""

    def __init__(self) -> None:
        self.wall_s, self.cpu_s, self.calls = 0.0, 0.0, 0

    def time(self, call, *args) -> None:
        t0, c0 = time.perf_counter(), time.thread_time()
        call(*args)
        self.cpu_s += time.thread_time() - c0
        self.wall_s += time.perf_counter() - t0
        self.calls += 1

    def ms_per_call(self, seconds: float) -> float:
        return round(1000 * seconds / max(self.calls, 1), 4)


_LOOP = _Clock()
"""The live loop's ``write`` into the streaming process (packing and piping the frame)."""


class _TimedSink(Sink):
    """Times the loop thread's ``write``."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def write(self, frame_bgr, result) -> None:
        _LOOP.time(self.sink.write, frame_bgr, result)


def _rounds(args, built, streams, clients) -> list[dict]:
    """Alternate "none" and "all" runs, flipping the order every round."""
    rows = []
    for r in range(args.rounds):
        order = ("none", "all") if r % 2 == 0 else ("all", "none")
        row = {}
        for mode in order:
            run = _one_run(args, *built, streams if mode == "all" else None, clients)
            row[mode] = run.pop("fps")
            row.update({f"{k}_{mode}": v for k, v in run.items()})
        rows.append(row)
        print(
            f"round {r + 1}: none {row['none']:.1f} FPS, all four {row['all']:.1f} FPS", flush=True
        )
    return rows


def _cpu_summary(rows: list[dict]) -> dict:
    """Median CPU milliseconds per frame of each side, and what streaming adds (percent of
    the "none" side's CPU per frame of the app's process; and counting the streaming and
    the clients' processes too)."""
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if "cpu_ms" in k}
    app = 100 * (med["cpu_ms_all"] / med["cpu_ms_none"] - 1)
    total = sum(med[k] for k in med if k.endswith("_all"))
    total_none = sum(med[k] for k in med if k.endswith("_none"))
    return {
        **{f"median_{k}": round(v, 3) for k, v in med.items()},
        "cpu_increase_percent": round(app, 2),
        "cpu_increase_with_streams_and_clients_percent": round(100 * (total / total_none - 1), 2),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="video file (one face)")
    p.add_argument("--model", default="final_model", help="bundle folder")
    p.add_argument("--engine", default="auto", help="engine name, as the app's --engine")
    p.add_argument("--no-tta", action="store_true", help="one view per face")
    p.add_argument("--frames", type=int, default=300, help="frames per run")
    p.add_argument("--rounds", type=int, default=9, help="none/all pairs (medians reported)")
    p.add_argument(
        "--osc-receiver",
        choices=("blocking", "threading"),
        default="blocking",
        help="the OSC client: python-osc's BlockingOSCUDPServer (the README's receiver) or "
        "ThreadingOSCUDPServer (a thread per datagram; what this bench used before)",
    )
    p.add_argument(
        "--priority",
        choices=("low", "normal"),
        default="low",
        help="the streaming process's priority, as the app's --stream-priority",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    import psutil

    from liveaffect.runtime.streams import StreamMeta

    built = _build(args)
    meta = StreamMeta.from_model(args.model, faces=4, source=args.source)
    folder = Path(tempfile.mkdtemp(prefix="stream_cost_"))
    streams, process, stop, counts = _start(args, meta, folder)
    clients = {
        "streams": psutil.Process(streams.pid),
        "clients": psutil.Process(process.pid),
    }
    _one_run(args, *built, None)  # warm-up: engine, detector, file cache
    load_before = os.getloadavg()[0]
    rows = _rounds(args, built, streams, clients)
    load_after = os.getloadavg()[0]
    time.sleep(1.0)  # let the clients drain
    stop.set()
    process.join(30)
    streams.close()
    none = statistics.median(r["none"] for r in rows)
    all_ = statistics.median(r["all"] for r in rows)
    result = {
        "source": args.source,
        "model": args.model,
        "osc_receiver": args.osc_receiver,
        "sender": f"streaming process ({args.priority} priority)",
        "frames_per_run": args.frames,
        "rounds": rows,
        "median_fps_none": round(none, 2),
        "median_fps_all": round(all_, 2),
        "drop_percent": round(100 * (1 - all_ / none), 2),
        "median_ratio": round(statistics.median(r["all"] / r["none"] for r in rows), 4),
        **_cpu_summary(rows),
        "clients_received": dict(counts),
        "jsonl_lines": len((folder / "faces.jsonl").read_text().splitlines()),
        "loop_write_wall_ms_per_frame": _LOOP.ms_per_call(_LOOP.wall_s),
        "loop_write_cpu_ms_per_frame": _LOOP.ms_per_call(_LOOP.cpu_s),
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "thread_cpu_ms_per_frame": {
            mode: {
                k: round(1000 * v / max(_FRAMES[mode], 1), 3)
                for k, v in sorted(_THREADS[mode].items(), key=lambda kv: -kv[1])
                if v > 0
            }
            for mode in ("none", "all")
        },
    }
    print(
        f"median CPU ms per frame: none {result['median_cpu_ms_none']:.2f}, all four "
        f"{result['median_cpu_ms_all']:.2f} in the app's process "
        f"(+{result['cpu_increase_percent']:.1f}%); the streaming process "
        f"{result['median_streams_cpu_ms_all']:.2f}, the clients "
        f"{result['median_clients_cpu_ms_all']:.2f} (all three: "
        f"+{result['cpu_increase_with_streams_and_clients_percent']:.1f}%)\n"
        f"median FPS: none {none:.1f}, all four targets {all_:.1f} (drop "
        f"{result['drop_percent']:.1f}%; median per-round ratio {result['median_ratio']:.3f}); "
        f"clients received {result['clients_received']}, jsonl lines {result['jsonl_lines']}; "
        f"the loop's write() ms per frame: wall {result['loop_write_wall_ms_per_frame']}, CPU "
        f"{result['loop_write_cpu_ms_per_frame']}; load average {load_before:.2f} before, "
        f"{load_after:.2f} after\nCPU ms per frame by thread of the app's process: "
        f"{result['thread_cpu_ms_per_frame']}"
    )
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
