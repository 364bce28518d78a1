"""What an RL run shows a user: learning curves (true success and env return vs steps), a table over runs
and seeds (`v2r rl-report`), and a video of an evaluation episode with its learned reward drawn beside it."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from video2reward.errors import ConfigError
from video2reward.inference.plots import save_png
from video2reward.video.io import write_video


def read_eval_csv(path: Path) -> list[dict[str, float | None]]:
    with Path(path).open() as f:
        return [{k: (float(v) if v not in ("", "None") else None) for k, v in row.items()}
                for row in csv.DictReader(f)]


def known_rate(value: float | None) -> float | None:
    """A logged success rate, or None when it is unknown (no value, or NaN: the env gave no success signal)."""
    return None if value is None or value != value else value


def run_summary(run_dir: Path) -> dict[str, Any]:
    """The config and the final evaluation of a `v2r rl` run folder."""
    config = json.loads((Path(run_dir) / "config.json").read_text())
    rows = read_eval_csv(Path(run_dir) / "eval.csv")
    return {"run": str(run_dir), "task": config["task"], "reward": config["reward"], "algo": config["algo"],
            "seed": config["config"]["seed"], "steps": config["timesteps"], "final": rows[-1] if rows else {},
            "best_success": max((known_rate(r["success_rate"]) or 0.0) for r in rows) if rows else None,
            "success_known": any(known_rate(r["success_rate"]) is not None for r in rows)}


def _group_label(summary: dict[str, Any]) -> str:
    reward = "env reward" if summary["reward"] == "env" else f"learned ({Path(summary['reward']).name})"
    return f"{summary['task']} {summary['algo']} {reward}"


def load_runs(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    runs = []
    for run in run_dirs:
        run = Path(run)
        if not (run / "eval.csv").exists() or not (run / "config.json").exists():
            raise ConfigError(f"{run}: not a `v2r rl` run folder (eval.csv and config.json are missing)")
        summary = run_summary(run)
        summary["curve"] = read_eval_csv(run / "eval.csv")
        runs.append(summary)
    return runs


def report_table(run_dirs: Sequence[str | Path], markdown: bool = True) -> str:
    """One row per (task, algo, reward): seeds, final success rate and env return (mean +- std over seeds),
    and the first step at which evaluation success reached 90% (per seed)."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in load_runs(run_dirs):
        groups[_group_label(run)].append(run)
    header = ["run group", "seeds", "steps", "final success", "final env return", "steps to 90% success"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, runs in groups.items():
        ret = np.array([r["final"].get("env_return") or 0.0 for r in runs])
        if not all(r["success_known"] for r in runs):  # never a 0% that the env cannot back
            success, first = "unknown: the env gives no success signal (see --success)", ["n/a"]
        else:
            succ = np.array([known_rate(r["final"].get("success_rate")) or 0.0 for r in runs])
            success = f"{succ.mean():.0%} +- {succ.std():.0%}"
            first = []
            for r in runs:
                hit = [row["step"] for row in r["curve"] if (known_rate(row["success_rate"]) or 0) >= 0.9]
                first.append(f"{hit[0]:.0f}" if hit else "never")
        lines.append(f"| {label} | {len(runs)} | {max(r['steps'] for r in runs)} | {success} | "
                     f"{ret.mean():.1f} +- {ret.std():.1f} | {', '.join(first)} |")
    return "\n".join(lines)


def plot_learning_curves(run_dirs: Sequence[str | Path], path: str | Path) -> None:
    """Success rate and env return vs training steps, one line per run, colour per run group."""
    runs = load_runs(run_dirs)
    labels = sorted({_group_label(r) for r in runs})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    fig = Figure(figsize=(11, 4), layout="tight")  # the Agg canvas, never pyplot: no window, no backend change
    axes = fig.subplots(1, 2)
    seen = set()
    for run in runs:
        label = _group_label(run)
        steps = [row["step"] for row in run["curve"]]
        kwargs = {"color": colours[label], "alpha": 0.8, "label": None if label in seen else label}
        seen.add(label)
        axes[0].plot(steps, [row["success_rate"] for row in run["curve"]], **kwargs)
        axes[1].plot(steps, [row["env_return"] for row in run["curve"]], **kwargs)
    axes[0].set(xlabel="training steps", ylabel="true success rate", ylim=(-0.05, 1.05))
    axes[1].set(xlabel="training steps", ylabel="env return (the env's own reward)")
    axes[0].legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    save_png(fig, Path(path))


def _curve_panel(values: np.ndarray, t: int, height: int, width: int) -> np.ndarray:
    """(height, width, 3) uint8: the reward curve up to step t (white line on dark grey), full range scaled."""
    panel = np.full((height, width, 3), 40, np.uint8)
    lo, hi = float(values.min()), float(values.max())
    span = hi - lo if hi > lo else 1.0
    xs = np.linspace(4, width - 5, len(values)).astype(int) if len(values) > 1 else np.array([width // 2])
    ys = (height - 5 - (values - lo) / span * (height - 10)).astype(int)
    for i in range(t + 1):
        x0, y0 = xs[max(i - 1, 0)], ys[max(i - 1, 0)]
        n = max(abs(xs[i] - x0), abs(ys[i] - y0), 1)
        for a in np.linspace(0, 1, n + 1):  # a straight segment, pixel by pixel
            panel[int(round(y0 + a * (ys[i] - y0))), int(round(x0 + a * (xs[i] - x0)))] = (255, 255, 255)
    panel[ys[t] - 2 : ys[t] + 3, xs[t] - 2 : xs[t] + 3] = (255, 80, 80)  # the current step
    return panel


def write_episode_video(frames: list[tuple[np.ndarray, float]], path: str | Path, fps: float = 30.0) -> None:
    """An evaluation episode, each frame with the learned reward curve so far beside it."""
    if not frames:
        return
    values = np.array([v for _, v in frames], dtype=np.float64)
    h, w = frames[0][0].shape[:2]
    width = max(2 * h, 160)
    write_video(path, (np.concatenate([frame, _curve_panel(values, t, h, width)], axis=1)
                       for t, (frame, _) in enumerate(frames)), fps=fps)
