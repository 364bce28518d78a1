"""Self-supervised pretraining on the demo tasks: does a pretrained encoder make a better reward?

    python bench/pretrain.py --out /tmp/bp                   # every method on both demo tasks
    python bench/pretrain.py --tasks pendulum --methods tcn dino --pretrain-steps 300 --train-steps 500
    python bench/pretrain.py --seeds 0 1 --out /tmp/bp     # two seeds: one row per seed, then their mean

For each task and method: pretrain time, probe VOC (kNN and linear time probes on frozen features, held-out
expert videos), feature std (collapse check: ~1 healthy, 0 collapsed), and the progress reward's VOC /
AUROC / near-miss AUROC / dense correlation with that encoder frozen and fine-tuned, and the time pretraining
plus fine-tuning took; next to a randomly initialised encoder
(frozen and fine-tuned, i.e. plain `v2r train`) and the pixel-ridge floor. Every figure is measured in this
run. With several --seeds, the demo data, pretraining and training all take each seed, and a mean row follows
each task's seeds. Each finished row is also written to OUT/results/<task>-<method>[-sSEED].json; a rerun with the same --out
skips rows already there (so an interrupted benchmark continues).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import torch
from results_page import add_write_option, write_results_page

from video2reward.demo import DEMO_TASKS, generate_demo_data
from video2reward.demo.pipeline import run_task
from video2reward.encoders import build_encoder
from video2reward.encoders.pretrained import load_encoder, save_encoder
from video2reward.evaluation.probe import probe_encoder
from video2reward.objectives import PRETRAIN_METHODS
from video2reward.training.config import PretrainConfig, TrainConfig
from video2reward.training.pretrain import pretrain_encoder

VIT_ONLY = ("mae", "ijepa", "vjepa")  # objectives that need a ViT's patch tokens

COLUMNS = ("task", "encoder", "seed", "pretrain s", "kNN VOC", "lin VOC", "feat std", "frozen VOC", "frozen AUROC",
           "frozen near-miss", "frozen dense", "tuned VOC", "tuned AUROC", "tuned near-miss", "tuned dense",
           "pretrain + tune s")
NUMBERS = ("pretrain_s", "knn_voc", "linear_voc", "feature_std")  # top-level numbers a mean row averages
REWARD_NUMBERS = ("voc", "auroc", "auroc_near_miss", "dense", "train_s")


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else (f"{v:.0f}" if isinstance(v, float) else str(v))


def reward_row(task_dir: Path, encoder: str, freeze: bool, model_dir: Path, args) -> dict:
    config = replace(TrainConfig(), encoder=encoder, freeze=freeze, steps=args.train_steps, seed=args.seed,
                     threads=args.threads, pretrain="none")  # the encoder under test, not v2r train's own pretraining
    row = run_task(task_dir, model_dir, config, progress=False)
    return {"voc": row.voc, "auroc": row.auroc, "auroc_near_miss": row.auroc_near_miss, "dense": row.dense,
            "train_s": row.train_seconds}


def bench_one(task: str, task_dir: Path, method: str, out: Path, args) -> dict:
    work = out / "work" / f"{task}-{method}"
    t0 = time.perf_counter()
    if method == "pixel-ridge":
        config = replace(TrainConfig(), head="pixel-ridge", seed=args.seed)
        row = run_task(task_dir, work / "reward", config, progress=False)
        return {"task": task, "encoder": "pixel-ridge floor", "seed": args.seed,
                "tuned": {"voc": row.voc, "auroc": row.auroc, "auroc_near_miss": row.auroc_near_miss,
                          "dense": row.dense, "train_s": row.train_seconds}}
    if method == "random":
        torch.manual_seed(args.seed)
        save_encoder(work / "encoder", build_encoder("cnn", 64), "cnn", extra={"pretraining": {"method": None}})
        pretrain_s = None
    else:
        arch = "vit" if method in VIT_ONLY else "cnn"
        config = PretrainConfig(method=method, encoder=arch, steps=args.pretrain_steps, seed=args.seed,
                                threads=args.threads)
        pretrain_s = pretrain_encoder([task_dir / "train"], work / "encoder", config, progress=False).seconds
    encoder, _ = load_encoder(work / "encoder")
    probe = probe_encoder(encoder, task_dir)
    label = "random init" if method == "random" else f"{method} ({'vit' if method in VIT_ONLY else 'cnn'})"
    result = {"task": task, "encoder": label, "seed": args.seed, "pretrain_s": pretrain_s, "knn_voc": probe.knn_voc,
              "linear_voc": probe.linear_voc, "feature_std": probe.feature_std,
              "frozen": reward_row(task_dir, str(work / "encoder"), True, work / "frozen", args),
              "tuned": reward_row(task_dir, str(work / "encoder"), False, work / "tuned", args),
              "seconds": time.perf_counter() - t0}
    return result


def cells(r: dict) -> list[str]:
    f, t = r.get("frozen", {}), r.get("tuned", {})
    total = None if t.get("train_s") is None else (r.get("pretrain_s") or 0.0) + t["train_s"]
    return [r["task"], r["encoder"], str(r.get("seed", "-")), _fmt(r.get("pretrain_s")), _fmt(r.get("knn_voc")),
            _fmt(r.get("linear_voc")), _fmt(r.get("feature_std")), _fmt(f.get("voc")), _fmt(f.get("auroc")),
            _fmt(f.get("auroc_near_miss")), _fmt(f.get("dense")), _fmt(t.get("voc")), _fmt(t.get("auroc")),
            _fmt(t.get("auroc_near_miss")), _fmt(t.get("dense")), _fmt(total)]


def _mean(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def mean_row(rows: list[dict]) -> dict:
    """One encoder's rows over seeds -> a row of their means (seed "mean")."""
    out = {"task": rows[0]["task"], "encoder": f"**{rows[0]['encoder']}**", "seed": "mean"}
    out.update({k: _mean([r.get(k) for r in rows]) for k in NUMBERS})
    for part in ("frozen", "tuned"):
        if any(part in r for r in rows):
            out[part] = {k: _mean([r.get(part, {}).get(k) for r in rows]) for k in REWARD_NUMBERS}
    return out


