"""The evaluation summary as a PNG (`v2r eval --plot`, `v2r demo`): expert, failed and near-miss reward curves
over normalised time, each video thin and each group's mean thick, on the model's fixed reward axis
(inference/reward_axis.py), titled with the task and the model, with the metrics explained in words under the
chart. Drawn and written as inference/plots.py draws the per-video curves (the Agg canvas, never pyplot; atomic
writes).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from video2reward.inference.plots import format_number, save_png
from video2reward.inference.reward_axis import (
    RewardAxis,
    folder_task,
    plot_title,
    reward_axis,
)

if TYPE_CHECKING:  # annotations only: metrics.py and model.py import nothing of this module, so this is no circle
    from video2reward.evaluation.metrics import EvalResult
    from video2reward.inference.model import RewardModel

EXPERT_COLOR = "tab:blue"
FAILED_COLOR = "tab:red"
NEAR_MISS_COLOR = "tab:orange"


def _normalised_time(n: int) -> np.ndarray:
    """Frame positions mapped to [0, 1] (a 1-frame video sits at 1.0: its only frame is also its last)."""
    return np.linspace(0.0, 1.0, n) if n > 1 else np.ones(n)


def _draw_group(ax, videos: Mapping[str, np.ndarray], color: str, name: str) -> None:
    """Thin curve per video, bold mean curve over a common normalised-time grid."""
    grid = np.linspace(0.0, 1.0, 101)
    resampled = []
    alpha = max(0.15, min(0.6, 3.0 / max(1, len(videos))))
    for j, r in enumerate(videos.values()):
        r = np.asarray(r, dtype=np.float64).reshape(-1)
        if r.size == 0:
            continue
        t = _normalised_time(r.size)
        ax.plot(t, r, color=color, lw=0.9, alpha=alpha, marker="o" if r.size == 1 else None, ms=3,
                label=f"{name} (n={len(videos)})" if j == 0 else None)
        if r.size > 1:
            resampled.append(np.interp(grid, t, r))
    if resampled:
        ax.plot(grid, np.mean(resampled, axis=0), color=color, lw=2.6, label=f"{name} mean")


def metric_lines(result: EvalResult) -> list[str]:
    """The metrics of the chart's title, each explained in words (the caption under the chart)."""
    k = result.last_k
    lines = [("VOC: how steadily the reward rises through the expert videos (Spearman correlation with time; "
              "1 = always rising, 0 = no order)"),
             (f"success AUROC (last {k}): the chance that an expert video's mean reward over its last {k} frames "
              f"beats a failed video's (1 = always, 0.5 = a coin toss)")]
    if result.n_partial:
        lines.append("near-miss AUROC: the same, expert videos against near misses (test_partial/: the task stalled "
                     "partway)")
    if result.dense_spearman is not None:
        lines.append("dense Spearman: rank correlation of the reward with the environment's own dense reward")
    return lines


def eval_summary_figure(
    result: EvalResult,
    expert: Mapping[str, np.ndarray],
    failed: Mapping[str, np.ndarray],
    partial: Mapping[str, np.ndarray] | None = None,
    model: RewardModel | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Figure:
    """The figure `plot_eval_summary` writes (see there); tests read its axes, legend and titles."""
    axis = reward_axis(model.config) if model is not None else RewardAxis()
    task = folder_task(Path(data_dir).resolve()) if data_dir is not None else None
    title = plot_title(model, task=task) if model is not None else (f"task {task}" if task else "")
    partial = partial or {}
    fig = Figure(figsize=(9, 6.4), layout="constrained")
    ax = fig.add_subplot()
    _draw_group(ax, expert, EXPERT_COLOR, "expert")
    _draw_group(ax, failed, FAILED_COLOR, "failed")
    _draw_group(ax, partial, NEAR_MISS_COLOR, "near miss")
    metrics = [f"VOC {format_number(result.voc)}",
               f"success AUROC (last {result.last_k}) {format_number(result.auroc)}"]
    if result.n_partial:
        metrics.append(f"near-miss AUROC {format_number(result.auroc_near_miss)}")
    if result.dense_spearman is not None:
        metrics.append(f"dense Spearman {format_number(result.dense_spearman)}")
    if title:
        fig.suptitle(title, fontsize=11)
    ax.set_title("   ·   ".join(metrics), fontsize=11)
    ax.set_xlim(0, 1)
    ax.set_ylim(*axis.limits)  # the model's fixed axis, as on every per-video plot
    ax.set_xlabel("normalised time (0 = first frame, 1 = last frame)")
    ax.set_ylabel("reward (mu)")
    ax.grid(alpha=0.25)
    if expert or failed or partial:
        ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "no videos", transform=ax.transAxes, ha="center", va="center", color="0.5")
    beyond = axis.outside([*expert.values(), *failed.values(), *partial.values()])
    notes = [*metric_lines(result), axis.caption(sigma=False) + (f"; {beyond}" if beyond else "")]
    fig.supxlabel("\n".join(notes), fontsize=8, color="0.3", ha="left", x=0.01)
    return fig


def plot_eval_summary(
    path: Path,
    result: EvalResult,
    expert: Mapping[str, np.ndarray],
    failed: Mapping[str, np.ndarray],
    partial: Mapping[str, np.ndarray] | None = None,
    model: RewardModel | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Write one PNG: every expert, failed and near-miss (`partial`, test_partial/) reward curve over normalised
    time (0 = first frame, 1 = last), a colour per group with its mean in bold, on the reward axis of `model`
    ([0, 1] without one); titled with the task (the folder `data_dir` names, else the model's training folder)
    and the model, then VOC and the AUROCs (and the dense Spearman when known), each explained under the chart."""
    return save_png(eval_summary_figure(result, expert, failed, partial, model, data_dir), Path(path))
