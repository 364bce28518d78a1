"""Reward quality on the demo tasks: task x head x encoder -> VOC / AUROC / AUROC near-miss / dense / train s /
score fps.

    python bench/reward_quality.py                      # pendulum + mountaincar: the default, its progress head alone, floor
    python bench/reward_quality.py --tasks pendulum reach --rows progress:cnn rank:cnn progress:rotation \\
        progress:efficientnet-lite0 pixel-ridge --steps 1000 --threads 1 --out /tmp/rq

A row is HEAD:ENCODER. ENCODER is `cnn` or `vit` (random init, fine-tuned: `v2r train --pretrain none`), a
`v2r pretrain` method (`rotation`, `simclr`, `tcn`, ...: `v2r train --pretrain METHOD`, which first pretrains a
fresh cnn on the task's own train/ videos with the default `v2r pretrain` settings, then fine-tunes it under the
head; that time is included in `train s`; `progress+rank:rotation` is `v2r train`'s default), or `efficientnet-lite0`
(the offline ImageNet model, frozen). `pixel-ridge` is the floor.
A row may end in `,FIELD=VALUE` options of `v2r train`, which name the row too: a TrainConfig field, or an option
of the row's head (its `--HEAD-OPTION` flags; `MEMBER.FIELD` for a member of a combined head):
`temporal:rotation,sequence=ssm,context=16` is the temporal head with an SSM over 16 frames, and
`progress+rank:rotation,progress.motion_gap=2` the default with motion gap 2. A list value keeps its commas:
`progress+rank:rotation,synthetic_negatives=stall,rewind`.

Generates the demo data (seeded; or reuses `--data DIR` made by `v2r demo-data`), trains every row, evaluates
on the held-out splits: VOC on test_expert, AUROC test_expert vs test_fail, AUROC near-miss test_expert vs
test_partial, dense = Spearman with the env's dense signal over test_expert + test_fail; VOC cam = VOC on
test_cam/test_expert (other cameras, `v2r demo-data`'s camera-shift split), VOC cam goal = the same with each
camera's goal image (goal-reading heads only), VOC cam rel = relative goal progress to that image in the model's
encoder features (relative_reward.py, projection reading; not for pixel-ridge), AUROC cam rel = its success AUROC
from the other cameras (expert vs failed). Each finished row is
appended to OUT/results.jsonl at once; a rerun with the same --out skips the rows already there, so an
interrupted benchmark continues. Nothing else is cached: every figure is measured on this machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import tempfile
from dataclasses import asdict, replace
from pathlib import Path

import torch
from results_page import add_write_option, write_results_page

from video2reward.demo import generate_demo_data
from video2reward.demo.pipeline import QualityRow, format_table, run_task
from video2reward.encoders import ENCODERS
from video2reward.objectives import PRETRAIN_METHODS
from video2reward.rewards.registry import HEAD_NAMES, HEADS, member_kinds
from video2reward.tasks import TASKS
from video2reward.training.config import TrainConfig

FROZEN_ENCODERS = ("efficientnet-lite0",)  # pretrained architectures used frozen (fine-tuning is ~4x slower)
DEFAULT_ROWS = ("progress+rank:rotation", "progress:rotation", "pixel-ridge")  # the default, its progress head alone, the floor


def parse_row(text: str) -> tuple[str, str]:
    """HEAD[:ENCODER[,OPTION=VALUE...]] -> (head, encoder with its options, e.g. 'rotation,sequence=ssm')."""
    head, _, encoder = text.partition(":")
    encoder, *options = encoder.split(",")
    if head not in HEAD_NAMES:
        raise argparse.ArgumentTypeError(f"{text}: unknown head {head!r} (known: {', '.join(HEAD_NAMES)})")
    if head == "pixel-ridge":
        return head, ""
    encoder = encoder or "cnn"
    if encoder not in ENCODERS and encoder not in PRETRAIN_METHODS:
        raise argparse.ArgumentTypeError(
            f"{text}: unknown encoder {encoder!r} (an architecture: {', '.join(ENCODERS)}; or a pretraining "
            f"method: {', '.join(PRETRAIN_METHODS)})")
    try:
        row_options(head, options)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text}: {exc}") from None
    return head, ",".join([encoder, *options])


def row_options(head: str, options: list[str]) -> tuple[dict, dict]:
    """['context=16', 'steps=500'] -> ({'steps': 500}, {'temporal': {'context': 16}}): TrainConfig fields and the
    head's options (`MEMBER.FIELD` for a member of a combined head), typed."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    train, heads = {}, {}
    joined: list[str] = []  # a part without '=' continues the previous option's comma list (x=a,b,c)
    for option in options:
        if "=" not in option and joined:
            joined[-1] += "," + option
        else:
            joined.append(option)
    for option in joined:
        key, _, value = option.partition("=")
        key = key.replace("-", "_")
        kind, _, name = key.rpartition(".")
        kind = kind or head
        head_fields = ({f.name: f for f in dataclasses.fields(HEADS[kind].config)}
                       if kind in member_kinds(head) else {})
        if not value or (key not in fields and name not in head_fields):
            raise ValueError(f"{option!r} is not FIELD=VALUE of a `v2r train` option or of the {head} head")
        field = fields[key] if key in fields else head_fields[name]
        default = field.default
        typed = type(default)(value) if not isinstance(default, bool) else value.lower() in ("1", "true", "yes")
        if key in fields:
            train[key] = typed
        else:
            heads.setdefault(kind, {})[name] = typed
    return train, heads


