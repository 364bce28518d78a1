"""LearnedReward: env-checker clean, rewards equal batch scoring frame for frame, per-episode state reset."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from tests.helpers.tiny_model import tiny_model
from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.inference.scorer import frames_to_tensor
from video2reward.rl import LearnedReward, video_frame
from video2reward.video.frame_fit import resize_short_side
from video2reward.video.io import read_frames, write_video

ENVS = ("MountainCar-v0", "Pendulum-v1")


@pytest.fixture(scope="module")
def model() -> RewardModel:
    return tiny_model()


def make(env_id: str, model: RewardModel, steps: int = 25, **kwargs) -> LearnedReward:
    return LearnedReward(gym.make(env_id, render_mode="rgb_array", max_episode_steps=steps), model, **kwargs)


def rollout(env: LearnedReward, seed: int) -> tuple[list[float], list[dict], np.ndarray]:
    """One episode of random actions: rewards, step infos, and the raw rendered frames (reset frame first)."""
    env.action_space.seed(seed)
    _, info = env.reset(seed=seed)
    frames, rewards, infos = [env.render()], [], [info]
    while True:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        frames.append(env.render())
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return rewards, infos, np.stack(frames)


@pytest.mark.filterwarnings("ignore:.*different from the unwrapped version")
@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
@pytest.mark.parametrize("env_id", ENVS)
def test_passes_the_gymnasium_and_sb3_env_checkers(env_id: str, model: RewardModel) -> None:
    gym_check_env(make(env_id, model), skip_render_check=True)
    sb3_check_env(make(env_id, model), warn=False)
    sb3_check_env(make(env_id, model, observe="pixels"), warn=False)


@pytest.mark.parametrize("env_id", ENVS)
def test_reward_is_a_float_and_info_keeps_the_env_reward(env_id: str, model: RewardModel) -> None:
    env = make(env_id, model)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert type(reward) is float
    assert type(info["env_reward"]) is float and info["success_prob"] is None
    assert info["is_success"] is None  # this env gives no success signal: unknown (None), never a False
    assert reward == info["mu"] and 0 < info["mu"] < 1 and info["sigma"] > 0
    assert env.reward_calls == 2 and env.reward_seconds > 0


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("motion_gap", [0, 2, 5])
def test_streaming_rewards_equal_batch_scoring_of_the_rendered_frames(env_id: str, motion_gap: int) -> None:
    model = tiny_model(motion_gap)
    env = make(env_id, model, preprocess="array")  # frames resized exactly as model.score(array) does
    rewards, infos, frames = rollout(env, seed=3)
    batch = model.score(frames)
    np.testing.assert_allclose([i["mu"] for i in infos], batch.mu, atol=1e-5)
    np.testing.assert_allclose([i["sigma"] for i in infos], batch.sigma, atol=1e-5)
    np.testing.assert_allclose(rewards, batch.mu[1:], atol=1e-5)
    # the default ("video") path: the same, given frames prepared as training videos were
    env = make(env_id, model)
    rewards, _, frames = rollout(env, seed=3)
    prepared = np.stack([video_frame(f, model.image_size) for f in frames])
    np.testing.assert_allclose(rewards, model.score(prepared).mu[1:], atol=1e-5)


def test_video_frames_match_decoded_demo_videos(tmp_path: Path) -> None:
    """video_frame(render) is what decoding a demo video (short side 240, H.264) gives, up to compression."""
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    env.reset(seed=1)
    renders = [env.render()]
    for _ in range(7):
        env.step(env.action_space.sample())
        renders.append(env.render())
    write_video(tmp_path / "ep.mp4", [resize_short_side(f, 240) for f in renders], fps=30)
    decoded = read_frames(tmp_path / "ep.mp4", 64).astype(int)
    ours = np.stack([video_frame(f, 64) for f in renders]).astype(int)
    assert np.abs(ours - decoded).mean() < 0.5


def test_reset_clears_the_episode_state(model: RewardModel) -> None:
    env = make("MountainCar-v0", model, steps=15, preprocess="array")
    first, _, frames_a = rollout(env, seed=1)
    second, _, frames_b = rollout(env, seed=2)
    np.testing.assert_allclose(first, model.score(frames_a).mu[1:], atol=1e-5)
    np.testing.assert_allclose(second, model.score(frames_b).mu[1:], atol=1e-5)
    again, _, _ = rollout(env, seed=1)
    np.testing.assert_allclose(again, first, atol=1e-6)


@pytest.mark.parametrize("env_id", ENVS)
def test_shaping_rewards_sum_to_the_change_in_mu(env_id: str, model: RewardModel) -> None:
    rewards, infos, _ = rollout(make(env_id, model, reward="shaping"), seed=4)
    assert sum(rewards) == pytest.approx(infos[-1]["mu"] - infos[0]["mu"], abs=1e-6)
    assert rewards[0] == pytest.approx(infos[1]["mu"] - infos[0]["mu"], abs=1e-9)


def test_uncertainty_scale_and_success_bonus(model: RewardModel) -> None:
    rewards, infos, _ = rollout(make("Pendulum-v1", model, reward="uncertainty", k=2.0, scale=3.0), seed=5)
    expected = [3.0 * (i["mu"] - 2.0 * i["sigma"]) for i in infos[1:]]
    np.testing.assert_allclose(rewards, expected, rtol=1e-6)
    with pytest.raises(ConfigError, match="success_threshold"):
        make("Pendulum-v1", model, success_bonus=1.0)  # the model has no success detector
    rewards, infos, _ = rollout(make("Pendulum-v1", model, success_bonus=10.0, success_threshold=0.0), seed=5)
    np.testing.assert_allclose(rewards, [i["mu"] + 10.0 for i in infos[1:]], rtol=1e-6)


def test_is_success_from_a_success_fn_a_demo_task_or_info(model: RewardModel) -> None:
    env = make("Pendulum-v1", model, success_fn=lambda env, info: True)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[4]["is_success"] is True
    env = make("Pendulum-v1", model, success_fn="pendulum")  # at_goal held for 10 steps: never from hanging
    _, infos, _ = rollout(env, seed=0)
    assert not any(i["is_success"] for i in infos[1:])
    with pytest.raises(ConfigError, match="not a demo task"):
        make("Pendulum-v1", model, success_fn="cartpole")

    class MetaWorldLike(gym.Wrapper):
        def step(self, action):
            obs, reward, terminated, truncated, info = self.env.step(action)
            return obs, reward, terminated, truncated, dict(info, success=1.0)

    env = LearnedReward(MetaWorldLike(gym.make("Pendulum-v1", render_mode="rgb_array")), model)
    env.reset(seed=0)
    assert env.step(env.action_space.sample())[4]["is_success"] is True


def test_a_model_folder_path_is_loaded(model: RewardModel, tmp_path: Path) -> None:
    model.save(tmp_path / "m")
    rewards, _, _ = rollout(make("MountainCar-v0", tmp_path / "m", steps=5), seed=0)  # type: ignore[arg-type]
    expected, _, _ = rollout(make("MountainCar-v0", model, steps=5), seed=0)
    np.testing.assert_allclose(rewards, expected, atol=1e-6)


def test_missing_render_mode_names_the_fix(model: RewardModel) -> None:
    with pytest.raises(ConfigError, match=r"gym.make\('MountainCar-v0', render_mode='rgb_array'\)"):
        LearnedReward(gym.make("MountainCar-v0"), model)
    with pytest.raises(ConfigError, match="reward="):
        make("MountainCar-v0", model, reward="sparse")


def test_pixel_observations(model: RewardModel) -> None:
    env = make("MountainCar-v0", model, observe="pixels")
    assert env.observation_space == gym.spaces.Box(0, 255, (32, 32, 3), np.uint8)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8 and obs.any()
    obs, *_ = env.step(1)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs, video_frame(env.render(), 32))


class ImageEnv(gym.Env):
    """Observations are images; no render_mode."""

    observation_space = gym.spaces.Box(0, 255, (48, 64, 3), np.uint8)
    action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return self._image(), {}

    def step(self, action):
        return self._image(), 0.0, False, False, {}

    def _image(self):
        return self.np_random.integers(0, 256, (48, 64, 3), dtype=np.uint8)


def test_pixels_from_image_observations_need_no_render_mode(model: RewardModel) -> None:
    env = LearnedReward(ImageEnv(), model, observe="pixels")
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs, video_frame(ImageEnv().reset(seed=0)[0], 32))
    assert env.step(0)[0].shape == (32, 32, 3)
    with pytest.raises(ConfigError, match="render_mode"):
        LearnedReward(ImageEnv(), model)  # observe="state" must render


def tiny_temporal_model(sequence: str, context: int = 4, size: int = 32) -> RewardModel:
    from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead

    torch.manual_seed(0)
    head = TemporalProgressHead(build_encoder("cnn", size, channels=(8, 16), dim=16),
                                TemporalConfig(context=context, sequence=sequence, width=16, heads=2, state=4,
                                               hidden=32))
    head.goal.normal_()
    with torch.no_grad():  # sharper outputs, so that a wrong context shows beyond the comparison tolerance
        head.mlp[-1].weight.mul_(30.0)
        for layer in getattr(head.sequence, "layers", []):  # an SSM that remembers its oldest frames clearly
            layer.a_log.fill_(-4.0)
            layer.delta.bias.fill_(0.5)
    return RewardModel(head.eval(), {"head": "temporal", "image_size": size, "frame_fit": "pad"})


@pytest.mark.parametrize("sequence", ["transformer", "ssm", "stack"])
def test_temporal_rewards_stream_step_by_step_and_the_context_resets_with_the_episode(sequence: str) -> None:
    """The wrapper's rolling context of the last K-1 frames gives model.score's rewards frame for frame, and
    reset() starts a new context: the second episode is scored as if it were the only one."""
    model = tiny_temporal_model(sequence)
    env = make("Pendulum-v1", model, steps=12, preprocess="array")
    first, infos, frames_a = rollout(env, seed=1)
    batch = model.score(frames_a)
    np.testing.assert_allclose([i["mu"] for i in infos], batch.mu, atol=1e-5)
    np.testing.assert_allclose(first, batch.mu[1:], atol=1e-5)
    second, _, frames_b = rollout(env, seed=2)
    np.testing.assert_allclose(second, model.score(frames_b).mu[1:], atol=1e-5)
    with torch.inference_mode():  # what episode B's first step would get with episode A's frames still in context
        head = model.head
        z_a = head.embed(frames_to_tensor(np.stack([env.model_frame(f) for f in frames_a[-2:]]), model.device))
        z_b = head.embed(frames_to_tensor(np.stack([env.model_frame(f) for f in frames_b[:2]]), model.device))
        carried, _ = head.predict(z_b[1:], z_b[0], None, torch.cat([z_a, z_b[:1]])[None])
    error = abs(model.score(frames_b).mu[1] - second[0])  # streaming vs batch: float rounding only
    assert abs(float(carried[0]) - second[0]) > 10 * error + 1e-5  # so the match shows the context was reset
    # refresh() mid-episode (after the weights changed in place) re-embeds the rolling context: same rewards
    env.action_space.seed(1)
    env.reset(seed=1)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(6)]
    env.refresh()
    rewards += [env.step(env.action_space.sample())[1] for _ in range(5)]
    np.testing.assert_allclose(rewards, first[:11], atol=1e-5)
