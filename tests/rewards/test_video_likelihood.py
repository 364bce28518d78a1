"""Video-likelihood head: the loss against a hand-written DDPM reference, the encoder stays frozen, the reward is
causal and streams, and after training it is higher on a demonstration's transitions than on the same frames
shuffled."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rewards.base import BatchPlan
from video2reward.rewards.video_likelihood import (
    VideoLikelihoodConfig,
    VideoLikelihoodHead,
    alpha_bar,
    sampler,
)
from video2reward.rewards.windows import WindowBatch
from video2reward.testing.synthetic import as_demonstration, moving_square
from video2reward.training.heads import finish_head
from video2reward.training.loop import train_loop

SIZE = 16


class PixelEncoder(nn.Sequential):
    """Flatten -> Linear -> LayerNorm: a fixed random projection of the pixels (the head freezes it)."""

    def __init__(self, size: int = SIZE, dim: int = 32):
        super().__init__(nn.Flatten(), nn.Linear(3 * size * size, dim), nn.LayerNorm(dim))
        self.dim = dim


def make_head(context: int = 3, probes: int = 4, seed: int = 0) -> VideoLikelihoodHead:
    torch.manual_seed(seed)
    return VideoLikelihoodHead(PixelEncoder(), VideoLikelihoodConfig(context=context, hidden=64, layers=2,
                                                                      probes=probes))


def test_schedule_runs_from_clean_to_noise() -> None:
    u = torch.linspace(0, 1, 11)
    abar = alpha_bar(u)
    assert abar[0] > 0.999 and abar[-1] < 1e-4
    assert (abar[1:] < abar[:-1]).all()


def test_loss_matches_a_hand_written_ddpm_reference() -> None:
    head = make_head()
    frames = torch.rand(6, 3, SIZE, SIZE)
    window = torch.tensor([[0, 1, 2], [1, 2, 3], [3, 4, 5]])
    batch = WindowBatch(frames, window, torch.zeros(3, dtype=torch.long), torch.full((3,), 5), torch.zeros(3),
                        torch.ones(3), torch.tensor([False, False, True]))  # the failed window is not trained on
    torch.manual_seed(7)
    loss, _ = head(batch)
    torch.manual_seed(7)
    z = head.encoder(frames)
    x = (z - z.mean(-1, keepdim=True)) / (z.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
    u = 0.02 + 0.96 * torch.rand(2)
    eps = torch.randn(2, x.shape[1])
    abar = torch.cos(torch.pi / 2 * (u + 0.008) / 1.008) ** 2
    target = x[window[:2, -1]]
    noisy = abar.sqrt()[:, None] * target + (1 - abar).sqrt()[:, None] * eps
    expected = ((head.denoise(noisy, u, x[window[:2, :-1]]) - eps) ** 2).mean()
    torch.testing.assert_close(loss, expected)


def test_the_encoder_is_frozen_and_gets_no_gradient() -> None:
    head = make_head()
    before = [p.clone() for p in head.encoder.parameters()]
    assert not any(p.requires_grad for p in head.encoder.parameters())
    batch = WindowBatch(torch.rand(4, 3, SIZE, SIZE), torch.tensor([[0, 1, 2], [1, 2, 3]]),
                        torch.zeros(2, dtype=torch.long), torch.full((2,), 3), torch.zeros(2), torch.ones(2),
                        torch.zeros(2, dtype=torch.bool))
    loss, _ = head(batch)
    loss.backward()
    assert all(p.grad is None for p in head.encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in head.denoiser.parameters())
    for a, b in zip(before, head.encoder.parameters()):
        torch.testing.assert_close(a, b)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="context"):
        VideoLikelihoodHead(PixelEncoder(), VideoLikelihoodConfig(context=1))
    with pytest.raises(ConfigError, match="probes"):
        VideoLikelihoodHead(PixelEncoder(), VideoLikelihoodConfig(probes=0))


def _model(head: VideoLikelihoodHead) -> RewardModel:
    return RewardModel(head.eval(), {"head": "video-likelihood", "image_size": SIZE})


def test_reward_is_causal_and_streaming_equals_one_pass() -> None:
    model = _model(make_head(context=4))
    video = np.random.default_rng(0).integers(0, 256, (19, SIZE, SIZE, 3), dtype=np.uint8)
    whole = model.score(video).mu
    changed = video.copy()
    changed[10:] = 255 - changed[10:]
    np.testing.assert_array_equal(model.score(changed).mu[:10], whole[:10])
    scorer = model.scorer()
    streamed = np.concatenate([scorer.score(video[i : i + 5]).mu for i in range(0, len(video), 5)])
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-5)


def test_trained_reward_prefers_demonstrated_transitions_to_shuffled_frames() -> None:
    rng = np.random.default_rng(0)
    demos = [as_demonstration(moving_square(20 + i, SIZE, y=int(rng.integers(1, SIZE - SIZE // 4 - 1))), f"d{i}")
             for i in range(8)]
    head = make_head(context=3, probes=8)
    windows = sampler(head.config, BatchPlan(batch_size=64, frames_per_video=16), demos, [])

    def sample(gen: torch.Generator) -> WindowBatch:
        batch = windows.sample(gen)
        batch.frames = batch.frames.float() / 255
        return batch

    opt = torch.optim.AdamW([p for p in head.parameters() if p.requires_grad], lr=3e-3)
    train_loop(head, sample, opt, steps=300, generator=torch.Generator().manual_seed(0), warmup=10, progress=False)
    finish_head(head, demos, torch.device("cpu"))
    model = _model(head)
    held_out = [moving_square(24, SIZE, y=y) for y in (2, 6, 10)]
    for video in held_out:
        shuffled = video[np.random.default_rng(1).permutation(len(video))]
        demo_reward, shuffled_reward = model.score(video).mu[3:].mean(), model.score(shuffled).mu[3:].mean()
        assert demo_reward > shuffled_reward + 1.0, (demo_reward, shuffled_reward)
        assert abs(demo_reward) < 1.5  # standardised on the demonstrations: a demonstration reads near 0
