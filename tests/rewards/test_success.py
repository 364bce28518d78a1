"""Success head: labels and the weighted BCE against hand-written references; a tiny detector fires on the
last frames of held-out demonstrations and not on early or failed ones; success_prob reaches Rewards."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.helpers.tiny_heads import HELD_OUT, failed_demonstrations, fit
from video2reward.rewards.clips import ClipSampler
from video2reward.rewards.success import (
    SuccessConfig,
    SuccessHead,
    success_labels,
    weighted_bce,
)
from video2reward.testing.synthetic import failed_squares, moving_square


def test_labels_mark_the_last_fraction_of_demonstrations_only() -> None:
    time = torch.tensor([0.0, 0.5, 0.89, 0.9, 1.0, 1.0])
    failed = torch.tensor([False, False, False, False, False, True])
    assert success_labels(time, failed, 0.1).tolist() == [0, 0, 0, 1, 1, 0]


def test_weighted_bce_matches_reference() -> None:
    logits = torch.tensor([1.5, -0.3, 0.2, -2.0, 0.7])
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0])
    w = 3 / 2  # N_neg / N_pos

    def log_sigmoid(x: float) -> float:
        return -math.log(1 + math.exp(-x))

    expected = -sum(w * y * log_sigmoid(x) + (1 - y) * log_sigmoid(-x)
                    for x, y in zip(logits.tolist(), labels.tolist())) / 5
    loss, pos_weight = weighted_bce(logits, labels)
    torch.testing.assert_close(loss, torch.tensor(expected))
    assert float(pos_weight) == w
    loss, pos_weight = weighted_bce(logits, torch.zeros(5))  # no positive: plain BCE
    assert float(pos_weight) == 1.0 and torch.isfinite(loss)


def _success_model(negatives: bool):
    return fit(lambda enc: SuccessHead(enc, SuccessConfig(hidden=64)),
               lambda demos: ClipSampler(demos, failed_demonstrations() if negatives else [], frames_per_video=8,
                                         videos_per_batch=4, negative_videos_per_batch=2))


@pytest.fixture(scope="module")
def plain():
    return _success_model(negatives=False)


@pytest.mark.slow
def test_tiny_detector_fires_on_last_frames_only(plain) -> None:
    for y in HELD_OUT:
        rewards = plain.score(moving_square(25, 32, y=y))
        prob = rewards.success_prob
        assert prob is not None and len(prob) == 25
        np.testing.assert_array_equal(rewards.mu, prob)  # the reward is the probability
        assert prob[-1] > 0.5 and prob[-2:].min() > 0.5, prob
        assert prob[:18].max() < 0.5, prob  # the first 70 % of the video: not done yet
    stalled = plain.score(moving_square(25, 32, stop=0.5)).success_prob  # never reaches the end
    assert stalled.max() < 0.5


@pytest.mark.slow
def test_failed_videos_are_negatives(plain) -> None:
    with_negatives = _success_model(negatives=True)  # same seed, same demonstrations, plus failed videos
    lasts = [frames[-3:] for frames in failed_squares()]  # the wrong (pink) square at the goal: not the task
    before = np.mean([plain.score(f).success_prob.mean() for f in lasts])
    after = np.mean([with_negatives.score(f).success_prob.mean() for f in lasts])
    assert before > 0.5 and after < 0.1, (before, after)  # the detector fired on it; the negatives taught it not to
    for y in HELD_OUT:
        prob = with_negatives.score(moving_square(25, 32, y=y)).success_prob
        assert prob[-1] > 0.5 and prob[:18].max() < 0.5, prob
