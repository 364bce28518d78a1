"""Rank head: the Bradley-Terry loss and pairs against hand-written references, Platt scaling, learning a
moving square, and failed videos ranked below late expert frames."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.tiny_heads import (
    failed_demonstrations,
    failed_mean_reward,
    fit,
    held_out_voc,
)
from video2reward.rewards.clips import ClipBatch, ClipSampler
from video2reward.rewards.rank import (
    RankConfig,
    RankHead,
    bradley_terry_loss,
    platt_fit,
    rank_pairs,
)
from video2reward.testing.synthetic import moving_square


def test_bradley_terry_loss_matches_reference() -> None:
    s = torch.tensor([0.3, -1.2, 2.0, 0.5])
    pairs = torch.zeros(4, 4, dtype=torch.bool)
    for i, j in [(0, 2), (1, 2), (1, 3), (3, 0)]:
        pairs[i, j] = True
    expected = sum(-math.log(1 / (1 + math.exp(-(s[j] - s[i]).item())))
                   for i, j in [(0, 2), (1, 2), (1, 3), (3, 0)]) / 4
    torch.testing.assert_close(bradley_terry_loss(s, pairs), torch.tensor(expected))
    assert bradley_terry_loss(s, torch.zeros(4, 4, dtype=torch.bool)) == 0


def test_pairs_are_later_frames_of_one_clip_and_failed_below_late_expert() -> None:
    batch = ClipBatch(frames=torch.zeros(6, 3, 4, 4), video=torch.tensor([0, 0, 0, 1, 1, 2]),
                      time=torch.tensor([0.0, 0.4, 1.0, 0.0, 1.0, 0.9]),
                      failed=torch.tensor([False, False, False, False, False, True]))
    ordered, negative = rank_pairs(batch, late_fraction=0.5)
    assert sorted(map(tuple, ordered.nonzero().tolist())) == [(0, 1), (0, 2), (1, 2), (3, 4)]
    assert sorted(map(tuple, negative.nonzero().tolist())) == [(5, 2), (5, 4)]  # failed 5 below t >= 0.5


def test_platt_fit_recovers_a_logistic_map() -> None:
    s = torch.linspace(-3, 3, 200)
    a, b = platt_fit(s, torch.sigmoid(2.0 * s - 0.5))
    assert abs(a - 2.0) < 1e-3 and abs(b + 0.5) < 1e-3
    a, b = platt_fit(torch.zeros(10), torch.linspace(0, 1, 10))  # a constant score cannot diverge
    assert math.isfinite(a) and abs(b) < 1e-3


def _rank_model(negatives: bool):
    return fit(lambda enc: RankHead(enc, RankConfig(hidden=64)),
               lambda demos: ClipSampler(demos, failed_demonstrations() if negatives else [], frames_per_video=8,
                                         videos_per_batch=4, negative_videos_per_batch=2))


@pytest.fixture(scope="module")
def plain():
    return _rank_model(negatives=False)


@pytest.mark.slow
def test_tiny_model_learns_to_rank_a_moving_square(plain) -> None:
    assert held_out_voc(plain) > 0.9
    mu = plain.score(moving_square(25, 32)).mu
    assert mu[0] < 0.25 and mu[-1] > 0.75  # calibrated: reads like progress


@pytest.mark.slow
def test_failed_videos_rank_below_late_expert_frames(plain) -> None:
    with_negatives = _rank_model(negatives=True)  # same seed, same demonstrations, plus failed videos
    assert failed_mean_reward(with_negatives) < 0.7 * failed_mean_reward(plain)
    assert held_out_voc(with_negatives) > 0.9


def test_a_synthetic_near_miss_ranks_below_the_demonstration_frames_later_than_the_moment_it_copies() -> None:
    batch = ClipBatch(frames=torch.zeros(5, 3, 4, 4), video=torch.tensor([0, 0, 0, 1, 1]),
                      time=torch.tensor([0.0, 0.6, 1.0, 0.2, 0.7]),
                      failed=torch.tensor([False, False, False, False, True]),
                      ceiling=torch.tensor([-1.0, -1.0, -1.0, 0.2, 0.7]))
    _, negative = rank_pairs(batch, late_fraction=0.5)
    assert sorted(map(tuple, negative.nonzero().tolist())) == [(4, 2)]  # held at 0.7: below 1.0, not below 0.6
