"""Which RL implementation reaches a given success fastest in wall time on this machine? SB3's SAC (PyTorch)
against sbx's SAC and CrossQ (SB3's JAX port), each as a plain `v2r rl` run, one after another (one heavy job
at a time), same task, reward, seed, step budget and evaluations:

    MUJOCO_GL=egl python bench/rl_backends.py --task metaworld:reach-v3 --reward env --steps 20000
    MUJOCO_GL=egl python bench/rl_backends.py --task metaworld:reach-v3 --reward models/reach --steps 10000

For each algorithm: env steps/s over the whole run (training, rendering, reward and evaluations included), the
success of every evaluation, and the wall time at which success first reached --threshold. `--write PAGE`
appends the table, with the command, date and machine, to a markdown page.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ALGOS = ("sac", "sbx-sac", "sbx-crossq")


def run(task: str, reward: str, algo: str, out: Path, args: argparse.Namespace) -> dict:
    """One `v2r rl` run (skipped when OUT already holds a finished one); its evaluations and speed."""
    if not (out / "config.json").exists():
        command = [sys.executable, "-m", "video2reward.cli", "rl", task, "--reward", reward, "--algo", algo,
                   "--steps", str(args.steps), "--envs", str(args.envs), "--eval-every", str(args.eval_every),
                   "--eval-episodes", str(args.eval_episodes), "--seed", str(args.seed), "--threads", "1",
                   "--checkpoint-every", "0", "--quiet", "--out", str(out)]
        print("$ v2r " + " ".join(command[3:]), flush=True)
        subprocess.run(command, check=True, env={**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})
    with (out / "eval.csv").open() as f:
        rows = [{k: float(v) if v else None for k, v in row.items()} for row in csv.DictReader(f)]
    config = json.loads((out / "config.json").read_text())
    wall = rows[-1]["wall_s"]  # the last evaluation ends the run
    reached = next((r for r in rows if (r["success_rate"] or 0.0) >= args.threshold), None)
    return {"algo": algo, "steps": int(config["timesteps"]), "wall_s": wall, "steps_per_s": config["timesteps"] / wall,
            "success": [round(r["success_rate"] or 0.0, 2) for r in rows], "final": rows[-1]["success_rate"],
            "to_threshold_s": reached["wall_s"] if reached else None,
            "to_threshold_step": int(reached["step"]) if reached else None}


def table(results: list[dict], args: argparse.Namespace) -> str:
    lines = [f"| algo | env steps/s | final success | success at each evaluation (every {args.eval_every}) | "
             f"wall time to {args.threshold:.0%} |", "|---|---|---|---|---|"]
    for r in results:
        reach = (f"{r['to_threshold_s']:.0f} s (step {r['to_threshold_step']})" if r["to_threshold_s"] is not None
                 else f"not reached in {r['wall_s']:.0f} s")
        lines.append(f"| {r['algo']} | {r['steps_per_s']:.1f} | {r['final']:.0%} | "
                     f"{' '.join(f'{s:.0%}' for s in r['success'])} | {reach} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="metaworld:reach-v3", help="any `v2r rl` task")
    parser.add_argument("--reward", default="env", help="'env', 'sparse' or a reward model folder")
    parser.add_argument("--algos", nargs="+", default=list(ALGOS), choices=ALGOS)
    parser.add_argument("--steps", type=int, default=20_000, help="environment steps per run")
    parser.add_argument("--envs", type=int, default=2, help="environments per run (v2r rl --envs)")
    parser.add_argument("--eval-every", type=int, default=2500, help="evaluation interval (steps)")
    parser.add_argument("--eval-episodes", type=int, default=10, help="deterministic episodes per evaluation")
    parser.add_argument("--threshold", type=float, default=0.8, help="the success rate to reach")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="bench_out/rl_backends", help="run folders (finished runs are reused)")
    parser.add_argument("--write", metavar="PAGE", help="append the table to this markdown page")
    args = parser.parse_args()
    tag = f"{args.task.replace(':', '_')}-{Path(args.reward).name}-s{args.seed}-{args.steps}"
    results = [run(args.task, args.reward, algo, Path(args.out) / tag / algo, args) for algo in args.algos]
    text = table(results, args)
    print(text)
    if args.write:
        command = "MUJOCO_GL=egl python bench/rl_backends.py " + " ".join(sys.argv[1:]).replace(
            f"--write {args.write}", "").strip()
        header = (f"\n### {args.task}, reward {args.reward}, {args.envs} envs, seed {args.seed}\n\n"
                  f"`{command}` ({datetime.date.today()}, {os.cpu_count()} CPU cores, {platform.machine()})\n\n")
        with Path(args.write).open("a") as f:
            f.write(header + text + "\n")
        print(f"appended to {args.write}")


if __name__ == "__main__":
    main()
