"""rl/stats.py against hand computations (and rliable where installed); `v2r rl-report` over seed folders:
IQM with bootstrap intervals per group, a pooled row per reward kind, the results page."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from video2reward.cli import main
from video2reward.rl.evaluation import EVAL_FIELDS
from video2reward.rl.report import expand_runs, report_table
from video2reward.rl.stats import bootstrap_ci, iqm


def test_iqm_is_the_mean_of_the_middle_half() -> None:
    assert iqm(np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0])) == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 4)
    assert iqm(np.array([5.0, 0.0, 1.0, 100.0])) == pytest.approx((1.0 + 5.0) / 2)  # sorted first
    assert iqm(np.array([0.7, 0.9])) == pytest.approx(0.8)  # int(2 / 4) = 0: nothing cut
    assert iqm(np.array([0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0])) == pytest.approx(5 / 6)  # 0 0 [0 1 1 1 1 1] 1 1


def test_bootstrap_interval_holds_the_estimate_and_is_stratified_by_task() -> None:
    rng = np.random.default_rng(0)
    scores = [rng.uniform(0.6, 0.9, 5), rng.uniform(0.0, 0.2, 5)]
    lo, hi = bootstrap_ci(scores, iqm, seed=0)
    assert lo <= iqm(np.concatenate(scores)) <= hi and hi - lo < 0.4
    assert bootstrap_ci(scores, iqm, seed=0) == (lo, hi)  # seeded
    # stratified: every replicate keeps 5 runs of each task, so the pooled mean's interval is narrow around
    # the two tasks' means; an unstratified resample would mix the tasks' counts and widen it
    lo_m, hi_m = bootstrap_ci(scores, np.mean, seed=0)
    assert hi_m - lo_m < 0.1
    same = [np.full(4, 0.5), np.full(3, 0.25)]
    assert bootstrap_ci(same, np.mean, reps=50) == pytest.approx(((4 * 0.5 + 3 * 0.25) / 7,) * 2)  # counts kept


def test_matches_rliable_where_installed() -> None:
    rly = pytest.importorskip("rliable.metrics")
    x = np.random.default_rng(1).uniform(size=(7, 3))  # (runs, tasks)
    assert iqm(x) == pytest.approx(rly.aggregate_iqm(x))


def fake_run(folder: Path, task: str, reward: str, seed: int, final: float, mode: str = "progress") -> Path:
    folder.mkdir(parents=True)
    rows = [[1000, final / 2, -10.0, -5.0, 100, 1.0], [2000, final, -5.0, -2.0, 80, 2.0]]
    with (folder / "eval.csv").open("w", newline="") as f:
        csv.writer(f).writerows([EVAL_FIELDS, *rows])
    (folder / "config.json").write_text(json.dumps({
        "task": task, "reward": reward, "algo": "sac", "timesteps": 2000,
        "config": {"seed": seed, "reward_mode": mode, "refine": False}}))
    return folder


def test_report_over_seed_folders_with_iqm_and_a_pooled_row(tmp_path: Path) -> None:
    for task, finals in (("reach", (1.0, 0.9, 0.0, 0.95)), ("door", (0.2, 0.3, 0.1, 0.2))):
        for seed, final in enumerate(finals):
            fake_run(tmp_path / task / f"seed{seed}", f"metaworld:{task}", "models/m", seed, final,
                     mode="progress+discriminator")
        fake_run(tmp_path / f"{task}-env" / "seed0", f"metaworld:{task}", "env", 0, 0.5)
    assert len(expand_runs([tmp_path / "reach"])) == 4
    table = report_table([tmp_path / "reach", tmp_path / "door", tmp_path / "reach-env", tmp_path / "door-env"])
    reach = next(line for line in table.splitlines() if line.startswith("| metaworld:reach sac learned"))
    assert "learned (m) + discriminator" in reach and "| 4 |" in reach
    assert "92% [" in reach  # IQM of (0.0, 0.9, 0.95, 1.0) = (0.9 + 0.95) / 2; the mean would be 71%
    pooled = next(line for line in table.splitlines() if "**all 2 tasks**, sac learned" in line)
    assert "8 runs" in pooled and "1 of 2 tasks at >= 80% mean success" not in pooled  # reach's mean is 71%
    assert "0 of 2 tasks" in pooled
    page = tmp_path / "docs" / "rl.md"
    assert main(["rl-report", str(tmp_path / "reach"), str(tmp_path / "reach-env"), "--plot",
                 str(tmp_path / "r.png"), "--write", str(page)]) == 0
    text = page.read_text()
    assert "v2r rl-report" in text and "IQM" in text and (tmp_path / "docs" / "rl.png").stat().st_size > 1000
