"""Goal-distance head (VIP): the value-implicit loss against a hand-written reference, the [0, 1] map of the
distance, and learning a moving square."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.tiny_heads import fit, held_out_voc, tiny_encoder
from video2reward.rewards.clips import VIPSampler
from video2reward.rewards.goal_distance import (
    GoalDistanceConfig,
    GoalDistanceHead,
    goal_value,
    vip_loss,
)
from video2reward.testing.synthetic import moving_square


def test_vip_loss_matches_reference() -> None:
    v0, vt, vt1 = torch.tensor([-2.0, -3.5]), torch.tensor([-1.5, -2.0]), torch.tensor([-1.0, -1.2])
    r, gamma = torch.tensor([-1.0, -1.0]), 0.9
    # (1 - gamma) E[-V(o_0; g)] + log E[exp(-(r + gamma V(o_t+1; g) - V(o_t; g)))], written out
    first = (1 - gamma) * (2.0 + 3.5) / 2
    second = math.log((math.exp(-(-1 + 0.9 * -1.0 + 1.5)) + math.exp(-(-1 + 0.9 * -1.2 + 2.0))) / 2)
    torch.testing.assert_close(vip_loss(v0, vt, vt1, r, gamma), torch.tensor(first + second))
    phi, goal = torch.tensor([[3.0, 4.0], [1.0, 1.0]]), torch.tensor([0.0, 0.0])
    torch.testing.assert_close(goal_value(phi, goal), torch.tensor([-5.0, -math.sqrt(2.0)]), atol=1e-6, rtol=0)


def test_reward_maps_the_training_range_to_zero_one() -> None:
    head = GoalDistanceHead(tiny_encoder())
    head.goal.zero_()
    head.d_start.fill_(4.0)
    head.d_end.fill_(1.0)
    phi = torch.tensor([[4.0] + [0.0] * 31, [1.0] + [0.0] * 31, [2.5] + [0.0] * 31, [7.0] + [0.0] * 31])
    mu, sigma = head.predict(phi, phi[0])
    torch.testing.assert_close(mu, torch.tensor([0.0, 1.0, 0.5, -1.0]), atol=1e-4, rtol=0)  # unclamped below 0
    assert (sigma == head.residual_std).all()


@pytest.mark.slow
def test_tiny_model_learns_goal_distance_of_a_moving_square() -> None:
    # VIP learns more slowly than the progress head: 300 steps (about as long as the progress test's 150,
    # because each step encodes 2 videos x (8 frames + their successors) and forms 48 quadruples per video)
    model = fit(lambda enc: GoalDistanceHead(enc, GoalDistanceConfig()),
                lambda demos: VIPSampler(demos, frames_per_video=8, videos_per_batch=2, quadruples_per_video=48),
                steps=300)
    assert held_out_voc(model) > 0.9
    mu = model.score(moving_square(25, 32)).mu
    assert mu[-1] > 0.7 and mu[0] < 0.3
