"""The reward curve of one video as a PNG, with a strip of its frames (`v2r score --plot`), on the model's fixed
reward axis (inference/reward_axis.py).

Drawing uses `matplotlib.figure.Figure` with the Agg canvas directly, never pyplot, so importing this module
neither opens windows nor changes a backend the user has already chosen. Every file is written atomically
(a temporary file in the same folder, then `os.replace`), so a reader never sees half a PNG.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import ConnectionPatch
from matplotlib.ticker import MaxNLocator

from video2reward.inference.reward_axis import RewardAxis

REWARD_COLOR = "tab:blue"
SUCCESS_COLOR = "tab:green"
DPI = 110


def save_png(fig: Figure, path: Path) -> Path:
    """Render `fig` to `path` as PNG via a temporary file in the same folder; creates parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)  # attach the Agg canvas explicitly: no pyplot, no global backend switch
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fig.savefig(fh, format="png", dpi=DPI)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def thumbnail_indices(num_frames: int, k: int = 8) -> list[int]:
    """`k` frame indices evenly spaced over the video, first and last frame included (every frame when the
    video has no more than `k`; [0] when k == 1; [] for an empty video or k <= 0)."""
    if num_frames <= 0 or k <= 0:
        return []
    if num_frames <= k:
        return list(range(num_frames))
    if k == 1:
        return [0]
    # spacing (num_frames-1)/(k-1) >= 1, so rounding keeps the indices distinct
    return [int(round(v)) for v in np.linspace(0, num_frames - 1, k)]


def _series(x: np.ndarray | None, n: int, what: str) -> np.ndarray | None:
    if x is None:
        return None
    arr = np.asarray(x, dtype=np.float64).reshape(-1)
    if arr.size != n:
        raise ValueError(f"{what} has {arr.size} values but the reward has {n}")
    return arr


def format_number(x: float | None) -> str:
    return "n/a" if x is None or math.isnan(x) else f"{x:.3f}"


