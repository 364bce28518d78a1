"""Reward quality on the demo tasks: task x head -> VOC / AUROC / dense correlation / train s / score fps.

    python bench/reward_quality.py                      # both demo tasks, default settings
    python bench/reward_quality.py --tasks pendulum --steps 500 --out /tmp/rq

Generates the demo data (seeded), trains every head with the defaults of `v2r train`, evaluates on the
held-out test_expert / test_fail videos, and prints the table. Nothing here is cached: every figure is
measured in this run, on this machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
from dataclasses import replace
from pathlib import Path

import torch

from video2reward.config import HEADS, TrainConfig
from video2reward.demo import DEMO_TASKS, generate_demo_data
from video2reward.demo.pipeline import HEADS_COMPARED, format_table, run_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS), choices=DEMO_TASKS)
    parser.add_argument("--heads", nargs="+", default=list(HEADS_COMPARED), choices=HEADS,
                        help=f"heads to compare (default: {' '.join(HEADS_COMPARED)}; all: {' '.join(HEADS)})")
    parser.add_argument("--encoder", default="cnn", choices=("cnn", "vit"))
    parser.add_argument("--steps", type=int, default=TrainConfig.steps)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    args = parser.parse_args()

    out = Path(args.out or tempfile.mkdtemp(prefix="v2r-bench-"))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads; work folder {out}")
    folders = generate_demo_data(out / "data", tasks=args.tasks, seed=args.seed, progress=False)
    rows = []
    for task, task_dir in folders.items():
        for head in args.heads:
            config = replace(TrainConfig(), head=head, encoder=args.encoder, steps=args.steps, seed=args.seed)
            row = run_task(task_dir, out / "models" / f"{task}-{head}", config, progress=False)
            print(format_table([row]).splitlines()[-1], flush=True)
            rows.append(row)
    print()
    print(format_table(rows, markdown=args.markdown))


if __name__ == "__main__":
    main()
