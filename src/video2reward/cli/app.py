"""The `v2r` command. Thin: parse, call the library, print."""

from __future__ import annotations

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

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from video2reward.cli import examples as help_examples
from video2reward.training import distributed
from video2reward.training.config import PretrainConfig, RLConfig, TrainConfig, add_config_arguments, config_from_args
from video2reward.errors import ConfigError, V2RError

EPILOG = "Every command takes --help. Videos: mp4/webm/avi/mov/mkv/gif files or folders of png/jpg frames."


def _print_skipped(skipped: list[tuple[str, str]]) -> None:
    if skipped:
        print(f"skipped {len(skipped)} bad video(s):", file=sys.stderr)
        for _, reason in skipped:
            print(f"  {reason}", file=sys.stderr)


JSON_HELP = ("print the results as one JSON line on stdout instead of the text summary, for scripts (implies "
             "--quiet; an error is {\"error\": ...} with exit status 2)")


def _print_json(args: argparse.Namespace, summary: dict) -> bool:
    """With --json: `summary` as one JSON line (NaN as null); returns whether it printed."""
    if not getattr(args, "json", False):
        return False
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}
    print(json.dumps({"command": args.command, **clean}))
    return True


def _skipped_json(skipped: list[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"video": video, "reason": reason} for video, reason in skipped]


def cmd_demo_data(args: argparse.Namespace) -> None:
    from video2reward.demo import generate_demo_data

    folders = generate_demo_data(Path(args.out), tasks=args.tasks, seed=args.seed, n_train=args.n_train,
                                 n_test_expert=args.n_test_expert, n_test_fail=args.n_test_fail,
                                 n_test_partial=args.n_test_partial, progress=not args.quiet,
                                 camera_shift=args.camera_shift, train_views=args.train_views)
    cam = ", test_cam/" if args.camera_shift else ""
    for task, folder in folders.items():
        views = ", train_views/" if (folder / "train_views").is_dir() and args.train_views else ""
        print(f"{task}: {folder}  (train/, test_expert/, test_fail/, test_partial/{cam}{views}, labels.json)")
    skipped = [task for task, folder in folders.items() if args.train_views and not (folder / "train_views").is_dir()]
    if skipped:
        print(f"no train views for {', '.join(skipped)}: a classic-control task has one 2-D view, no other camera")
    if args.train_views and args.camera_shift:
        from video2reward.demo.train_views import cameras_of_test_cam

        seen = sorted(set(args.train_views) & cameras_of_test_cam())
        if seen:
            print(f"note: test_cam/ is also seen from {', '.join(seen)}: those views are not unseen any more")


def cmd_train(args: argparse.Namespace) -> None:
    from video2reward.training.train import train_reward_model

    config = config_from_args(TrainConfig, args)
    with distributed.session(config.device):  # torchrun: one process group for the run (else nothing)
        result = train_reward_model(args.dirs, args.out, config, resume=args.resume, skip_bad=args.skip_bad,
                                    progress=not args.quiet and distributed.is_main())
        if not distributed.is_main():  # rank 0 prints for the run
            return
    _print_skipped(result.skipped)
    if _print_json(args, {"out": str(args.out), "model": result.model.describe(), "videos": result.num_videos,
                          "frames": result.num_frames, "seconds": result.seconds, "metrics": result.metrics,
                          "skipped": _skipped_json(result.skipped), "warnings": list(result.warnings)}):
        return
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    print(f"trained {result.model.describe()} on {result.num_videos} videos ({result.num_frames} frames) "
          f"in {result.seconds:.1f} s; {metrics}")
    print(f"saved {args.out}/model.safetensors + config.json")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def cmd_score(args: argparse.Namespace) -> None:
    import video2reward
    from video2reward.inference.scoring import score_to_jsonl

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 (decode in this process) or more")
    model = video2reward.load(args.model, device=args.device, precision=args.precision)
    if args.relative:  # relative goal progress to the --goal image, in the encoder's features (no head)
        from video2reward.inference.relative import relative_to_jsonl

        if not args.goal:
            raise ConfigError("--relative needs --goal IMAGE: a picture of the task done, taken with this camera")
        from video2reward.inference.relative import use_feature_map

        spatial = use_feature_map(model, args.relative_features)
        count = relative_to_jsonl(model, args.paths, args.goal, args.out, args.relative_reading, spatial)
        where = "the encoder's feature map" if spatial else "pooled features"
        print(f"scored {count} videos (relative goal progress to {args.goal}: {args.relative_reading} in {where}) "
              f"-> {args.out}")
        return
    goal = model.goal_from_image(args.goal) if args.goal else None
    report = score_to_jsonl(model, args.paths, args.out, goal=goal, skip_bad=args.skip_bad,
                            plot_dir=args.plot, progress=not args.quiet, workers=args.workers)
    _print_skipped(report.skipped)
    if _print_json(args, {"out": str(args.out), "videos": len(report.videos), "frames": report.frames,
                          "frames_per_second": report.frames_per_second, "plots": args.plot,
                          "skipped": _skipped_json(report.skipped)}):
        return
    print(f"scored {len(report.videos)} videos, {report.frames} frames at {report.frames_per_second:.0f} "
          f"frames/s -> {args.out}" + (f"; plots in {args.plot}" if args.plot else ""))


