"""Temporal-distance head: bins, pairs and the cross-entropy against hand-written references; the reward is
the expected gap from the first frame with the distribution's std as sigma; learning a moving square."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.tiny_heads import fit, held_out_voc, tiny_encoder
from video2reward.rewards.clips import ClipBatch, ClipSampler
from video2reward.rewards.temporal_distance import (
    TemporalDistanceConfig,
    TemporalDistanceHead,
    bin_centres,
    clip_pairs,
    gap_to_bin,
)
from video2reward.testing.synthetic import moving_square


def test_bins_and_pairs() -> None:
    assert bin_centres(5).tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert gap_to_bin(torch.tensor([-1.0, -0.3, 0.0, 0.26, 1.0]), 5).tolist() == [0, 1, 2, 3, 4]
    batch = ClipBatch(torch.zeros(5, 3, 4, 4), video=torch.tensor([0, 0, 0, 1, 1]),
                      time=torch.tensor([0.0, 0.5, 1.0, 0.2, 0.6]), failed=torch.zeros(5, dtype=torch.bool))
    i, j, gap = clip_pairs(batch)
    pairs = {(a, b): g for a, b, g in zip(i.tolist(), j.tolist(), gap.tolist())}
    assert set(pairs) == {(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1), (3, 4), (4, 3)}
    assert math.isclose(pairs[(2, 0)], -1.0) and math.isclose(pairs[(3, 4)], 0.4, abs_tol=1e-6)


def test_loss_and_prediction_match_reference() -> None:
    torch.manual_seed(0)
    head = TemporalDistanceHead(tiny_encoder(), TemporalDistanceConfig(hidden=16, bins=5))
    frames = torch.rand(3, 3, 32, 32)
    batch = ClipBatch(frames, video=torch.tensor([0, 0, 0]), time=torch.tensor([0.0, 0.3, 1.0]),
                      failed=torch.zeros(3, dtype=torch.bool))
    loss, _ = head(batch)
    with torch.no_grad():
        z = head.embed(frames)
        expected, terms = 0.0, 0
        for a in range(3):
            for b in range(3):
                if a == b:
                    continue
                logits = head.mlp(torch.cat([z[a], z[b], z[b] - z[a]]))
                gap = float(batch.time[b] - batch.time[a])
                label = min(range(5), key=lambda k: abs(-1 + 0.5 * k - gap))  # nearest centre
                expected += -(logits[label] - torch.logsumexp(logits, 0)).item()
                terms += 1
        torch.testing.assert_close(loss.detach(), torch.tensor(expected / terms), rtol=1e-5, atol=1e-6)
        p = head.mlp(torch.cat([z[0], z[2], z[2] - z[0]])).softmax(0)
        centres = torch.tensor([-1.0, -0.5, 0.0, 0.5, 1.0])
        mu_ref = float((p * centres).sum())
        sigma_ref = math.sqrt(float((p * (centres - mu_ref) ** 2).sum()))
        mu, sigma = head.predict(z[2:3], z[0])
    assert math.isclose(mu.item(), mu_ref, rel_tol=1e-5, abs_tol=1e-6)
    assert math.isclose(sigma.item(), sigma_ref + 1e-3, rel_tol=1e-4)


@pytest.mark.slow
def test_tiny_model_learns_time_gaps_of_a_moving_square() -> None:
    model = fit(lambda enc: TemporalDistanceHead(enc, TemporalDistanceConfig(hidden=64)),
                lambda demos: ClipSampler(demos, frames_per_video=8, videos_per_batch=4))
    assert held_out_voc(model) > 0.9
    rewards = model.score(moving_square(25, 32))
    assert abs(rewards.mu[0]) < 0.15 and rewards.mu[-1] > 0.8  # gap from the first frame: 0 .. ~1
    assert (rewards.sigma > 0).all() and rewards.success_prob is None
