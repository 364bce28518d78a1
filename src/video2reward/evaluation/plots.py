"""The evaluation summary as a PNG (`v2r eval --plot`, `v2r demo`): expert and failed reward curves over
normalised time, each video thin and each group's mean thick. Drawn and written as inference/plots.py draws the
per-video curves (the Agg canvas, never pyplot; atomic writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from video2reward.inference.plots import format_number, save_png

if TYPE_CHECKING:  # an annotation only: metrics.py imports nothing of this module, so this is no circle
    from video2reward.evaluation.metrics import EvalResult

EXPERT_COLOR = "tab:blue"
FAILED_COLOR = "tab:red"


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


def plot_eval_summary(
    path: Path,
    result: EvalResult,
    expert: Mapping[str, np.ndarray],
    failed: Mapping[str, np.ndarray],
) -> Path:
    """Write one PNG: every expert and failed reward curve over normalised time (0 = first frame, 1 = last),
    two colors with their means in bold, titled with VOC and AUROC (and the dense Spearman when known)."""
    fig = Figure(figsize=(9, 5.2), layout="constrained")
    ax = fig.add_subplot()
    _draw_group(ax, expert, EXPERT_COLOR, "expert")
    _draw_group(ax, failed, FAILED_COLOR, "failed")
    title = f"VOC {format_number(result.voc)}   ·   success AUROC (last {result.last_k}) {format_number(result.auroc)}"
    if result.dense_spearman is not None:
        title += f"   ·   dense Spearman {format_number(result.dense_spearman)}"
    ax.set_title(title, fontsize=11)
    ax.set_xlim(0, 1)
    ax.set_xlabel("normalised time (0 = first frame, 1 = last frame)")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.25)
    if expert or failed:
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
    else:
        ax.text(0.5, 0.5, "no videos", transform=ax.transAxes, ha="center", va="center", color="0.5")
    return save_png(fig, Path(path))
