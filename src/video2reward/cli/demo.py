"""`v2r demo` and `v2r demo-data`: the built-in demo tasks, their videos, and the whole pipeline run on them."""

from __future__ import annotations

import argparse
from pathlib import Path

from video2reward.cli.common import AddCommand


def add_parsers(add: AddCommand) -> None:
    """The `demo` and `demo-data` subcommands."""
    # here, not at the top: `import video2reward.cli` stays free of torch and gymnasium
    from video2reward.tasks import (  # TASKS: DEMO_TASKS and the Meta-World tasks
        DEMO_TASKS,
        TASKS,
    )
    from video2reward.tasks.policies import PARTIAL_FRACTION  # here too: gymnasium
    from video2reward.training.config import TrainConfig  # here too: torch

    p = add("demo", "generate demo data, train a reward model (v2r train's default) and the pixel-ridge floor per "
            "task, score, plot and print the eval table, all under one folder", cmd_demo)
    p.add_argument("--out", default="v2r-demo", help="folder for data, models, rewards, plots (default: v2r-demo)")
    p.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS), choices=list(TASKS), help="demo tasks")
    p.add_argument("--steps", type=int, default=TrainConfig.steps,
                   help="training steps of the learned model (split between the default head's two members)")
    p.add_argument("--seed", type=int, default=0, help="seed for data and training")

    p = add("demo-data", "write scripted expert, failed and near-miss videos of demo tasks: OUT/<task>/{train,"
            "test_expert,test_fail,test_partial}/*.mp4 + labels.json (success flags and the environment's dense "
            "signal per frame), and OUT/<task>/test_cam/ (the same seen from cameras the other splits never use)",
            cmd_demo_data)
    p.add_argument("out", help="output folder")
    p.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS), choices=list(TASKS), help="demo tasks")
    p.add_argument("--seed", type=int, default=0, help="seed (same seed, same videos)")
    p.add_argument("--n-train", type=int, default=20, help="expert videos in train/")
    p.add_argument("--n-test-expert", type=int, default=10, help="expert videos in test_expert/")
    p.add_argument("--n-test-fail", type=int, default=10, help="failed videos (random + stalled) in test_fail/")
    p.add_argument("--n-test-partial", type=int, default=None, help="near misses in test_partial/: the expert for "
                   f"{PARTIAL_FRACTION[0]:.0%}-{PARTIAL_FRACTION[1]:.0%} of its length, then idle, never succeeding "
                   "(default: as many as --n-test-fail)".replace("%", "%%"))
    p.add_argument("--camera-shift", action=argparse.BooleanOptionalAction, default=True,
                   help="also write OUT/<task>/test_cam/: as many expert and failed videos as test_expert/ and "
                   "test_fail/, seen from views the other splits never use (Meta-World: other corner cameras and "
                   "a moved training camera; classic control: another crop, colours, background or resolution), "
                   "with their own labels.json and one goal image per view; the other splits are unchanged "
                   "(default: on)")
    p.add_argument("--format", choices=("mp4", "lerobot"), default="mp4", dest="data_format", help="'mp4': each "
                   "split folder holds one mp4 per episode; 'lerobot': each split folder is a LeRobotDataset v3.0 "
                   "(meta/, data/, videos/<camera key>/) with two cameras (Meta-World: observation.images.corner and "
                   ".topview; classic control: .main and .crop) and success, split and the dense signal in its parquet "
                   "files; train with v2r train OUT/<task>/train --camera-key KEY (default: mp4)")
    p.add_argument("--train-views", nargs="+", default=[], metavar="CAMERA", help="Meta-World tasks: also write "
                   "OUT/<task>/train_views/<CAMERA>/, train/'s episodes replayed and seen from these cameras "
                   "(topview, behindGripper, gripperPOV, corner2-4), frame for frame in step, for multi-view TCN: "
                   "v2r pretrain --method tcn --views OUT/<task>/train OUT/<task>/train_views/topview ...")


def cmd_demo(args: argparse.Namespace) -> None:
    from video2reward.demo.pipeline import (
        run_demo,  # here, not at the top: keeps `v2r --help` fast
    )

    run_demo(Path(args.out), tasks=args.tasks, steps=args.steps, seed=args.seed, progress=not args.quiet)


def cmd_demo_data(args: argparse.Namespace) -> None:
    from video2reward.demo import (
        generate_demo_data,  # here, not at the top: keeps `v2r --help` fast
    )

    folders = generate_demo_data(Path(args.out), tasks=args.tasks, seed=args.seed, n_train=args.n_train,
                                 n_test_expert=args.n_test_expert, n_test_fail=args.n_test_fail,
                                 n_test_partial=args.n_test_partial, progress=not args.quiet,
                                 camera_shift=args.camera_shift, train_views=args.train_views,
                                 data_format=args.data_format)
    cam = ", test_cam/" if args.camera_shift else ""
    for task, folder in folders.items():
        views = ", train_views/" if (folder / "train_views").is_dir() and args.train_views else ""
        print(f"{task}: {folder}  (train/, test_expert/, test_fail/, test_partial/{cam}{views}, labels.json)")
    skipped = [task for task, folder in folders.items() if args.train_views and not (folder / "train_views").is_dir()]
    if skipped:
        print(f"no train views for {', '.join(skipped)}: a classic-control task has one 2-D view, no other camera")
    if args.train_views and args.camera_shift:
        from video2reward.demo.train_views import (
            cameras_of_test_cam,  # here, not at the top: keeps `v2r --help` fast
        )

        seen = sorted(set(args.train_views) & cameras_of_test_cam())
        if seen:
            print(f"note: test_cam/ is also seen from {', '.join(seen)}: those views are not unseen any more")
