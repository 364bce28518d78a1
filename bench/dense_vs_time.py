"""How far can a reward that follows time agree with an environment's dense reward?

    python bench/dense_vs_time.py data/pendulum [models/pendulum-progress models/pendulum-pixel-ridge ...]

VOC asks a reward to rise through every expert video; the env's dense signal (labels.json) need not. This
prints, on the held-out expert videos, the dense Spearman of the *time reward* t / (T - 1) (VOC = 1 by
construction: the best any reward can do on VOC), next to each given model's VOC and dense Spearman on the
same expert videos and pooled over test_expert + test_fail (the `dense` of `v2r eval`). When the time reward's
expert-only dense is below a model's, that model buys its dense agreement with a lower VOC: the two
metrics pull apart on that task.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from video2reward import load
from video2reward.evaluation.data_dir import evaluate_data_dir
from video2reward.evaluation.metrics import (
    dense_correlation,
    dense_from_labels,
    load_labels,
    value_order_correlation,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a task folder from `v2r demo-data` (with labels.json)")
    parser.add_argument("models", nargs="*", type=Path, help="model folders to compare")
    args = parser.parse_args()
    dense = dense_from_labels(load_labels(args.data))
    if not dense:
        raise SystemExit(f"{args.data}: no labels.json with dense signals")
    experts = {k: np.asarray(v) for k, v in dense.items() if k.startswith("test_expert/")}
    time = [np.arange(len(v)) / max(1, len(v) - 1) for v in experts.values()]
    print(f"{args.data.name}: {len(experts)} expert videos")
    print(f"{'reward':40s} {'VOC':>6s} {'dense (expert)':>15s} {'dense (expert + fail)':>22s}")
    print(f"{'time t/(T-1)':40s} {1.0:6.3f} {dense_correlation(time, list(experts.values())):15.3f} {'-':>22s}")
    for model_dir in args.models:
        result, expert, _ = evaluate_data_dir(load(model_dir), args.data, progress=False)
        keys = [k for k in experts if k in expert]
        expert_dense = dense_correlation([expert[k] for k in keys], [experts[k] for k in keys])
        voc = value_order_correlation([expert[k] for k in keys])
        print(f"{model_dir.name:40s} {voc:6.3f} {expert_dense:15.3f} {result.dense_spearman:22.3f}")


if __name__ == "__main__":
    main()
