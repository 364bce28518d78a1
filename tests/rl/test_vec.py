"""VecLearnedReward: one batched scorer call per vector step gives each env LearnedReward's rewards; an env's
reset starts its own stream only; the discriminator tells demonstration frames from noise."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

from tests.helpers.tiny_model import tiny_model
from tests.rl.test_wrapper import tiny_temporal_model
from video2reward.rl import LearnedReward
from video2reward.rl.discriminator import DiscriminatorConfig, DiscriminatorReward
from video2reward.rl.vec import FrameInInfo, VecLearnedReward

LENGTHS = (7, 10, 13)  # episode lengths of the three envs: they reset at different vector steps


def pendulum(length: int):
    return lambda: gym.make("Pendulum-v1", render_mode="rgb_array", max_episode_steps=length)


def single_env_rewards(model, length: int, seed: int, actions: np.ndarray) -> tuple[list[float], list[float]]:
    """LearnedReward on one env with the same seed and actions (reset without a seed after an episode, as SB3's
    vector envs do): rewards and env rewards per step."""
    env = LearnedReward(pendulum(length)(), model, preprocess="array")
    env.reset(seed=seed)
    rewards, env_rewards = [], []
    for action in actions:
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        env_rewards.append(info["env_reward"])
        if terminated or truncated:
            env.reset()
    return rewards, env_rewards


def vec_rewards(model, seed: int, actions: np.ndarray, subprocess: bool = False, **kwargs):
    """(steps, n_envs) rewards and env rewards of VecLearnedReward over envs of LENGTHS."""
    makers = [lambda n=n: FrameInInfo(pendulum(n)(), model.image_size, model.frame_fit, "array") for n in LENGTHS]
    venv = VecLearnedReward((SubprocVecEnv if subprocess else DummyVecEnv)(makers), model, **kwargs)
    venv.seed(seed)
    venv.reset()
    rewards, env_rewards = [], []
    for step_actions in actions:
        _, reward, dones, infos = venv.step(step_actions)
        rewards.append(reward)
        env_rewards.append([info["env_reward"] for info in infos])
    venv.close()
    return np.array(rewards), np.array(env_rewards), venv


@pytest.mark.parametrize("which", ["motion", "temporal"])
def test_vector_rewards_equal_the_single_env_wrapper_per_env(which: str) -> None:
    model = tiny_model() if which == "motion" else tiny_temporal_model("transformer")
    rng = np.random.default_rng(0)
    actions = rng.uniform(-2, 2, size=(30, len(LENGTHS), 1)).astype(np.float32)  # 30 steps: 2-4 episodes per env
    rewards, env_rewards, venv = vec_rewards(model, 5, actions)
    for i, length in enumerate(LENGTHS):
        expected, expected_env = single_env_rewards(model, length, 5 + i, actions[:, i])
        np.testing.assert_allclose(env_rewards[:, i], expected_env, atol=1e-6)  # the same states: same seeds
        np.testing.assert_allclose(rewards[:, i], expected, atol=1e-5)


def test_a_reset_starts_only_that_envs_stream() -> None:
    model = tiny_temporal_model("stack")
    actions = np.zeros((8, len(LENGTHS), 1), np.float32)
    _, _, venv = vec_rewards(model, 0, actions)  # env 0 (length 7) reset after step 7; the others did not
    seen = [s.seen for s in venv.scorer.streams]
    assert seen == [2, 9, 9]  # env 0: its reset frame + 1 step; envs 1 and 2: reset frame + 8 steps


def test_subprocess_envs_give_the_same_rewards() -> None:
    model = tiny_model()
    actions = np.random.default_rng(1).uniform(-2, 2, size=(12, len(LENGTHS), 1)).astype(np.float32)
    in_process, _, _ = vec_rewards(model, 3, actions)
    in_subprocesses, _, _ = vec_rewards(model, 3, actions, subprocess=True)
    np.testing.assert_allclose(in_subprocesses, in_process, atol=1e-6)


def test_the_discriminator_separates_demonstration_frames_from_noise() -> None:
    model = tiny_model()
    env = gym.make("Pendulum-v1", render_mode="rgb_array", max_episode_steps=40)
    wrapped = LearnedReward(env, model, preprocess="array")
    wrapped.reset(seed=0)
    demo = np.stack([wrapped.model_frame(env.render())] +
                    [wrapped.model_frame((wrapped.step(np.array([1.0], np.float32)), env.render())[1])
                     for _ in range(39)])
    noise = np.random.default_rng(0).integers(0, 256, size=(40, *demo.shape[1:]), dtype=np.uint8)
    disc = DiscriminatorReward(model.embed_frames(demo), DiscriminatorConfig(batch=32, lr=1e-3), seed=0)
    disc.add(model.embed_frames(noise))
    before = disc.log_d(model.embed_frames(demo)).mean() - disc.log_d(model.embed_frames(noise)).mean()
    stats = disc.update(60)
    after = disc.log_d(model.embed_frames(demo)).mean() - disc.log_d(model.embed_frames(noise)).mean()
    assert stats["accuracy"] > 0.9 and after > 1.0 and after > before + 0.5, (before, after, stats)
    assert stats["d_demo"] > 0.8 > 0.2 > stats["d_agent"]


def test_the_discriminator_term_is_added_to_the_reward_and_its_state_round_trips() -> None:
    model = tiny_model()
    torch.manual_seed(0)
    disc = DiscriminatorReward(torch.randn(50, model.embed_frames(np.zeros((1, 16, 16, 3), np.uint8)).shape[1]),
                               DiscriminatorConfig(weight=0.5, batch=8), seed=0)
    actions = np.random.default_rng(2).uniform(-2, 2, size=(6, len(LENGTHS), 1)).astype(np.float32)
    plain, _, _ = vec_rewards(model, 0, actions)
    with_d, _, venv = vec_rewards(model, 0, actions, discriminator=disc)
    assert disc.kept == 6 * len(LENGTHS)  # every step's features became the agent's
    assert not np.allclose(plain, with_d) and np.all(with_d <= plain + 1e-6)  # log D <= 0 only lowers it
    disc.update(3)
    tensors, facts = disc.state()
    copy = DiscriminatorReward(disc.demos, disc.config, seed=9)
    copy.load_state(tensors, facts)
    z = torch.randn(5, disc.demos.shape[1])
    np.testing.assert_allclose(copy.log_d(z), disc.log_d(z), atol=1e-6)
    assert copy.update(2)["loss"] == pytest.approx(disc.update(2)["loss"], abs=1e-6)  # optimizer and RNG too
