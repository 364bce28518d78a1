"""Progress head: the KL against torch's own Normal KL, the target std, learning a moving square, and the
push-back on failed videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from tests.helpers.tiny_heads import (
    failed_demonstrations,
    failed_mean_reward,
    fit,
    held_out_voc,
)
from video2reward.encoders import build_encoder
from video2reward.evaluation.metrics import value_order_correlation
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import (
    ProgressConfig,
    ProgressHead,
    normal_kl,
    target_sigma,
)
from video2reward.rewards.triplets import (
    FailedTripletSampler,
    TripletBatch,
    TripletSampler,
)
from video2reward.testing.synthetic import moving_square
from video2reward.training.loop import train_loop
from video2reward.video.dataset import Demonstration


def test_normal_kl_matches_reference() -> None:
    g = torch.Generator().manual_seed(0)
    mu_p, mu_q = torch.rand(50, generator=g), torch.rand(50, generator=g)
    s_p, s_q = torch.rand(50, generator=g) + 0.01, torch.rand(50, generator=g) + 0.01
    expected = kl_divergence(Normal(mu_p, s_p), Normal(mu_q, s_q))
    torch.testing.assert_close(normal_kl(mu_p, s_p, mu_q, s_q), expected)
    assert normal_kl(mu_p, s_p, mu_p, s_p).abs().max() < 1e-6


def test_target_sigma_shrinks_with_gap() -> None:
    s = target_sigma(torch.tensor([2.0, 10.0, 100.0, 1000.0]), sigma_min=0.02)
    assert s[0] > s[1] > s[2] and s[2] == s[3] == 0.02


@pytest.mark.slow
def test_tiny_model_learns_progress_of_a_moving_square() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    demos = []
    for i in range(6):
        frames = moving_square(20 + i, 32, y=int(rng.integers(2, 22)))
        demos.append(Demonstration(f"d{i}", torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
                                   torch.arange(len(frames)).float(), len(frames)))
    head = ProgressHead(build_encoder("cnn", 32, channels=(8, 16, 32), dim=32), ProgressConfig(hidden=64))
    sampler = TripletSampler(demos, frames_per_video=8, videos_per_batch=4, triplets_per_video=32)

    def sample(gen):
        batch = sampler.sample(gen)
        batch.frames = batch.frames.float() / 255
        return batch

    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    train_loop(head, sample, opt, steps=150, generator=torch.Generator().manual_seed(0), warmup=10, progress=False)
    head.eval()
    head.set_goal(torch.stack([d.frames[-1] for d in demos]).float() / 255)
    model = RewardModel(head, {"head": "progress", "image_size": 32})
    held_out = [moving_square(25, 32, y=y) for y in (5, 12, 19)]  # unseen lengths and heights
    voc = value_order_correlation([model.score(v).mu for v in held_out])
    assert voc > 0.9, voc


def _progress_model(negatives: bool):
    def sampler(demos):
        triplets = TripletSampler(demos, frames_per_video=8, videos_per_batch=4, triplets_per_video=32)
        return FailedTripletSampler(triplets, failed_demonstrations(), videos_per_batch=2) if negatives else triplets

    return fit(lambda enc: ProgressHead(enc, ProgressConfig(hidden=64)), sampler)


def test_pushback_loss_matches_reference() -> None:
    """On failed triplets the loss is KL(N(beta * mu', sigma') || N(mu, sigma)) with (mu', sigma') the detached
    prediction, plus the usual KL on the expert triplets."""
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", 32, channels=(8,), dim=8), ProgressConfig(hidden=8, pushback=0.8,
                                                                                       negative_weight=0.5))
    frames = torch.rand(4, 3, 32, 32)
    batch = TripletBatch(frames, torch.tensor([0, 0, 1]), torch.tensor([1, 2, 2]), torch.tensor([3, 3, 3]),
                         torch.tensor([1, 2, 2]), torch.tensor([0.3, 0.6, 0.0]), torch.tensor([5.0, 5.0, 5.0]),
                         torch.tensor([False, False, True]))
    loss, metrics = head(batch)
    with torch.no_grad():
        z = head.embed(frames)
        mu, sigma = head.predict(z[batch.current], z[batch.initial], z[batch.goal], z[batch.previous])
    expert = kl_divergence(Normal(batch.progress[:2], target_sigma(batch.gap[:2], 0.02)), Normal(mu[:2], sigma[:2]))
    push = kl_divergence(Normal(0.8 * mu[2], sigma[2]), Normal(mu[2], sigma[2]))
    torch.testing.assert_close(loss.detach(), expert.mean() + 0.5 * push, rtol=1e-5, atol=1e-6)
    assert metrics["failed_mu"] == pytest.approx(mu[2].item(), rel=1e-5)


@pytest.mark.slow
def test_failed_videos_get_lower_progress() -> None:
    without, with_negatives = _progress_model(False), _progress_model(True)  # same seed and demonstrations
    assert failed_mean_reward(with_negatives) < 0.5 * failed_mean_reward(without)
    assert held_out_voc(with_negatives) > 0.9
