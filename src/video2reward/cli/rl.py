"""`v2r rl` and `v2r rl-report`: an agent trained on a learned reward (or the env's own, to compare), and the
table and learning curves of such runs."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from video2reward.cli.common import AddCommand


def add_parsers(add: AddCommand) -> None:
    """The `rl` and `rl-report` subcommands."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.core.options import add_config_arguments
    from video2reward.rl.config import RLConfig  # here too

    p = add("rl", "train an agent (SB3 DQN or SAC) on TASK with the learned reward of a model (or the env's own "
            "reward, for comparison), evaluating true task success as it learns", cmd_rl)
    p.add_argument("task", help="a demo task (mountaincar, pendulum, ...), metaworld:<env>-v3, or a gymnasium id")
    p.add_argument("--reward", required=True, help="reward model folder from `v2r train`; or, for the comparison "
                   "runs, 'env' (the environment's own reward) or 'sparse' (1 where the task is achieved, else 0)")
    p.add_argument("--out", required=True, help="run folder: eval.csv, policy.safetensors, learning_curve.png, "
                   "eval_episode.mp4, checkpoint/ (with --seeds: one such folder per seed, OUT/seed<N>)")
    p.add_argument("--seeds", type=int, nargs="+", metavar="SEED", help="run these seeds one after another, each "
                   "into OUT/seed<SEED> (v2r rl-report OUT reads them all); instead of --seed")
    add_config_arguments(p, RLConfig)

    p = add("rl-report", "table (final success and env return over seeds) and learning curves of `v2r rl` runs",
            cmd_rl_report)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders from `v2r rl`")
    p.add_argument("--plot", default="rl_report.png", help="learning-curve PNG to write (default: rl_report.png)")
    p.add_argument("--write", metavar="PAGE", help="also write the table, the plot and this command into a markdown "
                   "page (e.g. docs/results/rl.md; the PNG goes beside it)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap confidence intervals (default: 0)")


def cmd_rl(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.core.options import config_from_args  # here too
    from video2reward.rl.agents import train_agent  # here too
    from video2reward.rl.config import RLConfig  # here too

    config = config_from_args(RLConfig, args)
    runs = [(config, Path(args.out))] if not args.seeds else \
        [(replace(config, seed=seed), Path(args.out) / f"seed{seed}") for seed in dict.fromkeys(args.seeds)]
    for run_config, out in runs:
        rows = train_agent(args.task, args.reward, out, run_config, progress=not args.quiet)
        last = rows[-1]
        rate = "unknown" if last.success_rate != last.success_rate else f"{last.success_rate:.0%}"
        print(f"{args.task} with {'the env reward' if args.reward == 'env' else args.reward}, seed {run_config.seed}: "
              f"final success {rate}, env return {last.env_return:.1f} after {last.step} steps")
        print(f"wrote {out}/eval.csv, policy.safetensors + config.json, learning_curve.png, eval_episode.mp4, "
              f"checkpoint/" + (", refine.csv, reward_model/ (the refined reward model)" if config.refine else "")
              + (", discriminator.csv" if config.reward_mode == "progress+discriminator" else ""))


def cmd_rl_report(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.rl.report import (
        plot_learning_curves,
        report_table,
        write_report_page,
    )

    table = report_table(args.runs, seed=args.seed)
    print(table)
    plot_learning_curves(args.runs, args.plot)
    print(f"wrote {args.plot}")
    if args.write:
        print(f"wrote {write_report_page(args.write, table, args.runs, args.plot)}")
