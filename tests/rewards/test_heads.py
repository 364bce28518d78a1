"""Every reward head behind RewardModel: rebuilt from its config on load with identical rewards, streamed
scoring equal to a direct computation, and success_prob only where there is a detector."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

import video2reward
from video2reward.encoders import build_encoder
from video2reward.errors import ModelFileError
from video2reward.inference.model import RewardModel
from video2reward.rewards.registry import ENCODER_HEADS, build_head, head_config_dict
from video2reward.testing.synthetic import moving_square


def untrained_model(kind: str) -> RewardModel:
    torch.manual_seed(0)
    encoder = build_encoder("cnn", 32, channels=(8, 16), dim=16)
    config_cls, head_cls = ENCODER_HEADS[kind]
    head = head_cls(encoder, config_cls())
    saved = head.state_dict()
    with torch.no_grad():  # give the stored goal and calibration constants values a fresh head cannot guess
        for name, buffer in head.named_buffers():
            if name in saved and buffer.is_floating_point():
                buffer.add_(torch.rand_like(buffer))
    config = {"head": kind, "image_size": 32, "encoder": {"name": "cnn", "config": asdict(encoder.config)},
              "head_config": head_config_dict(head)}
    return RewardModel(head, config, precision="fp32")  # compared with float32 computations below


@pytest.mark.parametrize("kind", list(ENCODER_HEADS))
def test_save_load_round_trip_gives_identical_rewards(kind: str, tmp_path: Path) -> None:
    model = untrained_model(kind)
    frames = moving_square(13, 40)
    before = model.score(frames)
    model.save(tmp_path / "m")
    loaded = video2reward.load(tmp_path / "m", precision="fp32")
    assert type(loaded.head) is type(model.head) and loaded.config["head"] == kind
    after = loaded.score(frames)
    np.testing.assert_array_equal(before.mu, after.mu)
    np.testing.assert_array_equal(before.sigma, after.sigma)
    assert (before.success_prob is None) == (kind != "success") == (after.success_prob is None)
    if kind == "success":
        np.testing.assert_array_equal(before.success_prob, after.success_prob)


@pytest.mark.parametrize("kind", list(ENCODER_HEADS))
def test_streamed_scoring_equals_a_direct_computation(kind: str) -> None:
    model = untrained_model(kind)
    frames = moving_square(20, 32)
    with torch.no_grad():
        z = model.head.embed(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
        gap = model.motion_gap
        previous = z[torch.clamp(torch.arange(20) - gap, min=0)] if gap else None
        if model.context > 1:  # K-1 predecessors of every frame, oldest first (temporal, video-likelihood)
            k = model.context
            lags = torch.arange(k - 1, 0, -1)  # K-1, ..., 1
            previous = z[torch.clamp(torch.arange(20)[:, None] - lags[None], min=0)]  # (T, K-1, D)
        expected, _ = model.head.predict(z, z[0], None, previous)
    scorer = model.scorer(batch_size=3)
    parts = [scorer.score(frames[:7]), scorer.score(frames[7:])]  # frames at the model's size, in two chunks
    np.testing.assert_allclose(np.concatenate([p.mu for p in parts]), expected.numpy(), rtol=1e-5, atol=1e-6)
    if kind == "success":
        np.testing.assert_allclose(np.concatenate([p.success_prob for p in parts]), expected.numpy(), rtol=1e-5,
                                   atol=1e-6)
    else:
        assert all(p.success_prob is None for p in parts)


def test_unknown_head_names_the_known_ones() -> None:
    with pytest.raises(ModelFileError, match="unknown reward head 'mystery'") as caught:
        build_head({"head": "mystery"})
    for name in ("progress", "progress+rank", "rank", "goal-distance", "temporal-distance", "success", "pixel-ridge"):
        assert name in str(caught.value)


def test_rl_wrapper_reads_the_success_detector() -> None:
    """LearnedReward gives info["success_prob"] from the success head, frame for frame as model.score does,
    and a success bonus needs no threshold on mu."""
    import gymnasium as gym

    from video2reward.rl import LearnedReward

    model = untrained_model("success")
    env = LearnedReward(gym.make("MountainCar-v0", render_mode="rgb_array", max_episode_steps=4), model,
                        success_bonus=1.0, preprocess="array")
    _, info = env.reset(seed=0)
    frames, probs, rewards = [env.render()], [info["success_prob"]], []
    for _ in range(4):
        _, reward, *_, info = env.step(1)
        frames.append(env.render())
        probs.append(info["success_prob"])
        rewards.append(reward)
    expected = model.score(np.stack(frames)).success_prob
    np.testing.assert_allclose(probs, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rewards, expected[1:] + (expected[1:] >= 0.5), rtol=1e-5, atol=1e-6)
