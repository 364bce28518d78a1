"""Do agents learn manipulation from the video reward alone? The Meta-World suite of the RL guide, end to end:
demo videos -> a reward model per task -> SAC on the learned reward (plain, + discriminator, + refine) and on
the two baselines (the env's dense reward, the sparse success-only reward), same seeds and budget -> one
`v2r rl-report` table (IQM and 95% bootstrap intervals over seeds) written into docs/results/rl.md.

    python bench/rl_success.py --quick                                   # a smoke run: 1 task, 2k steps
    python bench/rl_success.py --steps 100000 --seeds 0 1 --jobs 14 --write docs/results/rl.md   # the full table

Every step is a `v2r` command (printed before it runs), so any row can be re-run by hand. Work already done
is kept: demo data and models that exist are reused, finished runs are skipped, interrupted runs continue with
`--resume`, so the bench itself can be killed and started again. `--jobs N` runs N commands at once, each
with one torch thread (`--threads 1`) and `--envs` environment processes: size N * (1 + envs) to the cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TASKS = ("reach", "drawer-open", "button-press-topdown", "door-open", "window-open", "plate-slide")
KINDS = {  # reward kind -> extra `v2r rl` options (the reward itself is filled in per task)
    "learned": [],
    "learned+disc": ["--reward-mode", "progress+discriminator"],
    "learned+refine": ["--refine"],
    "env": [],
    "sparse": [],
}


def v2r(*args: str) -> list[str]:
    return [sys.executable, "-m", "video2reward.cli", *args]


def run(command: list[str], log: Path) -> int:
    print("$ " + " ".join(command[2:]).replace("video2reward.cli", "v2r"), flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as f:
        code = subprocess.call(command, stdout=f, stderr=subprocess.STDOUT,
                               env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    if code:
        print(f"  failed ({code}): see {log}", flush=True)
    return code


def rl_command(task: str, kind: str, seed: int, models: Path, runs: Path, args: argparse.Namespace) -> list[str] | None:
    """The `v2r rl` command of one run (OUT/runs/TASK/KIND/seedN): None when it finished, with --resume when it
    was interrupted after a checkpoint."""
    out = runs / task / kind
    if (out / f"seed{seed}" / "config.json").exists():
        return None
    reward = kind if kind in ("env", "sparse") else str(models / task)
    resume = ["--resume"] if (out / f"seed{seed}" / "checkpoint").exists() else []
    return v2r("rl", f"metaworld:{task}-v3", "--reward", reward, "--steps", str(args.steps), "--envs", str(args.envs),
               "--eval-every", str(args.eval_every), "--eval-episodes", str(args.eval_episodes), "--checkpoint-every",
               str(args.eval_every), "--threads", "1", "--quiet", "--out", str(out), "--seeds", str(seed),
               *KINDS[kind], *resume)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), help="Meta-World demo tasks")
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=list(KINDS), help="reward kinds")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of every run group")
    parser.add_argument("--steps", type=int, default=100_000, help="environment steps per run")
    parser.add_argument("--envs", type=int, default=2, help="environments per run (v2r rl --envs)")
    parser.add_argument("--eval-every", type=int, default=10_000, help="evaluation (and checkpoint) interval")
    parser.add_argument("--eval-episodes", type=int, default=20, help="deterministic episodes per evaluation")
    parser.add_argument("--jobs", type=int, default=1, help="commands run at once (each: 1 torch thread)")
    parser.add_argument("--out", default="bench_out/rl_success", help="folder of data, models, runs and logs")
    parser.add_argument("--write", metavar="PAGE", help="write the report into this markdown page")
    parser.add_argument("--quick", action="store_true", help="smoke run: reach only, 2,000 steps, 1 seed")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.seeds, args.steps, args.eval_every, args.eval_episodes = ["reach"], [0], 2000, 1000, 2
    root = Path(args.out)
    data, models, runs, logs = root / "data", root / "models", root / "runs", root / "logs"
    missing = [t for t in args.tasks if not (data / t / "train").exists()]
    if missing:
        run(v2r("demo-data", str(data), "--tasks", *missing, "--quiet"), logs / "demo-data.log")
    learned = [k for k in args.kinds if k not in ("env", "sparse")]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        if learned:
            list(pool.map(lambda t: run(v2r("train", str(data / t / "train"), "--out", str(models / t), "--quiet"),
                                        logs / f"train-{t}.log"),
                          [t for t in args.tasks if not (models / t / "config.json").exists()]))
        commands = [(c, logs / f"rl-{t}-{k}-seed{s}.log") for t in args.tasks for k in args.kinds for s in args.seeds
                    if (c := rl_command(t, k, s, models, runs, args)) is not None]
        list(pool.map(lambda item: run(*item), commands))
    groups = [str(runs / t / k) for t in args.tasks for k in args.kinds if (runs / t / k).exists()]
    report = v2r("rl-report", *groups, "--plot", str(root / "rl_report.png"))
    run(report + (["--write", args.write] if args.write else []), logs / "rl-report.log")
    print((logs / "rl-report.log").read_text().strip().split("\n$")[-1])


if __name__ == "__main__":
    main()
