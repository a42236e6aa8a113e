"""What streaming costs: end-to-end FPS with all four ``--stream`` outlets on, against none.

    python bench/stream_cost.py --source ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4

Loads the model, detector and engine once, then replays the clip headless through the
live loop (``liveaffect.runtime.live.run``, as ``--no-display``) in rounds that alternate
"none" and "all" (the order flips every round, so a machine whose load drifts does not
favour one side). "all" feeds an LSL outlet, an OSC sender, a WebSocket server and a
JSON-lines file through one ``StreamSender`` (the background sending thread the app
uses); one client each runs in a separate process (a pylsl inlet, a python-osc
``BlockingOSCUDPServer`` as in the README, a websockets client) and counts what arrives.
An "all" run's time and CPU include closing the sender (sending what is still queued).
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
def _clients(lsl_name: str, osc_port_box, ws_port: int, ready, stop, counts, osc_kind) -> None:
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

    def websocket():
        with connect(f"ws://127.0.0.1:{ws_port}", max_size=None) as ws:
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


def _one_run(args, bundle, engine, detector, outlets, meta, clients=None) -> dict:
    """One pass over the clip: FPS, faces, and CPU milliseconds per frame of this process
    (every thread) and of the clients' process (``clients``: a ``psutil.Process``).
    With ``outlets``, a ``StreamSender`` feeds them and closing it counts in the time."""
    from liveaffect.runtime.live import Pipeline, run_loop
    from liveaffect.runtime.streams.sender import StreamSender
    from liveaffect.runtime.video import open_source

    def client_cpu() -> float:
        return sum(clients.cpu_times()[:2]) if clients is not None else 0.0

    cpu0, client0, threads0 = time.process_time(), client_cpu(), _thread_cpu()
    if not outlets:  # "none": no sender, no threads
        sender = None
    elif args.in_loop:
        sender = _InLoop(outlets, meta)
    else:
        sender = StreamSender(outlets, meta)
    sinks = [_TimedSink(sender)] if sender is not None else []
    with open_source(args.source) as source:
        summary = run_loop(
            source,
            Pipeline(detector, engine, bundle.card.preprocess),
            sinks,
            max_frames=args.frames,
        )
    t0, threads1 = time.perf_counter(), _thread_cpu()
    if sender is not None:
        sender.close()
    elapsed = summary.elapsed_s + time.perf_counter() - t0
    frames = max(summary.frames, 1)
    mode = "all" if outlets else "none"
    _FRAMES[mode] += frames
    for name, seconds in threads1.items():
        _THREADS[mode][name] += seconds - threads0.get(name, 0.0)
    return {
        "fps": round(summary.frames / elapsed, 2),
        "faces": summary.faces,
        "cpu_ms": round(1000 * (time.process_time() - cpu0) / frames, 3),
        "client_cpu_ms": round(1000 * (client_cpu() - client0) / frames, 3),
    }


def _start(args, meta, folder: Path):
    """Open the four outlets and start the clients' process; returns (outlets, process, stop)."""
    from liveaffect.runtime.streams import open_streams, parse_targets

    lsl_name = f"liveaffect-bench-{os.getpid()}"
    ctx = mp.get_context("spawn")
    osc_port, ready, stop = ctx.Value("i", 0), ctx.Event(), ctx.Event()
    counts = ctx.Manager().dict()
    # The LSL outlet and the WebSocket server first: the client process connects to them.
    lsl_sink, ws_sink = open_streams(parse_targets([f"lsl:{lsl_name}", "ws://127.0.0.1:0"]), meta)
    process = ctx.Process(
        daemon=True,  # ends with this process, also when a round fails
        target=_clients,
        args=(lsl_name, osc_port, ws_sink.port, ready, stop, counts, args.osc_receiver),
    )
    process.start()
    deadline = time.monotonic() + 60
    while not (ready.is_set() and osc_port.value and ws_sink.clients):
        if time.monotonic() > deadline:
            raise SystemExit("error: the client process did not connect in 60 s")
        time.sleep(0.05)
    targets = [f"osc://127.0.0.1:{osc_port.value}", f"jsonl:{folder / 'faces.jsonl'}"]
    outlets = [lsl_sink, ws_sink, *open_streams(parse_targets(targets), meta)]
    return outlets, process, stop, counts


class _Clock:
    """Adds up the wall time and the calling thread's CPU time of timed calls (CPU time
    does not count waiting for a loaded machine)."""

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
"""CPU seconds per thread name and frames, over all runs of each side (read before the
sender closes, so its final flush is not in its thread's row)."""


class _InLoop(Sink):
    """``--in-loop``: the outlets are fed from the loop's thread (one packet per frame),
    to compare against the sender thread."""

    def __init__(self, outlets, meta) -> None:
        self.outlets, self.meta = outlets, meta

    def write(self, frame_bgr, result) -> None:
        from liveaffect.runtime.streams.records import FramePacket, frame_size_of

        packet = FramePacket(result, self.meta, frame_size_of(frame_bgr))
        for outlet in self.outlets:
            outlet.send(packet)


_LOOP = _Clock()
"""The live loop's ``write`` into the sender (queueing the frame), over all "all" runs."""


class _TimedSink(Sink):
    """Times the loop thread's ``write`` into the sender."""

    def __init__(self, sink) -> None:
        self.sink = sink

    def write(self, frame_bgr, result) -> None:
        _LOOP.time(self.sink.write, frame_bgr, result)

    def close(self) -> None:
        self.sink.close()


