"""Progress head: the KL against torch's own Normal KL, the target std, and learning a moving square."""

from __future__ import annotations

import numpy as np
import torch
from torch.distributions import Normal, kl_divergence

from synthetic import moving_square
from video2reward.encoders import build_encoder
from video2reward.evaluation import value_order_correlation
from video2reward.rewards.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead, normal_kl, target_sigma
from video2reward.train import train_loop
from video2reward.video.dataset import Demonstration
from video2reward.video.sampling import TripletSampler


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
