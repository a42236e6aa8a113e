"""Options of the live loop (``live`` command): one frozen dataclass, checked once.

:class:`LiveOptions` validates every field at construction and raises ``ValueError``
naming the field, before any camera opens or TensorFlow loads.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from liveaffect.bundle import model_files
from liveaffect.errors import OptionError
from liveaffect.runtime.detectors import DEFAULT_MIN_SCORE, FULL_RANGE_EVERY

if TYPE_CHECKING:
    from liveaffect.engines import EngineOptions
    from liveaffect.runtime.detectors import DetectorOptions

from liveaffect.runtime.streams.targets import StreamTarget

DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "final_model"
"""The shipped default bundle: ``final_model/`` next to the ``liveaffect`` package."""

VIDEO_SUFFIXES = (".mp4", ".avi")
MAX_WINDOW_SIDE = 16384  # larger windows make Qt allocate gigabytes and crash


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class LiveOptions:
    """Everything ``live`` needs, validated at construction (ValueError names the field).

    Attributes:
        source: camera index, video path or stream URL.
        model: bundle folder or ``.keras`` file.
        detector: face detector name (see ``liveaffect.runtime.detectors.DETECTORS``).
        detector_weights: a local weights file for the detector, or None for its default.
        min_face_score: detections below this confidence are ignored, in [0, 1].
        small_faces: BlazeFace also searches tiles of the frame and around the previous
            frame's small faces (False: ``--no-small-faces``, the whole frame only).
        blazeface_model: which BlazeFace models run (``--blazeface-model``: both, full,
            short or auto; see ``DetectorOptions.model``).
        full_range_every: ``"both"``: full range searches the whole frame every this many
            frames (and when short range misses a face; ``--full-range-every``).
        smooth: predictions averaged per face (1 = no smoothing).
        engine: inference engine name (see ``liveaffect.engines.engine_names``).
        display: show the OpenCV window.
        output: write the drawn view (video, boxes, tags, side panel) here
            (``.mp4`` or ``.avi``).
        output_raw: write the frames at their own size with only the boxes and tags here.
        csv: write one row per face per frame here.
        max_frames: stop after this many frames (None: run until the source ends).
        threads: CPU threads for TensorFlow and OpenCV (None: library default).
        tta: average the test-time views the model card names (flip, zooms), as its
            reported numbers do; False scores each face once (faster).
        streams: where to stream every face's affect (parsed ``--stream`` targets).
        stream_faces: face slots of an LSL outlet.
        stream_priority: the streaming process's priority: ``"low"`` (it takes only the
            CPU time the analysis leaves) or ``"normal"`` (the app's).
        window_size: (width, height) of the window at start; None fits it to the screen.
        fast: a video file with a window plays as fast as it is processed instead of at
            its own frame rate.
    """

    source: int | str = 0
    model: Path = DEFAULT_MODEL_DIR
    detector: str = "blazeface"
    detector_weights: Path | None = None
    min_face_score: float = DEFAULT_MIN_SCORE
    small_faces: bool = True
    blazeface_model: str = "both"
    full_range_every: int = FULL_RANGE_EVERY
    smooth: int = 3
    engine: str = "auto"
    display: bool = True
    output: Path | None = None
    output_raw: Path | None = None
    csv: Path | None = None
    max_frames: int | None = None
    threads: int | None = None
    tta: bool = True
    streams: tuple[StreamTarget, ...] = ()
    stream_faces: int = 4
    stream_priority: str = "low"
    window_size: tuple[int, int] | None = None
    fast: bool = False

    def __post_init__(self) -> None:
        from liveaffect.runtime.video import SourceError, check_video_file, parse_source_spec

        try:
            kind, target = parse_source_spec(self.source)
        except SourceError as exc:
            raise ValueError(f"source: {exc}") from None
        video = Path(target) if kind == "file" else None
        if video is not None:
            try:
                check_video_file(video)
            except SourceError as exc:
                raise ValueError(str(exc)) from None
        for build, flags in (
            (lambda: self.detector_options, DETECTOR_FLAGS),
            (lambda: self.engine_options, ENGINE_FLAGS),
        ):
            try:
                build()
            except OptionError as exc:
                raise ValueError(exc.for_flags(flags)) from None
        if self.smooth < 1:
            raise ValueError(f"--smooth must be 1 (off) or more, got {self.smooth}")
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"--max-frames must be 1 or more, got {self.max_frames}")
        if self.window_size is not None and min(self.window_size) < 32:
            raise ValueError(f"--window-size must be at least 32x32, got {self.window_size}")
        if self.window_size is not None and max(self.window_size) > MAX_WINDOW_SIDE:
            raise ValueError(
                f"--window-size must be at most {MAX_WINDOW_SIDE}x{MAX_WINDOW_SIDE} (an 8K screen "
                f"is 7680x4320), got {self.window_size}"
            )
        for name in ("output", "output_raw"):
            path = getattr(self, name)
            if path is not None and path.suffix.lower() not in VIDEO_SUFFIXES:
                raise ValueError(f"{_flag(name)} must end in {' or '.join(VIDEO_SUFFIXES)}: {path}")
        for name in ("output", "output_raw", "csv"):
            path = getattr(self, name)
            if path is None:
                continue
            if not path.parent.is_dir():
                raise ValueError(f"{_flag(name)}: folder {path.parent} does not exist")
            if path.is_dir():
                raise ValueError(f"{_flag(name)}: {path} is a folder, not a file")
            if video is not None and _same_file(path, video):
                raise ValueError(f"{_flag(name)} would overwrite the input video {path}")
            _check_not_an_input(path, _flag(name), self)
        written = [(n, getattr(self, n)) for n in ("output", "output_raw", "csv")]
        for (a, path_a), (b, path_b) in itertools.combinations(written, 2):
            if path_a is not None and path_b is not None and _same_file(path_a, path_b):
                raise ValueError(f"{_flag(a)} and {_flag(b)} must be different files")
        _check_streams(self, video)

    @property
    def snapshot_dir(self) -> Path:
        """Where the window's snapshots go: beside the outputs, else the current folder."""
        for path in (self.output, self.output_raw, self.csv):
            if path is not None:
                return path.parent
        return Path(".")

    @property
    def detector_options(self) -> DetectorOptions:
        """The face detector to build (checked: OptionError names the field)."""
        from liveaffect.runtime.detectors import DetectorOptions

        return DetectorOptions(
            self.detector,
            self.detector_weights,
            self.min_face_score,
            self.threads,
            "video" if self.small_faces else "off",
            self.blazeface_model,
            self.full_range_every,
        )

    @property
    def engine_options(self) -> EngineOptions:
        """The engine to build (checked: OptionError names the field)."""
        from liveaffect.engines import EngineOptions

        return EngineOptions(self.engine, tta=None if self.tta else False)


# The command-line flag of each options field (also used by ``analyze``'s settings).
DETECTOR_FLAGS = {
    "name": "--detector",
    "weights": "--detector-weights",
    "min_score": "--min-face-score",
    "small_faces": "--no-small-faces",
    "model": "--blazeface-model",
    "full_range_every": "--full-range-every",
}
ENGINE_FLAGS = {"name": "--engine"}


MAX_STREAM_FACES = 64
"""Most LSL face slots (28 channels each: 1,792 channels); 100,000 made an outlet of 2.8
million channels without a word."""


def _check_streams(opts: LiveOptions, video: Path | None) -> None:
    """``--stream-faces`` and the files of ``jsonl:PATH`` targets (ports bind later)."""
    if not 1 <= opts.stream_faces <= MAX_STREAM_FACES:
        raise ValueError(
            f"--stream-faces must be 1 to {MAX_STREAM_FACES} (28 LSL channels each), "
            f"got {opts.stream_faces}"
        )
    others = [p for p in (opts.output, opts.output_raw, opts.csv) if p is not None]
    jsonl_paths: list[Path] = []
    for target in opts.streams:
        path = target.path
        if target.scheme != "jsonl" or path is None:
            continue
        if any(_same_file(path, other) for other in jsonl_paths):  # a/x.jsonl, ./a/x.jsonl
            raise ValueError(f"--stream {target.text} names the file of another jsonl target")
        jsonl_paths.append(path)
        if not path.parent.is_dir():
            raise ValueError(f"--stream {target.text}: folder {path.parent} does not exist")
        if path.is_dir():
            raise ValueError(f"--stream {target.text}: {path} is a folder, not a file")
        if video is not None and _same_file(path, video):
            raise ValueError(f"--stream {target.text} would overwrite the input video {path}")
        _check_not_an_input(path, f"--stream {target.text}", opts)
        if any(_same_file(path, other) for other in others):
            raise ValueError(f"--stream {target.text} names the file of another output")


def _check_not_an_input(path: Path, flag: str, opts: LiveOptions) -> None:
    """An output must not overwrite what the run reads: the model's ``.keras`` file or card,
    or the detector's weights file."""
    if any(_same_file(path, f) for f in model_files(opts.model)):
        raise ValueError(f"{flag} would overwrite the model's file {path}")
    if opts.detector_weights is not None and _same_file(path, opts.detector_weights):
        raise ValueError(f"{flag} would overwrite the detector weights {path}")


def _same_file(path: Path, other: str | Path) -> bool:
    try:
        return path.resolve() == Path(other).resolve()
    except OSError:
        return False
