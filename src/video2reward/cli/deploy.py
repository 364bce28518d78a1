"""`v2r distill` and `v2r export`: a trained model made small (a student on a tiny CNN), then written out as a
TorchScript or ONNX scorer for deployment; `v2r info`: a model folder's card (what it is, before shipping it)."""

from __future__ import annotations

import argparse

import video2reward  # light: load() imports torch on first use
from video2reward.cli.common import AddCommand
from video2reward.errors import ConfigError


def add_parsers(add: AddCommand) -> None:
    """The `distill`, `export` and `info` subcommands."""
    # here, not at the top: `import video2reward.cli` stays free of torch
    from video2reward.training.config import DistillConfig, add_config_arguments

    p = add("distill", "train a small student model (same head, a tiny CNN encoder) on a model's outputs over its "
            "training videos (SimCLRv2's distillation); the student is an ordinary model folder", cmd_distill)
    p.add_argument("model", help="teacher: a model folder from `v2r train`")
    p.add_argument("--out", required=True, help="student model folder to write (model.safetensors + config.json)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from OUT/checkpoint")
    p.add_argument("--skip-bad", action="store_true", help="skip videos that fail to decode and list them")
    add_config_arguments(p, DistillConfig)

    p = add("export", "write a model's per-frame scoring (embed + predict) as a TorchScript or ONNX file for "
            "deployment; such files hold code, and v2r never loads them as models", cmd_export)
    p.add_argument("model", help="model folder from `v2r train` or `v2r distill`")
    p.add_argument("--format", default="torchscript", choices=("torchscript", "onnx"),
                   help="torchscript (torch.jit.load) or onnx (needs: pip install onnx) (default: torchscript)")
    p.add_argument("--quantize", default="none", choices=("none", "int8"),
                   help="int8: dynamic int8 quantisation of the Linear layers (CPU; torchscript only) (default: none)")
    p.add_argument("--out", required=True, help="file to write (e.g. model.pt or model.onnx)")

    p = add("info", "print a model folder's card (its README.md): what it was trained on (videos, episodes, frames, "
            "fps, resolution, camera key, inputs), head and encoder, training time, its order and success separation "
            "on its training videos, the command, the v2r version and the weights' SHA-256", cmd_info)
    p.add_argument("--json", action="store_true", help="print the card's facts as one JSON object instead")
    p.add_argument("model", help="model folder (from `v2r train`, `v2r distill` or `v2r rl --refine`)")


def cmd_distill(args: argparse.Namespace) -> None:
    # here, not at the top: keeps `v2r --help` fast
    from video2reward.training.config import DistillConfig, config_from_args
    from video2reward.training.distill import distill  # here too

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
    from video2reward.inference.export import (
        export_model,  # here, not at the top: keeps `v2r --help` fast
    )

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


def cmd_info(args: argparse.Namespace) -> None:
    import json
    import sys
    from pathlib import Path

    # here, not at the top: keeps `v2r --help` fast
    from video2reward.core.files import CONFIG, WEIGHTS, read_json, sha256
    from video2reward.inference.card import (  # here too
        CARD_FILE,
        card_facts,
        model_card,
    )

    folder = Path(args.model)
    if not (folder / CONFIG).is_file():
        what = "does not exist" if not folder.exists() else f"is not a model folder (no {CONFIG})"
        raise ConfigError(f"{folder}: {what}; give a folder that `v2r train --out` or `v2r distill --out` wrote")
    config = read_json(folder / CONFIG)
    if not isinstance(config, dict) or "head" not in config:
        encoder = isinstance(config, dict) and config.get("kind") == "encoder"
        what = "an encoder folder (from `v2r pretrain`)" if encoder else f"its {CONFIG} names no reward head"
        raise ConfigError(f"{folder}: {what}; `v2r info` reads reward model folders")
    digest = sha256(folder / WEIGHTS) if (folder / WEIGHTS).is_file() else None
    if digest is not None and config.get("weights_sha256") not in (None, digest):
        print(f"warning: {folder / WEIGHTS} is not the file {CONFIG} vouches for (SHA-256 {digest[:12]}..., "
              f"recorded {str(config['weights_sha256'])[:12]}...); it was changed after the model was written",
              file=sys.stderr)
    if args.json:
        print(json.dumps({"model": str(folder), **card_facts(config, digest)}))
        return
    card = folder / CARD_FILE
    print(card.read_text(encoding="utf-8") if card.is_file() else model_card(config, str(folder)), end="")
