"""What an RL run shows a user: learning curves (true success and env return vs steps), a table over runs
and seeds (`v2r rl-report`), and a video of an evaluation episode with its learned reward drawn beside it.

Over seeds, success is summarised as rliable recommends (Agarwal et al., 2021, "Deep RL at the edge of the
statistical precipice"): the interquartile mean (IQM: the mean of the middle 50% of runs, robust to one lucky
or broken seed, less noisy than the median) with a 95% percentile bootstrap confidence interval over runs,
the bootstrap stratified by task when several tasks are pooled (rl/stats.py)."""

from __future__ import annotations

import csv
import datetime
import json
import shutil
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from video2reward.errors import ConfigError
from video2reward.inference.plots import save_png
from video2reward.rl.stats import bootstrap_ci, iqm
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
            "config": config["config"],
            "best_success": max((known_rate(r["success_rate"]) or 0.0) for r in rows) if rows else None,
            "success_known": any(known_rate(r["success_rate"]) is not None for r in rows)}


def reward_kind(summary: dict[str, Any]) -> str:
    """What the agent was rewarded with: env reward, sparse success, or the learned reward (+ its extras)."""
    if summary["reward"] in ("env", "sparse"):  # `--reward env` / `--reward sparse`
        return {"env": "env reward", "sparse": "sparse success"}[summary["reward"]]
    config = summary.get("config") or {}
    extras = [" + discriminator" if config.get("reward_mode") == "progress+discriminator" else "",
              " + refine" if config.get("refine") else ""]
    return f"learned ({Path(summary['reward']).name}){''.join(extras)}"


def _group_label(summary: dict[str, Any]) -> str:
    return f"{summary['task']} {summary['algo']} {reward_kind(summary)}"


def expand_runs(run_dirs: Sequence[str | Path]) -> list[Path]:
    """Run folders; a folder of `v2r rl --seeds` runs (OUT/seed<N>/) stands for all of them."""
    found = []
    for run in map(Path, run_dirs):
        seeds = sorted(p.parent for p in run.glob("seed*/eval.csv"))
        found += seeds if not (run / "eval.csv").exists() and seeds else [run]
    return found


