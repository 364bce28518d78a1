"""Scoring folders of videos with a reward model: JSONL out, and plots.

This is what `v2r score` calls; the CLI only parses and prints.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from video2reward.core.preflight import check_output_folder
from video2reward.core.progress import progress_bar
from video2reward.errors import ConfigError, V2RError, VideoError
from video2reward.inference.model import RewardModel
from video2reward.inference.parallel import embedded
from video2reward.inference.plots import plot_reward_curve, thumbnail_indices
from video2reward.inference.reward_axis import plot_title, reward_axis
from video2reward.inference.scorer import SCORE_BATCH, Rewards, Scorer
from video2reward.video.chunk_loader import iter_chunks
from video2reward.video.io import VideoSource, find_videos, iter_frames
from video2reward.video.lerobot import DatasetSelection


@dataclass
class ScoredVideo:
    source: VideoSource
    rewards: Rewards


@dataclass
class ScoreReport:
    videos: list[ScoredVideo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("nan")


def _plot_name(name: str) -> str:
    """A file name for a video's plot that stays unique across folders: a/b/ep_0.mp4 -> a__b__ep_0.png."""
    parts = [p for p in Path(name).with_suffix("").parts if p not in ("", ".", "..", "/")]
    return "__".join(parts[-3:]) + ".png"


def _thumbnails(source: VideoSource, num_frames: int, fit: str, size: int = 64) -> tuple[np.ndarray, list[int]]:
    """Small frames at evenly spaced indices, decoded in one streaming pass."""
    wanted = thumbnail_indices(num_frames, 8)
    picked, index = [], 0
    for chunk in iter_frames(source, size, fit=fit):
        for frame in chunk:
            if index in wanted:
                picked.append(frame)
            index += 1
    return np.stack(picked), wanted[: len(picked)]


def _scored(model: RewardModel, sources: Sequence[VideoSource], goal, workers: int):
    """(source, Rewards or the VideoError, seconds) per video, in `sources` order. Decoding runs in `workers`
    DataLoader processes, or (0) in one thread of this one, a few chunks ahead; the model runs here on the
    chunks as they come (videos may arrive interleaved: each is scored chunk by chunk by its own scorer, and
    only finished videos' rewards wait, never frames). The chunks are the ones `model.score` reads, so the
    rewards are the same."""
    streams: dict[int, tuple[Scorer, list[Rewards]]] = {}  # video index -> its scorer and rewards so far
    finished: dict[int, Rewards | VideoError] = {}
    emitted = 0
    t0 = time.perf_counter()
    chunks = iter_chunks(sources, model.image_size, model.frame_fit, SCORE_BATCH, workers)
    for item, features in embedded(model, chunks, lambda item: None if item.done else item.frames):
        if item.index not in streams:  # the first chunk of a video
            streams[item.index] = (model.scorer(goal), [])
        scorer, parts = streams[item.index]
        if not item.done:
            parts.append(scorer.score(item.frames, features))
            continue
        del streams[item.index]
        finished[item.index] = VideoError(item.error) if item.error else Rewards.join(
            parts, item.fps, success=model.has_success, epistemic=model.has_epistemic)
        while emitted in finished:
            yield sources[emitted], finished.pop(emitted), time.perf_counter() - t0
            emitted += 1
            t0 = time.perf_counter()


