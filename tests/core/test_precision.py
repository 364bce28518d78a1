"""--precision: 'auto' trains in float32 on CPU and scores in bf16 only on a CPU with native bf16 instructions;
the bf16 paths of training (autocast) and scoring (a bf16 copy of the encoder on CPU) run and stay close to
float32."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from video2reward.core import precision as precision_module
from video2reward.core.precision import autocast_dtype, scoring_dtype
from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.testing.synthetic import moving_square, square_demonstrations
from video2reward.training.loop import train_loop


def test_auto_trains_in_float32_on_cpu_and_scores_in_bf16_only_with_native_bf16(monkeypatch) -> None:
    assert autocast_dtype("auto", "cpu") is None  # training on a CPU: float32 under auto
    assert autocast_dtype("fp32", "cpu") is None
    assert autocast_dtype("bf16", "cpu") is torch.bfloat16
    with pytest.raises(ConfigError, match="--precision fp16"):
        autocast_dtype("fp16", "cpu")
    for native in (True, False):
        monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda native=native: native)
        assert scoring_dtype("auto", "cpu") is (torch.bfloat16 if native else None)
        assert scoring_dtype("fp32", "cpu") is None and scoring_dtype("bf16", "cpu") is torch.bfloat16


def _model(precision: str) -> RewardModel:
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", 32), ProgressConfig())
    config = {"head": "progress", "image_size": 32, "encoder": None}
    return RewardModel(head, config, "cpu", precision)


def test_bf16_scoring_gives_float32_rewards_close_to_fp32(monkeypatch) -> None:
    video = moving_square(70, 32)  # two scoring batches
    exact, bf16 = (_model(p).score(video) for p in ("fp32", "bf16"))
    assert bf16.mu.dtype == np.float32 and len(bf16.mu) == 70
    assert not np.array_equal(exact.mu, bf16.mu)  # the encoder really ran in bfloat16 ...
    assert np.max(np.abs(exact.mu - bf16.mu)) < 0.05  # ... and its rewards agree with float32's
    for native, same_as in ((False, exact), (True, bf16)):  # auto: whichever the CPU does natively
        monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda native=native: native)
        auto = _model("auto").score(video)
        assert np.array_equal(auto.mu, same_as.mu) and np.array_equal(auto.sigma, same_as.sigma)


def test_bf16_copy_follows_weights_changed_in_place() -> None:
    model = _model("bf16")
    video = moving_square(20, 32)
    before = model.score(video).mu
    with torch.no_grad():  # as online refinement does: an optimizer step writes the weights in place
        for p in model.head.encoder.parameters():
            p.mul_(1.5)
    after = model.score(video).mu
    assert not np.allclose(before, after, atol=1e-4)
    fresh = RewardModel(model.head, model.config, "cpu", "bf16").score(video).mu
    assert np.array_equal(after, fresh)  # the same as a model made from the changed weights


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