def cmd_report(args: argparse.Namespace) -> None:
    import video2reward
    from video2reward.evaluation.report import write_report

    if args.workers < 0:
        raise ConfigError(f"--workers {args.workers}: give 0 (decode in this process) or more")
    model = video2reward.load(args.model, device=args.device, precision=args.precision)
    result = write_report(model, args.model, args.videos, args.out, labels=args.labels, width=args.width,
                          quality=args.quality, skip_bad=args.skip_bad, workers=args.workers, progress=not args.quiet)
    _print_skipped(result.skipped)
    if result.eval is not None:
        print(result.eval.table())
    size = f"{result.bytes / 1e6:.1f} MB" if result.bytes >= 1e6 else f"{result.bytes / 1e3:.0f} kB"
    print(f"wrote {result.path} ({result.videos} videos, {size}): open it in a browser")


def cmd_eval(args: argparse.Namespace) -> None:
    import video2reward
    from video2reward.evaluation.data_dir import evaluate_data_dir_with_near_misses
    from video2reward.core.files import write_json
    from video2reward.evaluation.plots import plot_eval_summary

    model = video2reward.load(args.model, device=args.device)
    result, expert, failed, _ = evaluate_data_dir_with_near_misses(model, args.data, skip_bad=args.skip_bad,
                                                                   progress=not args.quiet)
    out = Path(args.out) if args.out else Path(args.model) / "eval.json"
    # files first, then the printout: `v2r eval ... | head` closes stdout early and must not lose them
    write_json(out, {"model": str(args.model), "data": str(args.data), **json.loads(result.to_json())})
    if args.plot:
        plot_eval_summary(Path(args.plot), result, expert, failed)
    if _print_json(args, {"out": str(out), "plot": args.plot, **json.loads(result.to_json())}):
        return
    print(result.table())
    print(f"wrote {out}" + (f" and {args.plot}" if args.plot else ""))


def _method_options(args: argparse.Namespace) -> dict:
    """The `--<method>-<field>` options the user gave, for the chosen method only."""
    from video2reward.objectives import OBJECTIVES

    given = {key: value for key, value in vars(args).items() if key.startswith("opt__")}
    options = {}
    for key, value in given.items():
        _, method, name = key.split("__", 2)
        if method != args.method:
            flag = f"--{method}-{name.replace('_', '-')}"
            raise ConfigError(f"{flag} belongs to --method {method}, but --method is {args.method}")
        options[name] = value
    assert args.method in OBJECTIVES
    return options


def cmd_pretrain(args: argparse.Namespace) -> None:
    from video2reward.training.pretrain import pretrain_encoder

    config = config_from_args(PretrainConfig, args)
    with distributed.session(config.device):  # torchrun: one process group for the run (else nothing)
        if not args.dirs and not args.views:
            raise ConfigError("give the video folders (DIR ...) or, for multi-view TCN, --views DIR1 DIR2 ...")
        result = pretrain_encoder(args.dirs, args.out, config, _method_options(args), resume=args.resume,
                                  skip_bad=args.skip_bad, progress=not args.quiet and distributed.is_main(),
                                  views=args.views or ())
        if not distributed.is_main():  # rank 0 prints for the run
            return
    _print_skipped(result.skipped)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    print(f"pretrained a {config.encoder} encoder with {config.method} on {result.num_videos} videos "
          f"({result.num_frames} frames) in {result.seconds:.1f} s; {metrics}")
    print(f"saved {args.out}/encoder.safetensors + config.json; use it with: v2r train DIR --encoder {args.out}")


