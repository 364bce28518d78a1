"""`v2r score`, `v2r report` and `v2r eval`: a model's per-frame rewards of videos (JSONL and plots), the same as
one HTML page, and how good they are on labelled test folders."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import video2reward  # light: load() imports torch on first use
from video2reward.cli.common import (
    JSON_HELP,
    AddCommand,
    add_dataset_options,
    dataset_selection,
    print_json,
    print_skipped,
    skipped_json,
)
from video2reward.errors import ConfigError

DEVICE_HELP = "cpu, cuda or auto (cuda when available) (default: cpu)"
CAMERA_DEFAULT = "the camera the model was trained on"


def add_parsers(add: AddCommand) -> None:
    """The `score`, `report` and `eval` subcommands."""
    p = add("score", "write per-frame rewards of videos as JSONL: {\"video\", \"rewards\", \"sigma\", \"fps\"} "
            "(+ \"success_prob\" for a --head success model), or with --out X.parquet one row per frame (index, "
            "episode_index, frame_index, timestamp, progress, progress_sigma, success_prob: what LeRobot's "
            "reward-weighted BC reads)", cmd_score)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("model", help="model folder from `v2r train`")
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders of them")
    p.add_argument("--out", required=True, help="file to write: .jsonl (one line per video) or .parquet (one row "
                   "per frame)")
    p.add_argument("--plot", metavar="DIR", help="also write one PNG per video: reward curve + frame strip")
    p.add_argument("--goal", metavar="IMAGE", help="goal image (or video: its last frame) seen from the scoring "
                   "camera; default: the demonstrations' final frames")
    p.add_argument("--relative", action="store_true", help="with --goal: reward = relative goal progress in the "
                   "encoder's features, 0 at the video's first frame and 1 at the goal image (no head): for a camera "
                   "the demonstrations did not use, with ImageNet features (--encoder efficientnet-lite0 --freeze "
                   "--image-size 128) or a model trained with --view-augment; writes video, rewards, fps")
    p.add_argument("--relative-reading", choices=("projection", "distance"), default="projection",
                   help="with --relative: "
                   "'projection' = how far the frame's features have moved along the line from the first frame's "
                   "to the goal's, <z_t - z_0, g - z_0> / |g - z_0|^2; 'distance' = 1 - |z_t - g| / |z_0 - g|")
    p.add_argument("--relative-features", choices=("auto", "map", "pooled"), default="auto", help="with "
                   "--relative: the features z compared: 'map' = the encoder's last feature map before global "
                   "pooling, flattened (keeps where things are in the new camera's picture; cnn and "
                   "efficientnet-lite0 encoders), 'pooled' = the vector the head reads, 'auto' = map where the "
                   "encoder has one, else pooled")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    _add_scoring_options(p)
    add_dataset_options(p, CAMERA_DEFAULT)

    p = add("report", "write OUT/index.html, one self-contained page: every video playing next to its reward curve "
            "(sigma band, success probability) with a cursor that follows playback, and the evaluation table when "
            "the videos come with a labels.json", cmd_report)
    p.add_argument("model", help="model folder from `v2r train`")
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files or folders of them")
    p.add_argument("--out", required=True, help="folder to write index.html into")
    p.add_argument("--labels", help="labels.json (or its folder) for the evaluation table and the dense signal; "
                   "default: a labels.json in a given folder or one or two levels above a given path")
    p.add_argument("--width", type=int, default=320, help="width in pixels of the embedded videos (re-encoded "
                   "small so the page stays light; default: 320)")
    p.add_argument("--quality", type=int, default=30, help="crf of the embedded videos: lower is sharper and larger "
                   "(default: 30)")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    _add_scoring_options(p)
    add_dataset_options(p, CAMERA_DEFAULT)

    p = add("eval", "VOC, success AUROC and dense-reward correlation on DATA_DIR/{test_expert,test_fail}; "
            "near-miss AUROC (expert vs DATA_DIR/test_partial) where that folder exists; where DATA_DIR/test_cam/ "
            "exists (other cameras, `v2r demo-data`), VOC, AUROC and dense there too, also with each camera's goal "
            "image and as relative goal progress to it (`v2r score --goal IMAGE --relative`)", cmd_eval)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("model", help="model folder from `v2r train`")
    p.add_argument("data", help="folder with test_expert/ and test_fail/ (and optionally test_partial/ and "
                   "labels.json)")
    p.add_argument("--out", help="JSON file for the results (default: MODEL/eval.json)")
    p.add_argument("--plot", metavar="PNG", help="also plot the expert, failed and near-miss reward curves to this PNG")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    p.add_argument("--device", default="cpu", help=DEVICE_HELP)
    add_dataset_options(p, CAMERA_DEFAULT)


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    """--workers and --precision, as `score` and `report` take them."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.core.precision import PRECISION_HELP, PRECISIONS

    parser.add_argument("--workers", type=int, default=0, help="decode and resize videos in this many worker "
                        "processes while the model runs in this one, so decoding overlaps the model (same rewards); "
                        "0 = "
                        "decode here (default: 0)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=f"{PRECISION_HELP} (default: auto)")


def _device(name: str):
    """--device as a torch device: 'auto' is cuda when available; a clear error for cuda without one."""
    from video2reward.training.config import (
        resolve_device,  # here, not at the top: keeps `v2r --help` free of torch
    )

    return resolve_device(name)


def cmd_score(args: argparse.Namespace) -> None:
    from video2reward.inference.scoring import (
        score_to_jsonl,  # here, not at the top: keeps `v2r --help` fast
    )

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 (decode in this process) or more")
    from video2reward.training import (
        distributed,  # here, not at the top: keeps `v2r --help` fast
    )

    if distributed.launched_by_torchrun() and not args.relative:
        _score_sharded(args, distributed)
        return
    model = video2reward.load(args.model, device=_device(args.device), precision=args.precision)
    if args.relative:  # relative goal progress to the --goal image, in the encoder's features (no head)
        # here, not at the top: keeps `v2r --help` fast
        from video2reward.inference.relative import relative_to_jsonl, use_feature_map

        if not args.goal:
            raise ConfigError("--relative needs --goal IMAGE: a picture of the task done, taken with this camera")
        spatial = use_feature_map(model, args.relative_features)
        count = relative_to_jsonl(model, args.paths, args.goal, args.out, args.relative_reading, spatial,
                                  dataset_selection(args))
        where = "the encoder's feature map" if spatial else "pooled features"
        print(f"scored {count} videos (relative goal progress to {args.goal}: {args.relative_reading} in {where}) "
              f"-> {args.out}")
        return
    goal = model.goal_from_image(args.goal) if args.goal else None
    write = score_to_jsonl
    if Path(args.out).suffix.lower() == ".parquet":
        from video2reward.inference.progress_table import (
            score_to_parquet as write,  # here, not at the top: keeps `v2r --help` fast
        )
    report = write(model, args.paths, args.out, goal=goal, skip_bad=args.skip_bad, plot_dir=args.plot,
                   progress=not args.quiet, workers=args.workers, select=dataset_selection(args))
    print_skipped(report.skipped)
    if print_json(args, {"out": str(args.out), "videos": len(report.videos), "frames": report.frames,
                          "frames_per_second": report.frames_per_second, "plots": args.plot,
                          "skipped": skipped_json(report.skipped)}):
        return
    print(f"scored {len(report.videos)} videos, {report.frames} frames at {report.frames_per_second:.0f} "
          f"frames/s -> {args.out}" + (f"; plots in {args.plot}" if args.plot else ""))


def _score_sharded(args: argparse.Namespace, distributed) -> None:
    """`torchrun ... -m video2reward.cli score`: each process scores its share, rank 0 merges (inference/sharded.py)."""
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.inference.progress_table import parquet_output
    from video2reward.inference.scoring import check_output, jsonl_output
    from video2reward.inference.sharded import score_sharded

    if args.plot or args.workers:
        raise ConfigError("--plot and --workers are for one process; under torchrun each process is a worker: "
                          "drop them (plot afterwards with a one-process `v2r score --plot`)")
    out = check_output(args.out)
    output = parquet_output if out.suffix.lower() == ".parquet" else jsonl_output
    with distributed.session(args.device, timeout_minutes=24 * 60):  # a rank may wait long for the slowest
        model = video2reward.load(args.model, device=distributed.place(_device(args.device)), precision=args.precision)
        report = score_sharded(model, args.paths, out, output, goal_image=args.goal, skip_bad=args.skip_bad,
                               progress=not args.quiet, select=dataset_selection(args))
    if report is None:  # rank 0 prints for the run
        return
    print_skipped(report.skipped)
    if print_json(args, {"out": str(out), "videos": len(report.videos), "frames": report.frames,
                          "skipped": skipped_json(report.skipped)}):
        return
    print(f"scored {len(report.videos)} videos, {report.frames} frames in {os.environ['WORLD_SIZE']} processes "
          f"-> {out}")


def cmd_report(args: argparse.Namespace) -> None:
    from video2reward.evaluation.report import (
        write_report,  # here, not at the top: keeps `v2r --help` fast
    )

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 (decode in this process) or more")
    model = video2reward.load(args.model, device=_device(args.device), precision=args.precision)
    result = write_report(model, args.model, args.videos, args.out, labels=args.labels, width=args.width,
                          quality=args.quality, skip_bad=args.skip_bad, workers=args.workers, progress=not args.quiet,
                          select=dataset_selection(args))
    print_skipped(result.skipped)
    if result.eval is not None:
        print(result.eval.table())
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 1e6 else f"{result.bytes / 1e3:.0f} kB"
    print(f"wrote {result.path} ({result.videos} videos, {size}): open it in a browser")


def cmd_eval(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.core.files import write_json  # here too
    from video2reward.evaluation.data_dir import evaluate_data_dir_with_near_misses
    from video2reward.evaluation.plots import plot_eval_summary  # here too

    model = video2reward.load(args.model, device=_device(args.device))
    result, expert, failed, partial = evaluate_data_dir_with_near_misses(model, args.data, skip_bad=args.skip_bad,
                                                                         progress=not args.quiet,
                                                                         select=dataset_selection(args))
    out = Path(args.out) if args.out else Path(args.model) / "eval.json"
    # files first, then the printout: `v2r eval ... | head` closes stdout early and must not lose them
    write_json(out, {"model": str(args.model), "data": str(args.data), **json.loads(result.to_json())})
    if args.plot:
        plot_eval_summary(Path(args.plot), result, expert, failed, partial, model=model, data_dir=args.data)
    if print_json(args, {"out": str(out), "plot": args.plot, **json.loads(result.to_json())}):
        return
    print(result.table())
    print(f"wrote {out}" + (f" and {args.plot}" if args.plot else ""))
