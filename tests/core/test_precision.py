"""--precision: 'auto' is float32 on CPU (results unchanged), and the bf16 autocast paths of training and scoring
run and stay close to float32 (exercised on CPU, where autocast supports bfloat16 too)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from video2reward.core.precision import autocast_dtype
from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.testing.synthetic import moving_square, square_demonstrations
from video2reward.training.loop import train_loop


def test_auto_is_float32_on_cpu_and_bf16_only_when_asked() -> None:
    assert autocast_dtype("auto", "cpu") is None
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ConfigError, match="--precision fp16"):
        autocast_dtype("fp16", "cpu")


def _model(precision: str) -> RewardModel:
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", 32), ProgressConfig())
    config = {"head": "progress", "image_size": 32, "encoder": None}
    return RewardModel(head, config, "cpu", precision)


def test_bf16_scoring_gives_float32_rewards_close_to_fp32() -> None:
    video = moving_square(70, 32)  # two scoring batches
    exact, auto, bf16 = (_model(p).score(video) for p in ("fp32", "auto", "bf16"))
    assert np.array_equal(exact.mu, auto.mu) and np.array_equal(exact.sigma, auto.sigma)  # CPU default: unchanged
    assert bf16.mu.dtype == np.float32 and len(bf16.mu) == 70
    assert not np.array_equal(exact.mu, bf16.mu)  # the encoder really ran in bfloat16 ...
    assert np.max(np.abs(exact.mu - bf16.mu)) < 0.05  # ... and its rewards agree with float32's


class Regressor(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 32), nn.GELU(), nn.Linear(32, 1))
        self.seen: list[torch.dtype] = []

    def forward(self, batch):
        x, y = batch
        out = self.net(x).squeeze(-1)
        self.seen.append(out.dtype)
        loss = (out.float() - y).pow(2).mean()
        return loss, {"loss": loss.item()}


def test_bf16_training_runs_under_autocast_and_keeps_float32_weights() -> None:
    torch.manual_seed(0)
    model = Regressor()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def sample(g):
        x = torch.randn(64, 4, generator=g)
        return x, x @ torch.tensor([1.0, -2.0, 0.5, 3.0]) / 4

    first = sample(torch.Generator().manual_seed(1))
    before = model(first)[0].item()
    model.seen.clear()
    metrics = train_loop(model, sample, opt, 60, torch.Generator().manual_seed(0), warmup=5, progress=False,
                         amp_dtype=torch.bfloat16)
    assert set(model.seen) == {torch.bfloat16}  # the forward passes ran in bf16
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert np.isfinite(metrics["loss"]) and model(first)[0].item() < 0.5 * before  # and it learned


def test_training_on_real_heads_in_bf16_runs() -> None:
    from video2reward.rewards.triplets import TripletSampler

    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", 32), ProgressConfig())
    sampler = TripletSampler(square_demonstrations(4), frames_per_video=8, videos_per_batch=2, triplets_per_video=8)

    def sample(g):
        batch = sampler.sample(g)
        batch.frames = batch.frames.float().div(255.0)
        return batch

    opt = torch.optim.AdamW(head.parameters(), lr=1e-3)
    metrics = train_loop(head, sample, opt, 4, torch.Generator().manual_seed(0), warmup=1, progress=False,
                         amp_dtype=torch.bfloat16)
    assert all(np.isfinite(v) for v in metrics.values())
