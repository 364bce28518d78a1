"""`v2r train`, `v2r pretrain` and `v2r probe`: a reward model from videos, a self-supervised encoder for it,
and how well time reads off that encoder's frozen features."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from video2reward.cli.common import (
    JSON_HELP,
    AddCommand,
    print_json,
    print_skipped,
    skipped_json,
)
from video2reward.errors import ConfigError


def add_parsers(add: AddCommand) -> None:
    """The `train`, `pretrain` and `probe` subcommands."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.training.config import PretrainConfig, add_config_arguments

    p = add("train", "train a reward model: every video under DIR... is one successful demonstration", cmd_train)
    add_train_options(p)

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
    p.set_defaults(encoder=None)  # not given: cnn, or vit for --method mae (cmd_pretrain: `pretrain_encoder_name`)
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


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """Everything `v2r train` takes after --quiet: its inputs, its output folder and TrainConfig's fields."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.rewards.registry import COMBINED_HEADS, HEADS  # here too
    from video2reward.training.config import (  # here too
        TrainConfig,
        add_config_arguments,
    )

    p = parser
    p.add_argument("--json", action="store_true", help=JSON_HELP)
    p.add_argument("dirs", nargs="+", metavar="DIR", help="video files or folders (searched recursively)")
    p.add_argument("--out", required=True, help="model folder to write (model.safetensors + config.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoint")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    add_config_arguments(p, TrainConfig)
    for name, entry in HEADS.items():  # each head's options, from its registry entry: --progress-motion-gap, ...
        group = p.add_argument_group(f"{name} options (with --head {name}"
                                     + "".join(f" or {c}" for c, kinds in COMBINED_HEADS.items() if name in kinds)
                                     + ")")
        add_config_arguments(group, entry.config, prefix=name, dest_prefix=f"head__{name}__", only_given=True)


def head_options(args: argparse.Namespace) -> dict[str, dict]:
    """The `--<head>-<option>` flags the user gave, by head; an option of a head that --head does not train is an
    error, not silently ignored."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.rewards.registry import member_kinds

    options: dict[str, dict] = {}
    for key, value in vars(args).items():
        if not key.startswith("head__"):
            continue
        _, kind, name = key.split("__", 2)
        if kind not in member_kinds(args.head):
            flag = f"--{kind}-{name.replace('_', '-')}"
            raise ConfigError(f"{flag} is an option of the {kind} head, but --head is {args.head}; drop it or "
                              f"train --head {kind}")
        options.setdefault(kind, {})[name] = value
    return options


def _add_method_options(parser: argparse.ArgumentParser) -> None:
    """One argument group per pretraining method: `--dino-teacher-temp` etc., each with its help text."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.core.options import field_type, help_with_default
    from video2reward.objectives import OBJECTIVES, objective_fields  # here too

    for method in OBJECTIVES:
        group = parser.add_argument_group(f"{method} options (with --method {method})")
        for name, f in objective_fields(method).items():
            flag = f"--{method}-{name.replace('_', '-')}"
            try:
                kind = field_type(f)
            except KeyError:  # tuple-valued fields (crop scales) are not exposed on the command line
                continue
            help_text = help_with_default(f.metadata.get("help", ""), f.default)
            dest = f"opt__{method}__{name}"
            if kind is bool:
                group.add_argument(flag, dest=dest, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=help_text)
            elif kind in (int, float, str):
                group.add_argument(flag, dest=dest, type=kind, default=argparse.SUPPRESS, help=help_text)


def cmd_train(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.training import distributed
    from video2reward.training.config import TrainConfig, config_from_args  # here too
    from video2reward.training.train import train_reward_model  # here too

    config = replace(config_from_args(TrainConfig, args), head_options=head_options(args))
    with distributed.session(config.device):  # torchrun: one process group for the run (else nothing)
        result = train_reward_model(args.dirs, args.out, config, resume=args.resume, skip_bad=args.skip_bad,
                                    progress=not args.quiet and distributed.is_main())
        if not distributed.is_main():  # rank 0 prints for the run
            return
    print_skipped(result.skipped)
    if print_json(args, {"out": str(args.out), "model": result.model.describe(), "videos": result.num_videos,
                          "frames": result.num_frames, "seconds": result.seconds, "metrics": result.metrics,
                          "skipped": skipped_json(result.skipped), "warnings": list(result.warnings)}):
        return
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    print(f"trained {result.model.describe()} on {result.num_videos} videos ({result.num_frames} frames) "
          f"in {result.seconds:.1f} s; {metrics}")
    print(f"saved {args.out}/model.safetensors + config.json")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _method_options(args: argparse.Namespace) -> dict:
    """The `--<method>-<field>` options the user gave, for the chosen method only."""
    from video2reward.objectives import (
        OBJECTIVES,  # here, not at the top: `import video2reward.cli` stays light
    )

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


def pretrain_encoder_name(args: argparse.Namespace) -> str | None:
    """Fills in `v2r pretrain`'s --encoder when the user gave none: PretrainConfig's (cnn), except for --method mae,
    which hides a ViT's patch tokens and so gets vit; returns the one line that says so (None when nothing was
    chosen for the user). An explicit `--encoder cnn --method mae` is left to the objective's error."""
    from video2reward.training.config import (
        PretrainConfig,  # here, not at the top: `import video2reward.cli` stays free of torch
    )

    if args.encoder is not None:
        return None
    if args.method == "mae":
        args.encoder = "vit"
        return "--method mae masks a ViT's patch tokens (a cnn has none): pretraining --encoder vit"
    args.encoder = PretrainConfig.encoder
    return None


def cmd_pretrain(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.training import distributed
    from video2reward.training.config import (  # here too
        PretrainConfig,
        config_from_args,
    )
    from video2reward.training.pretrain import pretrain_encoder  # here too

    chosen = pretrain_encoder_name(args)
    config = config_from_args(PretrainConfig, args)
    with distributed.session(config.device):  # torchrun: one process group for the run (else nothing)
        if not args.dirs and not args.views:
            raise ConfigError("give the video folders (DIR ...) or, for multi-view TCN, --views DIR1 DIR2 ...")
        if chosen and distributed.is_main():
            print(chosen, flush=True)
        result = pretrain_encoder(args.dirs, args.out, config, _method_options(args), resume=args.resume,
                                  skip_bad=args.skip_bad, progress=not args.quiet and distributed.is_main(),
                                  views=args.views or ())
        if not distributed.is_main():  # rank 0 prints for the run
            return
    print_skipped(result.skipped)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    print(f"pretrained a {config.encoder} encoder with {config.method} on {result.num_videos} videos "
          f"({result.num_frames} frames) in {result.seconds:.1f} s; {metrics}")
    print(f"saved {args.out}/encoder.safetensors + config.json; use it with: v2r train DIR --encoder {args.out}")


def cmd_probe(args: argparse.Namespace) -> None:
    import torch  # here, not at the top: keeps `v2r --help` fast

    from video2reward.core.files import write_json  # here too
    from video2reward.encoders import ENCODERS, build_encoder  # here too
    from video2reward.encoders.pretrained import load_encoder  # here too
    from video2reward.evaluation.probe import probe_encoder  # here too

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