def cmd_probe(args: argparse.Namespace) -> None:
    from video2reward.encoders import ENCODERS, build_encoder
    from video2reward.encoders.pretrained import load_encoder
    from video2reward.core.files import write_json
    from video2reward.evaluation.probe import probe_encoder

    if args.encoder in ENCODERS:  # a randomly initialised encoder: the baseline every pretraining must beat
        torch.manual_seed(args.seed)
        encoder = build_encoder(args.encoder, args.image_size)
    else:
        encoder, _ = load_encoder(args.encoder)
    result = probe_encoder(encoder, args.data, k=args.k, progress=not args.quiet)
    print(result.table())
    if args.out:
        write_json(Path(args.out), {"encoder": args.encoder, "data": str(args.data), **result.to_dict()})
        print(f"wrote {args.out}")


def cmd_rl(args: argparse.Namespace) -> None:
    from video2reward.rl.agents import train_agent

    config = config_from_args(RLConfig, args)
    rows = train_agent(args.task, args.reward, args.out, config, progress=not args.quiet)
    last = rows[-1]
    print(f"{args.task} with {'the env reward' if args.reward == 'env' else args.reward}: final success "
          f"{last.success_rate:.0%}, env return {last.env_return:.1f} after {last.step} steps")
    print(f"wrote {args.out}/eval.csv, policy.safetensors + config.json, learning_curve.png, eval_episode.mp4"
          + (", refine.csv, reward_model/ (the refined reward model)" if config.refine else ""))


def cmd_rl_report(args: argparse.Namespace) -> None:
    from video2reward.rl.report import plot_learning_curves, report_table

    print(report_table(args.runs))
    plot_learning_curves(args.runs, args.plot)
    print(f"wrote {args.plot}")


def cmd_distill(args: argparse.Namespace) -> None:
    from video2reward.training.config import DistillConfig
    from video2reward.training.distill import distill

    config = config_from_args(DistillConfig, args)
    result = distill(args.model, args.out, config, resume=args.resume, skip_bad=args.skip_bad,
                     progress=not args.quiet)
    a = result.agreement
    loss = result.metrics.get("loss", float("nan"))
    print(f"distilled {args.model} into a {config.student} student ({result.model.describe()}) on "
          f"{result.num_videos} videos ({result.num_frames} frames) in {result.seconds:.1f} s; loss {loss:.4f}")
    print(f"on its training videos: Spearman with the teacher's rewards {a['teacher_spearman']:.3f}, "
          f"VOC {a['voc']:.3f} (teacher {a['teacher_voc']:.3f})")
    print(f"saved {args.out}/model.safetensors + config.json")


def cmd_export(args: argparse.Namespace) -> None:
    import video2reward
    from video2reward.inference.export import export_model

    model = video2reward.load(args.model)
    meta = export_model(model, args.out, args.format, args.quantize)
    diff = meta["max_abs_diff"]
    check = ("not checked: install onnxruntime to compare" if diff is None else
             "max |exported - eager| " + ", ".join(f"{k} {v:.2g}" for k, v in diff.items()))
    print(f"wrote {args.out}: {args.format}{' int8' if args.quantize == 'int8' else ''} scorer of a "
          f"{model.describe()}; {check}")
    context = int(meta.get("context", 1))  # a temporal head reads each frame with its K-1 predecessors
    previous, reads = ("(B,D)", f"motion_gap={meta['motion_gap']}")
    if context > 1:
        previous, reads = "(B,K-1,D)", f"context K={context}"
    print(f"inputs: frames (B,3,S,S) float in [0,1], initial (D,), goal (D,), previous {previous} -> mu (B,), "
          f"sigma (B,), z (B,D); S={meta['image_size']}, D={meta['dim']}, {reads}")


def cmd_demo(args: argparse.Namespace) -> None:
    from video2reward.demo.pipeline import run_demo

    run_demo(Path(args.out), tasks=args.tasks, steps=args.steps, seed=args.seed, progress=not args.quiet)


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    """One argument group per pretraining method: `--dino-teacher-temp` etc., each with its help text."""
    from video2reward.training.config import _resolve
    from video2reward.objectives import OBJECTIVES, objective_fields

    for method in OBJECTIVES:
        group = parser.add_argument_group(f"{method} options (with --method {method})")
        for name, f in objective_fields(method).items():
            flag = f"--{method}-{name.replace('_', '-')}"
            try:
                kind = f.type if isinstance(f.type, type) else _resolve(f.type)
            except KeyError:  # tuple-valued fields (crop scales) are not exposed on the command line
                continue
            help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
            dest = f"opt__{method}__{name}"
            if kind is bool:
                group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            elif kind in (int, float, str):
                group.add_argument(flag, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text)


