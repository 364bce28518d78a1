"""Aggregate scores over seeds (and tasks) as rliable does (Agarwal et al., NeurIPS 2021): the interquartile
mean and stratified percentile-bootstrap confidence intervals. A few lines of numpy, so `v2r rl-report` needs
no extra package; tests/rl/test_stats.py checks them against a hand computation (and against rliable where it
is installed)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean: the mean of the scores left after cutting int(n/4) from each end of the sorted
    scores (scipy.stats.trim_mean(x, 0.25), which rliable's IQM is)."""
    x = np.sort(np.asarray(scores, dtype=np.float64).ravel())
    cut = int(0.25 * len(x))
    return float(x[cut : len(x) - cut].mean())


def bootstrap_ci(scores: Sequence[np.ndarray], statistic: Callable[[np.ndarray], float] = iqm, reps: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap CI of `statistic` over the pooled runs; `scores`: one array of run scores per task,
    each resampled with replacement within its task (stratified bootstrap), so every replicate holds each
    task's run count."""
    rng = np.random.default_rng(seed)
    tasks = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    stats = np.empty(reps)
    for r in range(reps):
        stats[r] = statistic(np.concatenate([t[rng.integers(0, len(t), len(t))] for t in tasks]))
    alpha = (1.0 - level) / 2
    return float(np.quantile(stats, alpha)), float(np.quantile(stats, 1.0 - alpha))