def reward_curve_figure(
    rewards: np.ndarray,
    thumbnails: np.ndarray,
    thumb_indices: Sequence[int],
    sigma: np.ndarray | None = None,
    title: str = "",
    success_prob: np.ndarray | None = None,
    fps: float | None = None,
    axis: RewardAxis | None = None,
    subtitle: str = "",
) -> Figure:
    """The figure `plot_reward_curve` writes (see there); tests read its axes."""
    axis = axis or RewardAxis()
    mu = np.asarray(rewards, dtype=np.float64).reshape(-1)
    n = mu.size
    if n == 0:
        raise ValueError("cannot plot a reward curve with no frames")
    sig = _series(sigma, n, "sigma")
    prob = _series(success_prob, n, "success_prob")
    thumbs = np.asarray(thumbnails)
    idx = [int(i) for i in thumb_indices]
    if thumbs.size == 0 and not idx:
        thumbs = np.zeros((0, 1, 1, 3), np.uint8)
    if thumbs.ndim != 4 or thumbs.shape[-1] != 3 or thumbs.dtype != np.uint8:
        raise ValueError(f"thumbnails must be a (K, h, w, 3) uint8 array, got {thumbs.shape} {thumbs.dtype}")
    if len(idx) != thumbs.shape[0]:
        raise ValueError(f"{thumbs.shape[0]} thumbnails but {len(idx)} thumbnail indices")
    if any(i < 0 or i >= n for i in idx):
        raise ValueError(f"thumbnail indices {idx} out of range for {n} frames")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")

    k = len(idx)
    fig = Figure(figsize=(10, 6.8 if k else 4.6), layout="constrained")
    gs = fig.add_gridspec(2 if k else 1, 1, height_ratios=[3, 1.3] if k else [1])
    ax = fig.add_subplot(gs[0])
    x = np.arange(n)
    marker = "o" if n <= 60 else None
    handles = []
    if sig is not None:
        low, high = axis.clip(mu - sig), axis.clip(mu + sig)  # the band never leaves the reward's axis
        if n == 1:
            ax.errorbar(x, mu, yerr=[mu - low, high - mu], color=REWARD_COLOR, alpha=0.4, capsize=4)
        handles.append(ax.fill_between(x, low, high, color=REWARD_COLOR, alpha=0.2, lw=0, label="mu ± sigma"))
    handles += ax.plot(x, mu, color=REWARD_COLOR, lw=1.8, marker=marker, ms=3, label="reward (mu)")
    for i in idx:
        ax.axvline(i, color="0.55", lw=0.7, ls=":", zorder=0)
    if n == 1:
        ax.set_xlim(-0.5, 0.5)
        ax.set_xticks([0])
    else:
        ax.set_xlim(0, n - 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(*axis.limits)  # fixed by the model, never by this video: a flat failure looks flat
    ax.set_xlabel("frame")
    ax.set_ylabel("reward")
    ax.grid(alpha=0.25)
    if fps is not None:
        sec = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
        sec.set_xlabel("time (s)")
    if prob is not None:
        ax2 = ax.twinx()
        handles += ax2.plot(x, prob, color=SUCCESS_COLOR, lw=1.4, ls="--", marker=marker, ms=2, label="P(success)")
        ax2.set_ylim(*RewardAxis(0.0, 1.0).limits)
        ax2.set_ylabel("P(success)", color=SUCCESS_COLOR)
        ax2.tick_params(axis="y", colors=SUCCESS_COLOR)
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.8)
    if title:
        fig.suptitle(title, fontsize=12)
    if subtitle:
        ax.set_title(subtitle, fontsize=9, color="0.3")
    beyond = axis.outside([mu])
    fig.supxlabel(axis.caption(sigma=sig is not None) + (f"\n{beyond}" if beyond else ""), fontsize=8, color="0.3")

    if k:
        strip = gs[1].subgridspec(1, k, wspace=0.04)
        for j, (i, img) in enumerate(zip(idx, thumbs)):
            tax = fig.add_subplot(strip[0, j])
            tax.imshow(img, interpolation="antialiased")
            tax.set_axis_off()
            label = f"frame {i}" if fps is None else f"frame {i} · {i / fps:.1f}s"
            tax.text(0.5, -0.04, label, transform=tax.transAxes, ha="center", va="top", fontsize=7)
            # from the bottom of the curve axes at x = frame index to the top of the thumbnail
            fig.add_artist(
                ConnectionPatch(
                    xyA=(i, 0), coordsA=ax.get_xaxis_transform(), xyB=(0.5, 1.0), coordsB=tax.transAxes,
                    color="0.6", lw=0.6, ls="-", alpha=0.8,
                )
            )
    return fig


def plot_reward_curve(
    path: Path,
    rewards: np.ndarray,
    thumbnails: np.ndarray,
    thumb_indices: Sequence[int],
    sigma: np.ndarray | None = None,
    title: str = "",
    success_prob: np.ndarray | None = None,
    fps: float | None = None,
    axis: RewardAxis | None = None,
    subtitle: str = "",
) -> Path:
    """Write one PNG: the reward vs frame index (top axis in seconds when `fps` is given), a mu +- sigma band
    when `sigma` is given, the success probability on a right-hand axis when given, and below it a strip of
    the K `thumbnails` (K, h, w, 3) uint8, each joined to its frame index (a thin vertical line on the curve).
    The reward axis is `axis` (the model's: `reward_axis(model.config)`; default [0, 1]) whatever the values,
    with the sigma band clipped to it; `title` (the video) and `subtitle` (task and model: `plot_title`) head
    the figure, and a caption under it says what the numbers mean. Returns `path`."""
    fig = reward_curve_figure(rewards, thumbnails, thumb_indices, sigma, title, success_prob, fps, axis, subtitle)
    return save_png(fig, Path(path))
