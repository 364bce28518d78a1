"""bf16 against fp32: seconds for `v2r train` of the progress head (cnn and vit encoders, 64 px, no pretraining)
and scoring frames/s of a 4,096-frame video, each measured in a second round after a warm-up round; plus how far
bf16 rewards are from fp32's (largest and mean difference, Spearman correlation between the two).

    python bench/precision.py                      # on a GPU: about 2 minutes on one H100
    python bench/precision.py --device cpu         # on a CPU (bf16 pays with AVX-512 BF16 / AMX): ~4 minutes
    python bench/precision.py --steps 100          # quicker

On a CPU only scoring is compared (training there is float32 under `--precision auto`); the seed is 0.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from results_page import cpu_model

from video2reward.core.precision import cpu_has_native_bf16
from video2reward.evaluation.metrics import spearman
from video2reward.inference.model import RewardModel
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model


def timed(fn):
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--frames", type=int, default=4096, help="frames of the scored video")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cuda", "cpu"),
                        help="where to train and score (default: cuda when there is one)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        sys.exit("bench/precision.py --device cuda: no CUDA GPU here; use --device cpu")
    cpu = args.device == "cpu"
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="v2r-precision-"))
    data = write_square_dataset(work / "data", n_train=6, t=40, size=64)
    video = moving_square(args.frames, 64)
    rows = []
    for encoder in ("cnn", "vit"):
        seconds, scored = {}, {}
        for round_ in range(2):  # the first round warms up CUDA, cuDNN and the allocator
            for precision in ("fp32",) if cpu else ("fp32", "bf16"):  # a CPU trains in float32
                config = replace(TrainConfig(), steps=args.steps, warmup_steps=20, image_size=64, pretrain="none",
                                 device=args.device, precision=precision, encoder=encoder)
                _, seconds[precision] = timed(lambda: train_reward_model([data / "train"], work / encoder, config,
                                                                         progress=False))
            for precision in ("fp32", "bf16"):
                model = RewardModel.load(work / encoder, device=args.device, precision=precision)
                scored[precision], took = timed(lambda: model.score(video, batch_size=64 if cpu else 256))
                seconds[f"score-{precision}"] = took
        gap = np.abs(scored["fp32"].mu - scored["bf16"].mu)
        rows.append((encoder, seconds["fp32"], seconds.get("bf16", float("nan")), args.frames / seconds["score-fp32"],
                     args.frames / seconds["score-bf16"], float(gap.max()), float(gap.mean()),
                     spearman(scored["fp32"].mu, scored["bf16"].mu), float(np.ptp(scored["fp32"].mu))))
    where = torch.cuda.get_device_name() if not cpu else f"CPU ({cpu_model()}, native bf16: {cpu_has_native_bf16()})"
    print(f"{where}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.steps} training steps, "
          f"{args.frames}-frame video")
    print(f"{'encoder':8} {'train fp32 s':>13} {'train bf16 s':>13} {'score fp32 f/s':>15} {'score bf16 f/s':>15} "
          f"{'max |mu diff|':>14} {'mean |diff|':>12} {'Spearman':>9} {'fp32 range':>11}")
    for encoder, t32, t16, s32, s16, diff, mean, rho, span in rows:
        print(f"{encoder:8} {t32:13.1f} {t16:13.1f} {s32:15,.0f} {s16:15,.0f} {diff:14.4f} {mean:12.4f} {rho:9.4f} "
              f"{span:11.3f}")


if __name__ == "__main__":
    main()
