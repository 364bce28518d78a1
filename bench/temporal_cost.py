"""What the temporal head's sequence model adds to scoring time: the streaming Scorer on the same frames
with the progress head (single frame + motion partner) and with the temporal head (K-frame windows) for each
sequence model, on the default CNN, freshly initialised (weights do not change the cost).

    python bench/temporal_cost.py --threads 1 [--context 8] [--frames 2048] [--rounds 5]

Frames are random 64 px uint8 arrays already at the model's size (no decoding, which is the same for every
head), scored in the default batches of 64; one reward per frame. Timing rounds are interleaved across the
models and the median is kept; CPU time (time.process_time) is reported beside wall time, since on a shared
machine wall time is an upper bound. `+%` is each model's CPU time over the progress head's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from video2reward.encoders import build_encoder
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.sequence_layers import SEQUENCES
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead


def models(size: int, context: int) -> dict[str, RewardModel]:
    torch.manual_seed(0)
    progress = ProgressHead(build_encoder("cnn", size), ProgressConfig(motion_gap=2))
    out = {"progress (motion_gap 2)": RewardModel(progress, {"head": "progress", "image_size": size})}
    for sequence in SEQUENCES:
        head = TemporalProgressHead(build_encoder("cnn", size), TemporalConfig(context=context, sequence=sequence))
        out[f"temporal {sequence} (K={context})"] = RewardModel(head, {"head": "temporal", "image_size": size})
    return out


def time_scoring(model: RewardModel, frames: np.ndarray) -> tuple[float, float]:
    """(wall s, CPU s) of scoring `frames` in 64-frame chunks, as `v2r score` streams a video."""
    chunks = [frames[i : i + 64] for i in range(0, len(frames), 64)]
    wall, cpu = time.perf_counter(), time.process_time()
    scorer = model.scorer()
    n = sum(len(scorer.score(chunk)) for chunk in chunks)
    assert n == len(frames)  # one reward per frame
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--context", type=int, default=TemporalConfig.context)
    parser.add_argument("--frames", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frames = np.random.default_rng(0).integers(0, 256, (args.frames, args.size, args.size, 3), dtype=np.uint8)
    candidates = models(args.size, args.context)
    for model in candidates.values():
        time_scoring(model, frames[:128])  # warm-up
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, model in candidates.items():
            times[name].append(time_scoring(model, frames))
    base = statistics.median(c for _, c in times["progress (motion_gap 2)"])
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.frames} frames of {args.size} px, "
          f"median of {args.rounds} interleaved rounds")
    print("| model | wall ms/frame | CPU ms/frame | CPU vs progress |")
    print("|---|---|---|---|")
    for name, values in times.items():
        wall = statistics.median(w for w, _ in values) / args.frames * 1e3
        cpu = statistics.median(c for _, c in values)
        print(f"| {name} | {wall:.3f} | {cpu / args.frames * 1e3:.3f} | {100 * (cpu / base - 1):+.1f}% |")


if __name__ == "__main__":
    main()