class _TimedOutlet:
    """Times an outlet's ``send`` on the sender's thread."""

    def __init__(self, outlet) -> None:
        self.outlet, self.clock = outlet, _Clock()

    def send(self, packet) -> None:
        self.clock.time(self.outlet.send, packet)

    def close(self) -> None:
        self.outlet.close()


def _name(timed: _TimedOutlet) -> str:
    return type(timed.outlet).__name__.removesuffix("Sink").lower()  # lsl, websocket, osc, jsonl


def _rounds(args, built, outlets, meta, clients) -> list[dict]:
    """Alternate "none" and "all" runs, flipping the order every round."""
    rows = []
    for r in range(args.rounds):
        order = ("none", "all") if r % 2 == 0 else ("all", "none")
        row = {}
        for mode in order:
            run = _one_run(args, *built, outlets if mode == "all" else [], meta, clients)
            row[mode] = run.pop("fps")
            row.update({f"{k}_{mode}": v for k, v in run.items()})
        rows.append(row)
        print(
            f"round {r + 1}: none {row['none']:.1f} FPS, all four {row['all']:.1f} FPS", flush=True
        )
    return rows


def _cpu_summary(rows: list[dict]) -> dict:
    """Median CPU milliseconds per frame of each side, and what streaming adds (percent of
    the "none" side's CPU per frame; with and without the clients' process)."""
    med = {k: statistics.median(r[k] for r in rows) for k in rows[0] if "cpu_ms" in k}
    app = 100 * (med["cpu_ms_all"] / med["cpu_ms_none"] - 1)
    total = med["cpu_ms_all"] + med["client_cpu_ms_all"] - med["client_cpu_ms_none"]
    return {
        **{f"median_{k}": round(v, 3) for k, v in med.items()},
        "cpu_increase_percent": round(app, 2),
        "cpu_increase_with_clients_percent": round(100 * (total / med["cpu_ms_none"] - 1), 2),
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
        "--in-loop",
        action="store_true",
        help="feed the outlets from the loop's thread instead of the sender's (comparison)",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    import psutil

    from liveaffect.runtime.streams import StreamMeta

    built = _build(args)
    meta = StreamMeta.from_model(args.model, faces=4, source=args.source)
    folder = Path(tempfile.mkdtemp(prefix="stream_cost_"))
    outlets, process, stop, counts = _start(args, meta, folder)
    outlets = [_TimedOutlet(sink) for sink in outlets]
    _one_run(args, *built, [], meta)  # warm-up: engine, detector, file cache
    load_before = os.getloadavg()[0]
    rows = _rounds(args, built, outlets, meta, psutil.Process(process.pid))
    load_after = os.getloadavg()[0]
    time.sleep(1.0)  # let the clients drain
    stop.set()
    process.join(30)
    for sink in outlets:
        sink.close()
    none = statistics.median(r["none"] for r in rows)
    all_ = statistics.median(r["all"] for r in rows)
    result = {
        "source": args.source,
        "model": args.model,
        "osc_receiver": args.osc_receiver,
        "frames_per_run": args.frames,
        "rounds": rows,
        "median_fps_none": round(none, 2),
        "median_fps_all": round(all_, 2),
        "drop_percent": round(100 * (1 - all_ / none), 2),
        "median_ratio": round(statistics.median(r["all"] / r["none"] for r in rows), 4),
        **_cpu_summary(rows),
        "clients_received": dict(counts),
        "ws_dropped": outlets[1].outlet.dropped,
        "jsonl_lines": outlets[3].outlet.lines,
        "loop_write_wall_ms_per_frame": _LOOP.ms_per_call(_LOOP.wall_s),
        "loop_write_cpu_ms_per_frame": _LOOP.ms_per_call(_LOOP.cpu_s),
        "send_wall_ms_per_frame": {_name(t): t.clock.ms_per_call(t.clock.wall_s) for t in outlets},
        "send_cpu_ms_per_frame": {_name(t): t.clock.ms_per_call(t.clock.cpu_s) for t in outlets},
        "load_average_1min": [round(load_before, 2), round(load_after, 2)],
        "sender": "loop thread" if args.in_loop else "sender thread",
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
        f"{result['median_cpu_ms_all']:.2f} (+{result['cpu_increase_percent']:.1f}%; with the "
        f"clients' process +{result['cpu_increase_with_clients_percent']:.1f}%)\n"
        f"median FPS: none {none:.1f}, all four targets {all_:.1f} (drop "
        f"{result['drop_percent']:.1f}%; median per-round ratio {result['median_ratio']:.3f}); "
        f"clients received {result['clients_received']}, jsonl lines {result['jsonl_lines']}, "
        f"ws dropped {result['ws_dropped']}; the loop's write() ms per frame: wall "
        f"{result['loop_write_wall_ms_per_frame']}, CPU {result['loop_write_cpu_ms_per_frame']}; "
        f"the sender thread's send() ms per frame: wall {result['send_wall_ms_per_frame']}, "
        f"CPU {result['send_cpu_ms_per_frame']}; load average {load_before:.2f} before, "
        f"{load_after:.2f} after\nCPU ms per frame by thread: "
        f"{result['thread_cpu_ms_per_frame']}"
    )
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
