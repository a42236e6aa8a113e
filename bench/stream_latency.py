"""How late a frame's data arrives, and what the live loop keeps, on a machine others load.

    python bench/stream_latency.py --source ../shared/data/videos/pyfeat_WolfgangLanger_Pexels.mp4 \
        --load 2

Replays the clip headless through the live loop with the default model, streaming to a
JSON-lines file and an OSC receiver (python-osc's ``BlockingOSCUDPServer`` in another
process, which notes when each frame's ``/liveaffect/frame`` message arrives). The latency
of a frame is that arrival time minus the time the loop handed the frame to the streaming
sink (both ``time.monotonic()``, one clock for every process). ``--load N`` first starts N
processes that spin at normal priority, as other programs on the machine would, so the
streaming process (which runs at a lower priority) has to compete for the cores.
Reports the loop's FPS and the latency's median, 95th percentile and maximum.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _results import write_result

from liveaffect.types import Sink


def _spin(stop) -> None:
    while not stop.is_set():
        for _ in range(100_000):
            pass


def _receiver(port_box, ready, stop, arrivals) -> None:
    """Note the arrival time of every frame's ``/liveaffect/frame`` message."""
    from pythonosc import osc_server
    from pythonosc.dispatcher import Dispatcher

    def on_frame(address, index, t, faces):
        arrivals[int(index)] = time.monotonic()

    dispatcher = Dispatcher()
    dispatcher.map("/liveaffect/frame", on_frame)
    server = osc_server.BlockingOSCUDPServer(("127.0.0.1", 0), dispatcher)
    server.timeout = 0.2
    port_box.value = server.server_address[1]
    ready.set()
    while not stop.is_set():
        server.handle_request()


class _Stamped(Sink):
    """Notes when the loop hands each frame to ``sink``."""

    def __init__(self, sink) -> None:
        self.sink, self.handed = sink, {}

    def write(self, frame_bgr, result) -> None:
        self.handed[int(result.index)] = time.monotonic()
        self.sink.write(frame_bgr, result)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", required=True, help="video file")
    p.add_argument("--model", default="final_model", help="bundle folder")
    p.add_argument("--engine", default="auto", help="engine name, as the app's --engine")
    p.add_argument("--frames", type=int, default=300, help="frames to stream")
    p.add_argument("--load", type=int, default=0, help="busy processes started beside the app")
    p.add_argument(
        "--priority",
        choices=("low", "normal"),
        default="low",
        help="the streaming process's priority, as the app's --stream-priority",
    )
    p.add_argument("--json", help="write results here")
    args = p.parse_args()

    from liveaffect import engines
    from liveaffect.bundle import load_bundle
    from liveaffect.runtime.detectors import create_detector
    from liveaffect.runtime.live import Pipeline, run_loop
    from liveaffect.runtime.streams import StreamMeta, parse_targets
    from liveaffect.runtime.streams.process import StreamProcess
    from liveaffect.runtime.video import open_source

    bundle = load_bundle(args.model)
    engine = engines.create_engine(bundle, args.engine, tta=None)
    detector = create_detector("blazeface", None, 0.5)
    meta = StreamMeta.from_model(args.model, faces=4, source=args.source)
    ctx = mp.get_context("spawn")
    port, ready, stop, heard = ctx.Value("i", 0), ctx.Event(), ctx.Event(), ctx.Event()
    arrivals = ctx.Manager().dict()
    receiver = ctx.Process(target=_receiver, args=(port, ready, heard, arrivals), daemon=True)
    receiver.start()
    if not ready.wait(60):
        raise SystemExit("error: the OSC receiver did not start in 60 s")
    folder = Path(tempfile.mkdtemp(prefix="stream_latency_"))
    targets = [f"osc://127.0.0.1:{port.value}", f"jsonl:{folder / 'faces.jsonl'}"]
    streams = StreamProcess(parse_targets(targets), meta, priority=args.priority)
    spinners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for s in spinners:
        s.start()
    time.sleep(1.0 if spinners else 0.0)
    sink = _Stamped(streams)
    try:
        with open_source(args.source) as source:
            summary = run_loop(
                source, Pipeline(detector, engine, bundle.card.preprocess), [sink],
                max_frames=args.frames,
            )  # fmt: skip
        streams.flush()
    finally:
        stop.set()
        for s in spinners:
            s.join(10)
    # the last datagrams may still be on their way: wait for them (at most 10 s), then stop
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not set(sink.handed) <= set(arrivals.keys()):
        time.sleep(0.05)
    heard.set()
    receiver.join(30)
    streams.close()
    late = sorted(1000 * (arrivals[i] - t) for i, t in sink.handed.items() if i in arrivals)
    if not late:
        raise SystemExit("error: the receiver got no frame")
    result = {
        "source": args.source,
        "model": args.model,
        "load_processes": args.load,
        "priority": args.priority,
        "frames": summary.frames,
        "fps": round(summary.frames / summary.elapsed_s, 2),
        "frames_received": len(late),
        "latency_ms_median": round(statistics.median(late), 2),
        "latency_ms_p95": round(late[min(len(late) - 1, int(0.95 * len(late)))], 2),
        "latency_ms_max": round(late[-1], 2),
    }
    print(
        f"load {args.load}, {args.priority} priority: {result['fps']:.1f} FPS; {len(late)} of "
        f"{summary.frames} frames received; latency median "
        f"{result['latency_ms_median']:.1f} ms, p95 {result['latency_ms_p95']:.1f} ms, "
        f"max {result['latency_ms_max']:.1f} ms"
    )
    if args.json:
        write_result(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
