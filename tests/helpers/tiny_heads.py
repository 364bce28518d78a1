"""Tiny training runs of the reward heads on moving-square videos (video2reward.testing.synthetic), a few seconds
each on one CPU thread: the same encoder, held-out videos and budget as tests/rewards/test_progress.py."""

from __future__ import annotations

import numpy as np
import torch

from video2reward.encoders import build_encoder
from video2reward.evaluation.metrics import value_order_correlation
from video2reward.inference.model import RewardModel
from video2reward.testing.synthetic import (
    as_demonstration,
    failed_squares,
    moving_square,
    square_demonstrations,
)
from video2reward.training.heads import finish_head
from video2reward.training.loop import train_loop

HELD_OUT = (5, 12, 19)  # heights of the held-out videos (25 frames: a length no demonstration has)


def tiny_encoder():
    return build_encoder("cnn", 32, channels=(8, 16, 32), dim=32)


def failed_demonstrations() -> list:
    return [as_demonstration(f, f"f{i}") for i, f in enumerate(failed_squares())]


def fit(make_head, make_sampler, steps: int = 150, lr: float = 3e-3, seed: int = 0) -> RewardModel:
    """Train `make_head(encoder)` on batches of `make_sampler(demos)` from seed `seed`, then set its goal and
    calibration as `v2r train` does; the head's model, ready to score."""
    torch.manual_seed(seed)
    demos = square_demonstrations()
    head = make_head(tiny_encoder())
    sampler = make_sampler(demos)

    def sample(gen):
        batch = sampler.sample(gen)
        batch.frames = batch.frames.float() / 255
        return batch

    opt = torch.optim.AdamW(head.parameters(), lr=lr)
    train_loop(head, sample, opt, steps=steps, generator=torch.Generator().manual_seed(seed), warmup=10,
               progress=False)
    finish_head(head, demos, torch.device("cpu"))
    return RewardModel(head, {"head": "test", "image_size": 32})


def held_out_voc(model: RewardModel) -> float:
    return value_order_correlation([model.score(moving_square(25, 32, y=y)).mu for y in HELD_OUT])


def failed_mean_reward(model: RewardModel) -> float:
    return float(np.mean([model.score(f).mu.mean() for f in failed_squares()]))
