"""bf16 against fp32 on a CUDA GPU: seconds for `v2r train` of the progress head (cnn and vit encoders, 64 px,
no pretraining) and scoring frames/s of a 4,096-frame video, each measured in a second round after a warm-up
round; plus how far bf16 rewards are from fp32's.

    python bench/precision.py                      # needs a GPU; about 2 minutes on one H100
    python bench/precision.py --steps 100          # quicker
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

from video2reward.inference.model import RewardModel
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model


def timed(fn):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn()
    torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run")
    parser.add_argument("--frames", type=int, default=4096, help="frames of the scored video")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench/precision.py needs a CUDA GPU (bf16 autocast is a GPU feature here)")
    work = Path(tempfile.mkdtemp(prefix="v2r-precision-"))
    data = write_square_dataset(work / "data", n_train=6, t=40, size=64)
    video = moving_square(args.frames, 64)
    rows = []
    for encoder in ("cnn", "vit"):
        seconds, scored = {}, {}
        for round_ in range(2):  # the first round warms up CUDA, cuDNN and the allocator
            for precision in ("fp32", "bf16"):
                config = replace(TrainConfig(), steps=args.steps, warmup_steps=20, image_size=64, pretrain="none",
                                 device="cuda", precision=precision, encoder=encoder)
                _, seconds[precision] = timed(lambda: train_reward_model([data / "train"], work / encoder, config,
                                                                         progress=False))
            for precision in ("fp32", "bf16"):
                model = RewardModel.load(work / encoder, device="cuda", precision=precision)
                scored[precision], took = timed(lambda: model.score(video, batch_size=256))
                seconds[f"score-{precision}"] = took
        diff = float(np.max(np.abs(scored["fp32"].mu - scored["bf16"].mu)))
        rows.append((encoder, seconds["fp32"], seconds["bf16"], args.frames / seconds["score-fp32"],
                     args.frames / seconds["score-bf16"], diff))
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.steps} training steps, "
          f"{args.frames}-frame video scored in batches of 256")
    print(f"{'encoder':8} {'train fp32 s':>13} {'train bf16 s':>13} {'score fp32 f/s':>15} {'score bf16 f/s':>15} "
          f"{'max |mu diff|':>14}")
    for encoder, t32, t16, s32, s16, diff in rows:
        print(f"{encoder:8} {t32:13.1f} {t16:13.1f} {s32:15,.0f} {s16:15,.0f} {diff:14.4f}")


if __name__ == "__main__":
    main()