def table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(DEMO_TASKS), choices=DEMO_TASKS)
    parser.add_argument("--methods", nargs="+", default=["pixel-ridge", "random", *PRETRAIN_METHODS],
                        choices=["pixel-ridge", "random", *PRETRAIN_METHODS])
    parser.add_argument("--pretrain-steps", type=int, default=PretrainConfig.steps)
    parser.add_argument("--train-steps", type=int, default=TrainConfig.steps,
                        help="steps of every progress reward head (frozen and fine-tuned)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads per run (0: all cores)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run of everything per seed")
    parser.add_argument("--out", required=True, help="work folder; finished rows are kept and skipped on rerun")
    add_write_option(parser)
    args = parser.parse_args()

    out = Path(args.out)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
          f"{torch.__version__} with {torch.get_num_threads()} threads; pretrain {args.pretrain_steps} steps, "
          f"reward heads {args.train_steps} steps; work folder {out}", flush=True)
    folders = {seed: generate_demo_data(out / ("data" if seed == 0 else f"data-s{seed}"), tasks=args.tasks, seed=seed,
                                        progress=False) for seed in args.seeds}
    rows = []
    for task in args.tasks:
        for method in args.methods:
            per_seed = []
            for seed in args.seeds:
                args.seed = seed
                tag = "" if seed == 0 else f"-s{seed}"  # seed 0 keeps the file names of one-seed runs
                task_dir = folders[seed][task]
                path = out / "results" / f"{task}-{method}{tag}.json"
                if path.exists():
                    result = json.loads(path.read_text())
                    result.setdefault("seed", seed)
                else:
                    result = bench_one(task, task_dir, method, out / f"seed{seed}" if tag else out, args)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_text(json.dumps(result, indent=1))
                per_seed.append(result)
                print("| " + " | ".join(cells(result)) + " |", flush=True)
            rows += per_seed + ([mean_row(per_seed)] if len(per_seed) > 1 else [])
    print()
    print(table(rows))
    if args.write:
        write_results_page(args.write, "Self-supervised pretraining", table(rows),
                           seeds=" ".join(map(str, args.seeds)),
                           intro=PAGE_INTRO, notes=PAGE_NOTES)


PAGE_INTRO = """\
Does an encoder pretrained without labels make a better progress reward? For each task and pretraining method:
how long pretraining took, how well frozen features order time (kNN and linear probes on held-out expert
videos), a collapse check, and the progress reward trained on the encoder frozen and fine-tuned, next to a
randomly initialised encoder and the pixel-ridge floor. Every figure comes from the same run."""

PAGE_NOTES = """\
- **kNN VOC / lin VOC**: Spearman correlation with time of a k-nearest-neighbour / linear probe of frozen
  features (`v2r probe`). **feat std**: mean per-dimension std of the L2-normalised features across frames (about
  1 healthy, 0 collapsed).
- **frozen** / **tuned**: `v2r train --encoder ENCODER [--freeze]` (progress head) on that task's training videos;
  VOC on expert videos, AUROC of expert against failed videos, near-miss: AUROC of expert against near-miss videos
  (test_partial), dense: Spearman correlation with the environment's dense signal. **pretrain + tune s**: wall time
  of pretraining plus the fine-tuned reward's training.
- With several seeds, a **mean** row follows each encoder's seeds.
- ViT-only methods (mae, ijepa, vjepa) pretrain the small ViT; the others the CNN."""


if __name__ == "__main__":
    main()
