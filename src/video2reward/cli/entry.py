"""The `v2r` command: the top-level parser, each command group's subcommands in workflow order, and `main`,
which runs one and turns errors into exit codes (2: a bad input or config, 130: Ctrl-C, 1: stdout closed).
Bare `v2r` prints the overview (`v2r --help`) and exits 2, as a command line without its command is.

Every group module (demo, train, rl, deploy, score) owns its subcommands' options and `cmd_*` functions and
imports torch and the library only inside them, so `v2r --help` stays fast."""

from __future__ import annotations

import argparse
import os
import shlex
import sys

from video2reward.cli import demo, deploy, rl, score, train
from video2reward.cli.common import EPILOG, command_adder, print_json
from video2reward.errors import V2RError

DESCRIPTION = """v2r: videos of a task in, a dense reward function out.

    v2r demo                                   # everything below on built-in demo tasks, in ./v2r-demo
    v2r demo-data data/                        # scripted expert / failed videos of classic-control tasks
    v2r train data/pendulum/train --out models/pendulum
    v2r score models/pendulum data/pendulum/test_expert --out rewards.jsonl --plot plots/
    v2r eval models/pendulum data/pendulum     # VOC / AUROC / dense-reward correlation
    v2r report models/pendulum data/pendulum/test_expert data/pendulum/test_fail --out report/  # HTML page
    torchrun --nproc_per_node 4 -m video2reward.cli train ...   # DistributedDataParallel (also pretrain)
    v2r train data/pendulum/train --head success --negatives failed_videos/ --out models/pendulum-success

    v2r pretrain data/pendulum/train --method dino --out encoders/pendulum-dino   # self-supervised encoder
    v2r probe encoders/pendulum-dino data/pendulum    # how well time reads off its frozen features
    v2r train data/pendulum/train --encoder encoders/pendulum-dino [--freeze] --out models/pendulum

    v2r distill models/pendulum --student tiny --out models/pendulum-tiny   # same head on a tiny, faster CNN
    v2r export models/pendulum-tiny --format torchscript --out pendulum.pt  # scoring for deployment

    v2r rl mountaincar --reward models/mountaincar --algo dqn --out runs/mc-v2r   # an agent on the video reward
    v2r rl mountaincar --reward env --algo dqn --out runs/mc-env                   # the comparison run
    v2r rl-report runs/mc-v2r runs/mc-env                                          # table + learning curves
"""

GROUPS = (demo, train, rl, deploy, score)  # the order of the commands in `v2r --help`: the workflow's
COMMAND_VARIABLE = "V2R_COMMAND"  # the running `v2r ...` command line, which model cards record (inference/card.py)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="v2r", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = command_adder(sub)
    for group in GROUPS:
        group.add_parsers(add)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # bare `v2r`: the overview, not "COMMAND is required"
        parser.print_help()
        return 2
    args = parser.parse_args(argv)
    if getattr(args, "json", False):
        args.quiet = True
    given = os.environ.get(COMMAND_VARIABLE)
    os.environ[COMMAND_VARIABLE] = shlex.join(["v2r", *(sys.argv[1:] if argv is None else argv)])  # model cards
    try:
        args.func(args)
    except V2RError as exc:
        print_json(args, {"error": str(exc)})
        from video2reward.training import (
            distributed,  # here, not at the top: `import video2reward.cli` stays light
        )

        where = f" (rank {os.environ.get('RANK')})" if distributed.launched_by_torchrun() else ""  # group is gone
        print(f"v2r {args.command}{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"v2r {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `v2r eval ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        if given is None:
            os.environ.pop(COMMAND_VARIABLE, None)
        else:
            os.environ[COMMAND_VARIABLE] = given
    return 0