def load_runs(run_dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    runs = []
    for run in expand_runs(run_dirs):
        if not (run / "eval.csv").exists() or not (run / "config.json").exists():
            raise ConfigError(f"{run}: not a `v2r rl` run folder (eval.csv and config.json are missing; a run still "
                              f"going or killed has only eval.csv: finish it with --resume)")
        summary = run_summary(run)
        summary["curve"] = read_eval_csv(run / "eval.csv")
        runs.append(summary)
    return runs


def report_table(run_dirs: Sequence[str | Path], markdown: bool = True, seed: int = 0) -> str:
    """One row per (task, algo, reward): seeds, final success as IQM [95% CI] and mean over seeds, final env
    return, and the first step at which evaluation success reached 90% (per seed); then, when several tasks
    were run, one row per reward kind pooling every task (bootstrap stratified by task)."""
    runs = load_runs(run_dirs)
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[_group_label(run)].append(run)
    header = ["run group", "seeds", "steps", "final success IQM [95% CI]", "mean", "final env return",
              "steps to 90% success"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, members in groups.items():
        ret = np.array([r["final"].get("env_return") or 0.0 for r in members])
        if not all(r["success_known"] for r in members):  # never a 0% that the env cannot back
            success, mean, first = "unknown: the env gives no success signal (see --success)", "n/a", ["n/a"]
        else:
            succ = np.array([known_rate(r["final"].get("success_rate")) or 0.0 for r in members])
            success, mean = _iqm_ci([succ], seed), f"{succ.mean():.0%}"
            first = []
            for r in members:
                hit = [row["step"] for row in r["curve"] if (known_rate(row["success_rate"]) or 0) >= 0.9]
                first.append(f"{hit[0]:.0f}" if hit else "never")
        lines.append(f"| {label} | {len(members)} | {max(r['steps'] for r in members)} | {success} | {mean} | "
                     f"{ret.mean():.1f} +- {ret.std():.1f} | {', '.join(first)} |")
    tasks = {r["task"] for r in runs}
    if len(tasks) > 1:
        kinds: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for r in runs:
            if r["success_known"]:
                kinds[f"{r['algo']} {reward_kind(r)}"][r["task"]].append(known_rate(r["final"].get("success_rate")) or 0.0)
        for kind, per_task in kinds.items():
            scores = [np.array(v) for v in per_task.values()]
            solved = sum(float(np.mean(v)) >= 0.8 for v in scores)
            lines.append(f"| **all {len(per_task)} tasks**, {kind} | {sum(map(len, scores))} runs | | "
                         f"{_iqm_ci(scores, seed)} | {np.mean(np.concatenate(scores)):.0%} | | {solved} of "
                         f"{len(per_task)} tasks at >= 80% mean success |")
    return "\n".join(lines)


def _iqm_ci(scores: list[np.ndarray], seed: int) -> str:
    value = iqm(np.concatenate(scores))
    lo, hi = bootstrap_ci(scores, iqm, seed=seed)
    return f"{value:.0%} [{lo:.0%}, {hi:.0%}]"


def plot_learning_curves(run_dirs: Sequence[str | Path], path: str | Path) -> None:
    """Success rate and env return vs training steps, one thin line per run, colour per run group; where a
    group has 2+ runs evaluated at the same steps, its IQM success curve with a 95% bootstrap band."""
    runs = load_runs(run_dirs)
    labels = sorted({_group_label(r) for r in runs})
    colours = {label: f"C{i}" for i, label in enumerate(labels)}
    fig = Figure(figsize=(11, 4), layout="tight")  # the Agg canvas, never pyplot: no window, no backend change
    axes = fig.subplots(1, 2)
    for label in labels:
        members = [r for r in runs if _group_label(r) == label]
        many = len(members) > 1
        for i, run in enumerate(members):
            steps = [row["step"] for row in run["curve"]]
            kwargs = {"color": colours[label], "alpha": 0.35 if many else 0.8,
                      "label": None if i or many else label, "linewidth": 1}
            axes[0].plot(steps, [row["success_rate"] for row in run["curve"]], **kwargs)
            axes[1].plot(steps, [row["env_return"] for row in run["curve"]], **kwargs)
        grid = [[row["step"] for row in r["curve"]] for r in members]
        if many and all(g == grid[0] for g in grid) and all(r["success_known"] for r in members):
            table = np.array([[known_rate(row["success_rate"]) or 0.0 for row in r["curve"]] for r in members])
            centre = [iqm(table[:, t]) for t in range(table.shape[1])]  # (steps,)
            band = np.array([bootstrap_ci([table[:, t]], iqm, reps=500) for t in range(table.shape[1])])
            axes[0].plot(grid[0], centre, color=colours[label], linewidth=2.2, label=f"{label} (IQM, {len(members)} seeds)")
            axes[0].fill_between(grid[0], band[:, 0], band[:, 1], color=colours[label], alpha=0.15)
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


def write_report_page(page: str | Path, table: str, run_dirs: Sequence[str | Path], plot: str | Path) -> Path:
    """A markdown results page: the command that made it, the date, the table and the learning curves (the
    PNG copied beside the page)."""
    page = Path(page)
    page.parent.mkdir(parents=True, exist_ok=True)
    image = page.with_suffix(".png")
    if Path(plot).resolve() != image.resolve():
        shutil.copyfile(plot, image)
    command = "v2r rl-report " + " ".join(str(r) for r in run_dirs) + f" --write {page}"
    runs = load_runs(run_dirs)
    text = (f"# RL results\n\nWritten by `{command}` on {datetime.date.today().isoformat()}, from "
            f"{len(runs)} runs (each run's own command options are in its config.json). Final success: "
            f"interquartile mean over seeds with a 95% stratified-bootstrap interval (rl/stats.py).\n\n"
            f"{table}\n\n![learning curves]({image.name})\n")
    page.write_text(text)
    return page