def score_videos(
    model: RewardModel,
    paths: Sequence[str | os.PathLike],
    goal=None,
    skip_bad: bool = False,
    plot_dir: str | os.PathLike | None = None,
    on_video: Callable[[ScoredVideo], None] | None = None,
    progress: bool = True,
    workers: int = 0,
    desc: str | None = None,
    select: DatasetSelection | None = None,
) -> ScoreReport:
    """Score every video under `paths`. A video that fails to decode raises VideoError, or with `skip_bad`
    is listed in `report.skipped` and the rest go on. `workers` > 0 decodes in that many processes (the model
    runs here, on the same chunks, so the rewards are the same as with 0). `desc` names the stage in the
    progress output (default: "scoring" and the folder, e.g. "scoring pendulum/test_expert"). `select` picks a
    LeRobotDataset's camera and episodes; its camera defaults to the one the model was trained on."""
    sources = find_videos(paths, (select or DatasetSelection()).with_default_camera(training_camera(model)))
    report = ScoreReport()
    # every plot of this model on the same fixed reward axis, titled with the task and the model
    if plot_dir is not None:
        axis, subtitle = reward_axis(model.config), plot_title(model, [s.path for s in sources])
    scored = _scored(model, sources, goal, workers)
    bar = progress_bar(scored, total=len(sources), desc=desc or scoring_desc(paths), unit="video",
                       disable=not progress)
    for source, rewards, seconds in bar:
        if isinstance(rewards, VideoError):
            if not skip_bad:
                raise rewards
            report.skipped.append((source.name, str(rewards)))
            continue
        report.seconds += seconds
        report.frames += len(rewards)
        video = ScoredVideo(source, rewards)
        report.videos.append(video)
        if plot_dir is not None:
            thumbs, idx = _thumbnails(source, len(rewards), model.frame_fit)
            plot_reward_curve(Path(plot_dir) / _plot_name(source.name), rewards.mu, thumbs, idx,
                              sigma=rewards.sigma, title=source.name, success_prob=rewards.success_prob,
                              fps=rewards.fps, axis=axis, subtitle=subtitle)
        if on_video is not None:
            on_video(video)
        bar.set_postfix({"frames/s": f"{report.frames_per_second:.0f}"})
    return report


def training_camera(model: RewardModel) -> str:
    """The LeRobotDataset camera key the model was trained on ("" when it learned from plain videos)."""
    return str(((model.config.get("training") or {}).get("config") or {}).get("camera_key") or "")


def scoring_desc(paths: Sequence[str | os.PathLike]) -> str:
    """"scoring" and what: for one path its last two parts (a task's split: "scoring pendulum/test_expert"), for a
    few their names ("scoring test_expert, test_fail")."""
    if 1 < len(paths) <= 3:
        return "scoring " + ", ".join(Path(p).name for p in paths)
    if len(paths) != 1:
        return "scoring"
    parts = [p for p in Path(paths[0]).parts if p not in ("", ".", "/")]
    return "scoring " + "/".join(parts[-2:]) if parts else "scoring"


def _round(values: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") for v in np.asarray(values, dtype=np.float64)]


def jsonl_record(scored: ScoredVideo) -> dict:
    """{"video": name as the user gave it, "rewards": one per decoded frame, "sigma": ..., "fps": ...}, and
    "success_prob" (one per frame) when the model has a success detector, "epistemic" (one per frame: the
    members' disagreement) when it is an ensemble."""
    r = scored.rewards
    record = {"video": scored.source.name, "rewards": _round(r.mu), "sigma": _round(r.sigma), "fps": r.fps}
    if r.success_prob is not None:
        record["success_prob"] = _round(r.success_prob)
    if r.epistemic is not None:
        record["epistemic"] = _round(r.epistemic)
    return record


def check_output(out: str | os.PathLike, plot_dir: str | os.PathLike | None = None) -> Path:
    """`--out` (and `--plot`) checked before the first video is decoded: a file name in a writable folder."""
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"{out}: is a folder; give --out a file name, e.g. {out / 'rewards.jsonl'}")
    if plot_dir is not None:
        check_output_folder(plot_dir, "plots")
    check_output_folder(out.parent, "the rewards")
    return out


@contextmanager
def atomic_output(out: Path, what: str) -> Iterator[str]:
    """A temporary file beside `out` that replaces it when the block ends without an error (a killed run leaves
    no half-written file); a failed write (a full disk) is a V2RError naming `out` and `what` was written."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, out)
    except OSError as exc:  # decoding failures are VideoErrors: an OSError here is the output (a full disk)
        raise V2RError(f"{out}: writing {what} failed ({exc.strerror or exc}); {out} was left as it was: make room "
                       f"and run again") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextmanager
def jsonl_output(out: str | os.PathLike) -> Iterator[Callable[[ScoredVideo], None]]:
    """`put(scored)` writes one JSON line per video to `out`, atomically (`atomic_output`)."""
    with atomic_output(Path(out), "the rewards or plots") as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield lambda scored: f.write(json.dumps(jsonl_record(scored)) + "\n")


def score_to_jsonl(
    model: RewardModel, paths: Sequence[str | os.PathLike], out: str | os.PathLike, **kwargs
) -> ScoreReport:
    """Score videos and write one JSON object per line to `out` (atomically, `jsonl_output`)."""
    out = check_output(out, kwargs.get("plot_dir"))
    with jsonl_output(out) as put:
        return score_videos(model, paths, on_video=put, **kwargs)