def row_name(head: str, encoder: str) -> str:
    return head if head == "pixel-ridge" else f"{head}:{encoder}"


def run_row(task_dir: Path, head: str, encoder: str, out: Path, args) -> dict:
    """Train and evaluate one row; returns its JSON record."""
    name = row_name(head, encoder).replace(":", "-").replace(",", "-").replace("=", "")
    name = name.replace(os.sep, "_").replace("/", "_")  # an encoder=PATH option: one folder, not a nested path
    encoder, *options = encoder.split(",")  # row options (e.g. sequence=ssm) override TrainConfig fields
    config = replace(TrainConfig(), head=head, steps=args.steps, seed=args.seed, threads=args.threads)
    if head != "pixel-ridge":
        if encoder in PRETRAIN_METHODS:  # pretrained on the task's train/ videos inside `v2r train`
            config = replace(config, encoder="cnn", pretrain=encoder)
        else:
            config = replace(config, encoder=encoder, pretrain="none", freeze=encoder in FROZEN_ENCODERS)
    train, heads = row_options(head, options)
    config = replace(config, **train, head_options=heads)
    model_dir = out / "models" / f"{task_dir.name}-{name}"
    row = run_task(task_dir, model_dir, config, progress=False)
    record = asdict(row)
    saved = json.loads((model_dir / "config.json").read_text())
    pretrain_seconds = ((saved.get("encoder") or {}).get("pretrained_with") or {}).get("seconds", 0.0)
    record.update(head=row_name(head, ",".join([encoder, *options])), pretrain_seconds=pretrain_seconds,
                  steps=args.steps, seed=args.seed, threads=args.threads)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["pendulum", "mountaincar"], choices=sorted(TASKS),
                        help="demo tasks (Meta-World ones render on the CPU: a few minutes of data generation)")
    parser.add_argument("--rows", nargs="+", type=parse_row, default=[parse_row(r) for r in DEFAULT_ROWS],
                        help="HEAD:ENCODER rows (default: %(default)s); see the module docstring")
    parser.add_argument("--steps", type=int, default=TrainConfig.steps, help="training steps of every learned head")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    parser.add_argument("--data", default=None, help="reuse this `v2r demo-data` folder instead of generating")
    parser.add_argument("--out", default=None, help="work folder (default: a temporary one); rerun to resume")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    add_write_option(parser)
    parser.add_argument("--title", default="Reward quality on the demo tasks",
                        help="title of the --write page (several pages from one work folder)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)

    out = Path(args.out or tempfile.mkdtemp(prefix="v2r-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__} with {torch.get_num_threads()} threads; work folder {out}")
    if args.data:
        folders = {t: Path(args.data) / t for t in args.tasks}
        missing = [str(p) for p in folders.values() if not (p / "train").is_dir()]
        if missing:
            raise SystemExit(f"--data: no train/ in {', '.join(missing)}; make it with `v2r demo-data DIR --tasks ...`")
    else:
        folders = generate_demo_data(out / "data", tasks=args.tasks, seed=args.seed, progress=False)
    results = out / "results.jsonl"
    done = {}
    if results.exists():
        for line in results.read_text().splitlines():
            record = json.loads(line)
            done[(record["task"], record["head"])] = record
    rows = []
    for task, task_dir in folders.items():
        for head, encoder in args.rows:
            key = (task, row_name(head, encoder))
            if key not in done:
                done[key] = run_row(task_dir, head, encoder, out, args)
                with open(results, "a", encoding="utf-8") as f:
                    f.write(json.dumps(done[key]) + "\n")
            record = done[key]
            row = QualityRow(record["task"], record["head"], record["voc"], record["auroc"], record["dense"],
                             record["train_seconds"], record["score_fps"], record.get("auroc_near_miss"),
                             record.get("voc_cam"), record.get("voc_cam_goal"), record.get("voc_cam_relative"),
                             record.get("auroc_cam_relative"))
            print(format_table([row]).splitlines()[-1], flush=True)
            rows.append(row)
    print()
    print(format_table(rows, markdown=args.markdown))
    if args.write:
        write_results_page(
            args.write, args.title, format_table(rows, markdown=True),
            seeds=str(args.seed), intro=PAGE_INTRO.format(steps=args.steps), notes=PAGE_NOTES)


PAGE_INTRO = """\
Each row trains one reward model on a demo task's `train/` videos ({steps} steps of every learned head) and
evaluates it on the held-out splits. `progress+rank:rotation` is `v2r train`'s default; `pixel-ridge` is the
floor every learned reward should beat."""

PAGE_NOTES = """\
- **VOC**: mean Spearman correlation of reward against frame index over the held-out expert videos.
- **AUROC**: expert against failed videos, each scored by the mean reward of its last 5 frames.
- **AUROC near-miss**: expert against `test_partial` videos (the scripted expert acts for 60-85% of its
  episode, then stalls: never a success).
- **dense**: Spearman correlation of the reward with the environment's dense signal (`labels.json`), pooled
  over every frame of the expert and failed test videos.
- **VOC cam**, **VOC cam goal**, **VOC cam rel**, **AUROC cam rel**: the same from other cameras
  (`test_cam/`); see [Camera moves](../guides/camera.md).
- **train s**: `v2r train` wall time, decoding and pretraining included. **score fps**: frames per second
  scoring the test videos, decoding included. Both depend on the machine and its load (see above)."""


if __name__ == "__main__":
    main()
