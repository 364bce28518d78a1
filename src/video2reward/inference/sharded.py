"""Scoring split across processes and machines: `torchrun --nproc_per_node N -m video2reward.cli score ...`.

Every rank finds the same videos (episodes) in the same order; rank r scores videos r, r + N, r + 2N, ...
and writes each one's rewards to a part file of its own, `.OUT.parts/NNNNNN.npz`, atomically (a temporary
name, then a rename). When every rank is done, rank 0 reads the parts in video order and writes OUT with
the same writer a single process uses, so the JSONL or parquet is the same, byte for byte, as one process
scoring the videos in order; then the parts are removed.

A killed run (kill -9, a lost node) leaves the parts of the videos it finished; running the same command again
scores only the missing ones. `.OUT.parts/manifest.json` records what the parts belong to (the model's
weights hash, the videos, the goal): a different model or video list starts afresh instead of mixing. On
several machines, OUT must lie on a filesystem every node sees. Part files hold numbers only (numpy .npz read
with allow_pickle=False), never pickles.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import torch.distributed as dist

from video2reward.core.files import read_json, write_json
from video2reward.core.progress import progress_bar
from video2reward.errors import V2RError, VideoError
from video2reward.inference.model import RewardModel
from video2reward.inference.scorer import Rewards
from video2reward.inference.scoring import ScoredVideo, ScoreReport, training_camera
from video2reward.video.io import VideoSource, find_videos
from video2reward.video.lerobot import DatasetSelection

Output = Callable[[Path], AbstractContextManager[Callable[[ScoredVideo], None]]]  # jsonl_output, parquet_output


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def parts_folder(out: Path) -> Path:
    return out.with_name(f".{out.name}.parts")


def _manifest(model: RewardModel, sources: Sequence[VideoSource], goal: str | None) -> dict:
    return {"weights_sha256": model.config.get("weights_sha256") or model.config.get("sha256"),
            "model": json.dumps(model.config.get("head_config"), sort_keys=True), "goal": goal,
            "videos": [s.name for s in sources]}


def _part(parts: Path, index: int) -> Path:
    return parts / f"{index:06d}.npz"


def _save_part(path: Path, result: Rewards | VideoError) -> None:
    tmp = path.with_name(f".{path.name}.tmp.npz")
    if isinstance(result, VideoError):
        arrays = {"error": np.frombuffer(str(result).encode("utf-8"), np.uint8)}
    else:
        arrays = {"mu": result.mu, "sigma": result.sigma, "fps": np.array([result.fps or 0.0])}
        if result.success_prob is not None:
            arrays["success_prob"] = result.success_prob
        if result.epistemic is not None:
            arrays["epistemic"] = result.epistemic
    np.savez(tmp, **arrays)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _load_part(path: Path) -> Rewards | VideoError:
    with np.load(path, allow_pickle=False) as part:
        if "error" in part:
            return VideoError(part["error"].tobytes().decode("utf-8"))
        fps = float(part["fps"][0]) or None
        return Rewards(part["mu"], part["sigma"], part["success_prob"] if "success_prob" in part else None, fps,
                       part["epistemic"] if "epistemic" in part else None)


def score_sharded(model: RewardModel, paths: Sequence[str | os.PathLike], out: str | os.PathLike, output: Output,
                  goal_image: str | None = None, skip_bad: bool = False, progress: bool = True,
                  select: DatasetSelection | None = None) -> ScoreReport | None:
    """This rank's share of the videos under `paths`, then (rank 0) OUT written through `output` (the single
    process's writer: `jsonl_output` or `parquet_output`) from every part, in video order.
    Returns rank 0's report of the whole run (the other ranks: None)."""
    rank, world = _rank_world()
    out = Path(out)
    sources = find_videos(paths, (select or DatasetSelection()).with_default_camera(training_camera(model)))
    parts = parts_folder(out)
    manifest = _manifest(model, sources, goal_image)
    if rank == 0:
        if parts.is_dir() and (not (parts / "manifest.json").is_file()
                               or read_json(parts / "manifest.json") != manifest):
            shutil.rmtree(parts)  # parts of another model or other videos: never mixed into this output
        parts.mkdir(parents=True, exist_ok=True)
        write_json(parts / "manifest.json", manifest)
    _barrier()
    mine = [i for i in range(rank, len(sources), world) if not _part(parts, i).is_file()]
    done_before = sum(_part(parts, i).is_file() for i in range(len(sources)))
    if rank == 0 and done_before:
        print(f"resuming: {done_before} of {len(sources)} videos already scored in {parts}", flush=True)
    goal = model.goal_from_image(goal_image) if goal_image else None
    bar = progress_bar(mine, desc=f"scoring (rank {rank} of {world})", unit="video", disable=not progress)
    for index in bar:
        try:
            result: Rewards | VideoError = model.score(sources[index], goal=goal)
        except VideoError as exc:
            if not skip_bad:
                raise
            result = exc
        _save_part(_part(parts, index), result)
    _barrier()
    if rank != 0:
        return None
    missing = [sources[i].name for i in range(len(sources)) if not _part(parts, i).is_file()]
    if missing:
        raise V2RError(f"{out}: {len(missing)} videos have no scored part (e.g. {missing[0]}); run the same "
                       f"command again to score them")
    report = ScoreReport()
    with output(out) as put:
        for i, source in enumerate(sources):
            result = _load_part(_part(parts, i))
            if isinstance(result, VideoError):
                report.skipped.append((source.name, str(result)))
                continue
            report.frames += len(result)
            report.videos.append(ScoredVideo(source, result))
            put(report.videos[-1])
    shutil.rmtree(parts)
    return report