def _add_scoring_options(parser: argparse.ArgumentParser) -> None:
    from video2reward.core.precision import PRECISION_HELP, PRECISIONS

    parser.add_argument("--workers", type=int, default=0, help="decode and resize videos in this many worker "
                        "processes while the model runs in this one, so decoding overlaps the model (same rewards); 0 = "
                        "decode here (default: 0)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS, help=f"{PRECISION_HELP} (default: auto)")


def build_parser() -> argparse.ArgumentParser:
    from video2reward.tasks import DEMO_TASKS, TASKS  # TASKS: DEMO_TASKS and the Meta-World tasks
    from video2reward.tasks.policies import PARTIAL_FRACTION

    parser = argparse.ArgumentParser(prog="v2r", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, help_text: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_examples.description(help_text),
                           epilog=help_examples.epilog(name, EPILOG),
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # keeps the examples' lines
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)
        return p

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
    p.add_argument("--train-views", nargs="+", default=[], metavar="CAMERA", help="Meta-World tasks: also write "
                   "OUT/<task>/train_views/<CAMERA>/, train/'s episodes replayed and seen from these cameras "
                   "(topview, behindGripper, gripperPOV, corner2-4), frame for frame in step, for multi-view TCN: "
                   "v2r pretrain --method tcn --views OUT/<task>/train OUT/<task>/train_views/topview ...")

    p = add("train", "train a reward model: every video under DIR... is one successful demonstration", cmd_train)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="video files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="model folder to write (model.safetensors + config.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoint")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    add_config_arguments(p, TrainConfig)

    p = add("pretrain", "learn a frame encoder from unlabelled videos with a self-supervised objective; "
            "save it for `v2r train --encoder`", cmd_pretrain)
    p.add_argument("dirs", nargs="*", metavar="DIR", help="video files or folders (searched recursively)")
    p.add_argument("--views", nargs="+", metavar="DIR", help="instead of DIR...: two or more folders of the same "
                   "episodes filmed by other cameras, matched by file name (synchronised: frame t of one is the "
                   "moment of frame t of the others); with --method tcn, multi-view TCN makes one moment seen by two "
                   "cameras agree (video/multiview.py)")
    p.add_argument("--out", required=True, help="encoder folder to write (encoder.safetensors + config.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoint")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    add_config_arguments(p, PretrainConfig)
    _add_method_options(p)

    p = add("probe", "fit kNN and linear probes of normalised time on frozen features of DATA/train, report their "
            "VOC on DATA/test_expert and the feature spread (collapse check)", cmd_probe)
    p.add_argument("encoder", help="encoder folder from `v2r pretrain`, a reward-model folder, a .safetensors "
                   "weights file (own shapes with a JSON config beside it, or a DINOv2-style ViT), or 'cnn'/'vit' "
                   "for a randomly initialised one")
    p.add_argument("data", help="folder with train/ and test_expert/")
    p.add_argument("--k", type=int, default=5, help="neighbours of the kNN probe (default: 5)")
    p.add_argument("--image-size", type=int, default=64, help="frame size of a random 'cnn'/'vit' encoder")
    p.add_argument("--seed", type=int, default=0, help="seed of a random 'cnn'/'vit' encoder")
    p.add_argument("--out", help="also write the results as JSON here")

    p = add("rl", "train an agent (SB3 DQN or SAC) on TASK with the learned reward of a model (or the env's own "
            "reward, for comparison), evaluating true task success as it learns", cmd_rl)
    p.add_argument("task", help="a demo task (mountaincar, pendulum, ...), metaworld:<env>-v3, or a gymnasium id")
    p.add_argument("--reward", required=True, help="reward model folder from `v2r train`, or 'env' for the "
                   "environment's own reward")
    p.add_argument("--out", required=True, help="run folder: eval.csv, policy.safetensors, learning_curve.png, "
                   "eval_episode.mp4")
    add_config_arguments(p, RLConfig)

    p = add("rl-report", "table (final success and env return over seeds) and learning curves of `v2r rl` runs",
            cmd_rl_report)
    p.add_argument("runs", nargs="+", metavar="RUN", help="run folders from `v2r rl`")
    p.add_argument("--plot", default="rl_report.png", help="learning-curve PNG to write (default: rl_report.png)")

    p = add("distill", "train a small student model (same head, a tiny CNN encoder) on a model's outputs over its "
            "training videos (SimCLRv2's distillation); the student is an ordinary model folder", cmd_distill)
    p.add_argument("model", help="teacher: a model folder from `v2r train`")
    p.add_argument("--out", required=True, help="student model folder to write (model.safetensors + config.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoint")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    from video2reward.training.config import DistillConfig

    add_config_arguments(p, DistillConfig)

    p = add("export", "write a model's per-frame scoring (embed + predict) as a TorchScript or ONNX file for "
            "deployment; such files hold code, and v2r never loads them as models", cmd_export)
    p.add_argument("model", help="model folder from `v2r train` or `v2r distill`")
    p.add_argument("--format", default="torchscript", choices=("torchscript", "onnx"),
                   help="torchscript (torch.jit.load) or onnx (needs: pip install onnx) (default: torchscript)")
    p.add_argument("--quantize", default="none", choices=("none", "int8"),
                   help="int8: dynamic int8 quantisation of the Linear layers (CPU; torchscript only) (default: none)")
    p.add_argument("--out", required=True, help="file to write (e.g. model.pt or model.onnx)")

    p = add("score", "write per-frame rewards of videos as JSONL: {\"video\", \"rewards\", \"sigma\", \"fps\"} "
            "(+ \"success_prob\" for a --head success model)",
            cmd_score)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("model", help="model folder from `v2r train`")
    p.add_argument("paths", nargs="+", metavar="PATH", help="video files or folders of them")
    p.add_argument("--out", required=True, help="JSONL file to write, one line per video")
    p.add_argument("--plot", metavar="DIR", help="also write one PNG per video: reward curve + frame strip")
    p.add_argument("--goal", metavar="IMAGE", help="goal image (or video: its last frame) seen from the scoring "
                   "camera; default: the demonstrations' final frames")
    p.add_argument("--relative", action="store_true", help="with --goal: reward = relative goal progress in the "
                   "encoder's features, 0 at the video's first frame and 1 at the goal image (no head): for a camera "
                   "the demonstrations did not use, with ImageNet features (--encoder efficientnet-lite0 --freeze "
                   "--image-size 128) or a model trained with --view-augment (see the README's camera-shift "
                   "table); writes video, rewards, fps")
    p.add_argument("--relative-reading", choices=("projection", "distance"), default="projection", help="with --relative: "
                   "'projection' = how far the frame's features have moved along the line from the first frame's "
                   "to the goal's, <z_t - z_0, g - z_0> / |g - z_0|^2; 'distance' = 1 - |z_t - g| / |z_0 - g|")
    p.add_argument("--relative-features", choices=("auto", "map", "pooled"), default="auto", help="with "
                   "--relative: the features z compared: 'map' = the encoder's last feature map before global "
                   "pooling, flattened (keeps where things are in the new camera's picture; cnn and "
                   "efficientnet-lite0 encoders), 'pooled' = the vector the head reads, 'auto' = map where the "
                   "encoder has one, else pooled")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    _add_scoring_options(p)

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
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    _add_scoring_options(p)

    p = add("eval", "VOC, success AUROC and dense-reward correlation on DATA_DIR/{test_expert,test_fail}; "
            "near-miss AUROC (expert vs DATA_DIR/test_partial) where that folder exists; where DATA_DIR/test_cam/ "
            "exists (other cameras, `v2r demo-data`), VOC, AUROC and dense there too, also with each camera's goal "
            "image and as relative goal progress to it (`v2r score --goal IMAGE --relative`)", cmd_eval)
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("model", help="model folder from `v2r train`")
    p.add_argument("data", help="folder with test_expert/ and test_fail/ (and optionally test_partial/ and "
                   "labels.json)")
    p.add_argument("--out", help="JSON file for the results (default: MODEL/eval.json)")
    p.add_argument("--plot", metavar="PNG", help="also plot expert and failed reward curves to this PNG")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "json", False):
        args.quiet = True
    try:
        args.func(args)
    except V2RError as exc:
        _print_json(args, {"error": str(exc)})
        where = f" (rank {os.environ.get('RANK')})" if distributed.launched_by_torchrun() else ""  # group is gone
        print(f"v2r {args.command}{where}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"v2r {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `v2r eval ... | head`: the reader left; not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return 0

