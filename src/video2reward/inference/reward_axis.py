"""The fixed reward axis and the words every reward plot shares (`v2r score --plot`, `v2r eval --plot`, `v2r demo`,
`v2r report`).

Every plot of a model's rewards draws them on one axis fixed by the model, never by the video: the reward's own
range where the head has one (HeadEntry.reward_range: [0, 1] for the progress, rank, success and temporal heads,
whose mu is a sigmoid or a probability; [-1, 1] for temporal-distance), and UNBOUNDED_AXIS where mu is unbounded
(pixel-ridge's regression, goal-distance's normalised distance; both are 0 at a start and 1 at the end of a
demonstration, with room either side). So a failed video whose reward stays at 0.2-0.4 is drawn flat next to an
expert's climb from 0 to 1, as its numbers say. The sigma band is clipped to the axis, and values of an unbounded
reward beyond it are counted in the plot's caption.

Each plot also names the task and the model (`plot_title`) and says in one line what the numbers mean
(`RewardAxis.caption`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from video2reward.rewards.registry import (
    COMBINED_HEADS,
    HEADS,
    reward_meaning,
    reward_range,
)

UNBOUNDED_AXIS = (-0.5, 1.5)  # the axis of an unbounded reward: its nominal 0 (start) to 1 (done), half again each side
PAD = 0.04  # fraction of the axis left empty above and below it, so a curve at 0 or 1 is not drawn on the frame
# folders named after a data split, not a task: the task is the folder above them (pendulum/test_fail -> pendulum)
SPLIT_FOLDERS = frozenset({"train", "test", "val", "test_expert", "test_fail", "test_partial", "test_cam", "expert",
                           "experts", "fail", "failed", "negatives", "partial", "demos", "videos"})


@dataclass(frozen=True)
class RewardAxis:
    """The reward axis of one model: from `low` to `high` (the reward's own range, or UNBOUNDED_AXIS when
    `bounded` is False) and what mu is, in words."""

    low: float = 0.0
    high: float = 1.0
    meaning: str = "predicted progress, 0 = start, 1 = task done"
    bounded: bool = True

    @property
    def limits(self) -> tuple[float, float]:
        """The y-limits of a plot: the axis with PAD of its span above and below."""
        pad = PAD * (self.high - self.low)
        return self.low - pad, self.high + pad

    def clip(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(values, dtype=np.float64), self.low, self.high)

    def caption(self, sigma: bool = True) -> str:
        """One line: what mu is, what the band is, and, for an unbounded reward, that the axis is fixed."""
        text = f"mu: {self.meaning}"
        if sigma:
            text += "   ·   band: mu ± sigma (the model's uncertainty), clipped to the axis"
        if not self.bounded:
            text += f"   ·   unbounded: axis fixed at {self.low:g} to {self.high:g} for this model"
        return text

    def outside(self, curves: Iterable[np.ndarray]) -> str:
        """'' when every value lies on the axis, else a note: how many frames lie beyond it, and how far."""
        values = [np.asarray(c, dtype=np.float64).reshape(-1) for c in curves]
        values = np.concatenate(values) if values else np.zeros(0)
        beyond = values[(values < self.low) | (values > self.high)]
        if beyond.size == 0:
            return ""
        return (f"{beyond.size} of {values.size} frames beyond the axis "
                f"(lowest {values.min():.3g}, highest {values.max():.3g})")

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "meaning": self.meaning, "bounded": self.bounded,
                "caption": self.caption(), "caption_without_band": self.caption(sigma=False)}


def reward_axis(config: Mapping[str, Any] | None) -> RewardAxis:
    """The axis of a model with this config.json (its "head"); the default [0, 1] progress axis for a config
    without a known head."""
    kind = (config or {}).get("head")
    if kind not in HEADS and kind not in COMBINED_HEADS:
        return RewardAxis()
    span = reward_range(kind)
    if span is None:
        return RewardAxis(*UNBOUNDED_AXIS, meaning=reward_meaning(kind), bounded=False)
    return RewardAxis(float(span[0]), float(span[1]), meaning=reward_meaning(kind))


def folder_task(folder: str | os.PathLike) -> str | None:
    """The name a reader would call a data folder's task: its own, or that of the first folder above it that is
    not a split folder (data/pendulum/test_fail -> "pendulum"); None when nothing is left to name it."""
    parts = [p for p in PurePath(folder).parts if p not in ("", ".", "/", "\\", PurePath(folder).anchor)]
    while parts and parts[-1] in SPLIT_FOLDERS:
        parts.pop()
    return parts[-1] if parts and parts[-1] != ".." else None


def shared_folder(names: Sequence[str | os.PathLike]) -> str | None:
    """The task of a set of videos: `folder_task` of the deepest folder holding all of them
    (data/pendulum/test_fail/ep_0.mp4 and data/pendulum/test_expert/ep_0.mp4 -> "pendulum"). None when they share
    nothing named."""
    parents = [str(PurePath(n).parent) for n in names]
    if not parents:
        return None
    try:
        return folder_task(os.path.commonpath(parents))
    except ValueError:  # absolute and relative names mixed, or different drives
        return None


def task_name(config: Mapping[str, Any], videos: Sequence[str | os.PathLike] = ()) -> str | None:
    """The task of a model: the folder its training videos share (config.json's training.videos), else the
    folder the given `videos` share (resolved, so relative names work)."""
    trained = ((config or {}).get("training") or {}).get("videos") or []
    name = shared_folder(trained)
    if name is None and videos:
        name = shared_folder([Path(v).resolve() for v in videos])
    return name


def model_name(model: Any) -> str:
    """The model's folder name (`model.path`, set by `load`), or its head for a model made in memory."""
    path = getattr(model, "path", None)
    if path is not None:
        return Path(path).resolve().name or str(path)
    return str(model.config.get("head", "model"))


def plot_title(model: Any, videos: Sequence[str | os.PathLike] = (), task: str | None = None) -> str:
    """'task pendulum · model pendulum-progress+rank (progress+rank head, cnn encoder, 64px frames)': what a
    plot's second title line says; `task` default: `task_name`, left out when no folder names it."""
    task = task or task_name(model.config, videos)
    described = model.describe() if hasattr(model, "describe") else ""
    text = f"model {model_name(model)}" + (f" ({described})" if described else "")
    return (f"task {task}   ·   " if task else "") + text
