"""reward_fn (imitation's RewardFn) and relabelling: the reward of each transition equals `model.score` of its
episode's frames (the reward of next_obs, in the episode's context), whatever the layout of the pixels."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.buffers import ReplayBuffer

import video2reward
from tests.helpers.tiny_model import tiny_model
from video2reward.errors import ConfigError, VideoError
from video2reward.inference.model import RewardModel
from video2reward.rl import relabel_episodes, relabel_replay_buffer, reward_fn

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "models"
SHAPE = (36, 44, 3)  # not the model's 32 x 32: frames are fitted as model.score(array) fits them


def episode(transitions: int, seed: int) -> np.ndarray:
    """(transitions + 1, 36, 44, 3) uint8 random frames: the reset frame, then one frame per step."""
    return np.random.default_rng(seed).integers(0, 256, (transitions + 1, *SHAPE), dtype=np.uint8)


# per env, its episodes' lengths in transitions; every env takes 12 steps; env 1 ends an episode mid-way
LENGTHS = ([12], [5, 7], [4, 4, 4])


def env_episodes() -> list[list[np.ndarray]]:
    return [[episode(n, 10 * env + k) for k, n in enumerate(lengths)] for env, lengths in enumerate(LENGTHS)]


def vec_rollout(fn, envs: list[list[np.ndarray]], convert=lambda x: x) -> list[list[list[float]]]:
    """Call fn as imitation's RewardVecEnvWrapper does: one transition per env per call, in step order; at a done
    next_obs is the terminal frame and the next obs is the next episode's reset frame. Rewards per env, per episode."""
    where = [[0, 0] for _ in envs]  # (episode, step) of each env
    out = [[[] for _ in eps] for eps in envs]
    for _ in range(sum(len(ep) - 1 for ep in envs[0])):
        frames = [(envs[i][e], t) for i, (e, t) in enumerate(where)]
        obs = np.stack([ep[t] for ep, t in frames])
        next_obs = np.stack([ep[t + 1] for ep, t in frames])
        dones = np.array([t + 2 == len(ep) for ep, t in frames])
        rewards = fn(convert(obs), None, convert(next_obs), dones)
        assert rewards.shape == (len(envs),) and rewards.dtype == np.float32
        for i, (e, t) in enumerate(where):
            out[i][e].append(float(rewards[i]))
            where[i] = [e + 1, 0] if dones[i] else [e, t + 1]
    return out


def check_against_score(model: RewardModel, envs, rewards, atol: float = 1e-5) -> None:
    for env, episodes in enumerate(envs):
        for ep, got in zip(episodes, rewards[env]):
            np.testing.assert_allclose(got, model.score(ep).mu[1:], atol=atol, err_msg=f"env {env}")


MODELS = {"progress_gap0": lambda: tiny_model(0), "progress_gap2": lambda: tiny_model(2),
          "temporal": lambda: video2reward.load(GOLDEN / "temporal")}


@pytest.mark.parametrize("name", MODELS)
def test_vec_env_calls_equal_scoring_each_episode(name: str) -> None:
    model = MODELS[name]()
    envs = env_episodes()
    fn = reward_fn(model)
    check_against_score(model, envs, vec_rollout(fn, envs))
    assert fn.new_streams == 3 + 1 + 2  # one stream per env, then one per done


@pytest.mark.parametrize("convert", [lambda x: x.transpose(0, 3, 1, 2), lambda x: x.astype(np.float32) / 255,
                                     lambda x: (x.astype(np.float64) / 255).transpose(0, 3, 1, 2)],
                         ids=["channels_first", "float", "float_channels_first"])
def test_channels_first_and_float_pixels_give_the_uint8_rewards(convert) -> None:
    model, envs = tiny_model(), env_episodes()
    reference = vec_rollout(reward_fn(model), envs)
    assert vec_rollout(reward_fn(model), envs, convert) == reference


def test_reward_modes_scale_offset_and_a_model_folder(tmp_path: Path) -> None:
    model, envs = tiny_model(), env_episodes()
    model.save(tmp_path / "m")
    shaping = vec_rollout(reward_fn(tmp_path / "m", reward="shaping", scale=2.0, offset=-1.0), envs)
    uncertainty = vec_rollout(reward_fn(model, reward="uncertainty", k=0.5), envs)
    for env, episodes in enumerate(envs):
        for k, ep in enumerate(episodes):
            r = model.score(ep)
            np.testing.assert_allclose(shaping[env][k], 2 * np.diff(r.mu) - 1, atol=1e-5)
            np.testing.assert_allclose(uncertainty[env][k], (r.mu - 0.5 * r.sigma)[1:], atol=1e-5)
    with pytest.raises(ConfigError, match="reward='potential'"):
        reward_fn(model, reward="potential")


def test_broken_chains_start_new_streams_at_their_obs() -> None:
    model = tiny_model()
    frames = episode(9, 0)
    alone = [model.score(frames[i : i + 2]).mu[1] for i in range(9)]  # each transition a stream of its own
    fn = reward_fn(model)
    np.testing.assert_allclose(fn(frames[[0, 5, 2]], None, frames[[1, 6, 3]], np.zeros(3)), np.take(alone, [0, 5, 2]),
                               atol=1e-5)
    # the same batch size, rows 0 and 2 continue their streams, row 1 does not (shuffled samples, a VecEnv reset)
    got = fn(frames[[1, 7, 3]], None, frames[[2, 8, 4]], np.zeros(3))
    np.testing.assert_allclose(got[1], alone[7], atol=1e-5)
    np.testing.assert_allclose(got[[0, 2]], [model.score(frames[0:3]).mu[2], model.score(frames[2:5]).mu[2]],
                               atol=1e-5)
    assert fn.new_streams == 4
    # another batch size: every row alone
    np.testing.assert_allclose(fn(frames[[3, 4]], None, frames[[4, 5]], np.zeros(2)), alone[3:5], atol=1e-5)
    assert fn.new_streams == 6 and fn(frames[:0], None, frames[:0], np.zeros(0)).shape == (0,)
    with pytest.raises(VideoError, match=r"float images must be in \[0, 1\]"):
        fn(frames[:2].astype(np.float32), None, frames[1:3].astype(np.float32), np.zeros(2))
    with pytest.raises(VideoError, match="episode 0: expected a batch of images"):
        relabel_episodes(model, [frames[0]])


def test_a_done_restarts_the_stream_even_when_the_reset_frame_is_the_terminal_frame() -> None:
    model = tiny_model()
    first, second = episode(3, 1), episode(3, 2)
    second[0] = first[-1]  # a still scene: the new episode starts where the last one ended
    fn = reward_fn(model)
    got = [fn(ep[t : t + 1], None, ep[t + 1 : t + 2], np.array([t == 2]))[0]
           for ep in (first, second) for t in range(3)]
    np.testing.assert_allclose(got, np.concatenate([model.score(first).mu[1:], model.score(second).mu[1:]]),
                               atol=1e-5)


def test_relabel_episodes_equals_scoring_each_episode() -> None:
    model = tiny_model()
    # batch_size 4: the four short episodes are stepped side by side, the long ones scored alone in chunks
    for lengths in ([5, 5, 4, 3], [30, 9, 1, 2, 6]):
        episodes = [episode(n - 1, 100 + n + i) for i, n in enumerate(lengths)]
        given = [episodes[0], {"obs": episodes[1].transpose(0, 3, 1, 2)}, {"frames": episodes[2]}, *episodes[3:]]
        got = relabel_episodes(model, given, batch_size=4)
        assert [len(r) for r in got] == lengths and all(r.dtype == np.float32 for r in got)
        for ep, r in zip(episodes, got):
            np.testing.assert_allclose(r, model.score(ep).mu, atol=1e-5)
    shaped = relabel_episodes(model, episodes, reward="shaping", offset=1.0)
    np.testing.assert_allclose(shaped[0][1:], np.diff(model.score(episodes[0]).mu) + 1, atol=1e-5)
    assert shaped[0][0] == 1.0
    with pytest.raises(ConfigError, match="'obs' or 'frames'"):
        relabel_episodes(model, [{"images": episodes[0]}])


# ---- SB3 replay buffers ---------------------------------------------------------------------------------------
BUFFER_LENGTHS = ([6, 7], [4, 9])  # transitions per episode, two episodes per env, 13 steps each


def fill_buffer(size: int, optimize: bool, channels_first: bool) -> tuple[ReplayBuffer, list[list[np.ndarray]]]:
    """A 2-env ReplayBuffer (size rows per env) filled as SB3's off-policy collection does: obs, the next obs
    (the terminal frame at a done), the env reward -(100 * env + step)."""
    shape = (SHAPE[2], *SHAPE[:2]) if channels_first else SHAPE
    buffer = ReplayBuffer(2 * size, gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(2), "cpu", n_envs=2,
                          optimize_memory_usage=optimize, handle_timeout_termination=not optimize)
    envs = [[episode(n, 50 + 10 * env + k) for k, n in enumerate(lengths)]
            for env, lengths in enumerate(BUFFER_LENGTHS)]
    layout = (lambda x: x.transpose(0, 3, 1, 2)) if channels_first else (lambda x: x)
    where = [[0, 0], [0, 0]]
    for step in range(13):
        frames = [(envs[i][e], t) for i, (e, t) in enumerate(where)]
        dones = np.array([t + 2 == len(ep) for ep, t in frames])
        buffer.add(layout(np.stack([ep[t] for ep, t in frames])), layout(np.stack([ep[t + 1] for ep, t in frames])),
                   np.zeros(2), -np.array([step, 100 + step], np.float32), dones, [{}, {}])
        where = [[e + 1, 0] if d else [e, t + 1] for (e, t), d in zip(where, dones)]
    return buffer, envs


def expected_rewards(model: RewardModel, envs, size: int, optimize: bool) -> dict[tuple[int, int], float]:
    """(row, env) -> the reward of the transition stored there: model.score of its episode from the first frame
    still stored, the frame after a done read as the one before it where optimize_memory_usage lost it."""
    first_kept = max(0, 13 - size + (1 if optimize and 13 > size else 0))  # optimize: row pos holds no transition
    out = {}
    for env, episodes in enumerate(envs):
        start = 0  # global step of the episode's first transition
        for ep in episodes:
            kept = max(start, first_kept)
            if kept < start + len(ep) - 1:
                mu = model.score(ep[kept - start :]).mu
                for step in range(kept, start + len(ep) - 1):
                    lost = optimize and step == start + len(ep) - 2 and step != 12  # a done row, not the newest
                    out[(step % size, env)] = mu[step - kept + (0 if lost else 1)]
            start += len(ep) - 1
    return out


@pytest.mark.parametrize(("size", "optimize", "channels_first"),
                         [(10, False, False), (20, False, True), (10, True, True), (20, True, False)],
                         ids=["wrapped", "not_full", "wrapped_optimized", "not_full_optimized"])
def test_relabel_replay_buffer_writes_the_episode_rewards(size: int, optimize: bool, channels_first: bool) -> None:
    model = tiny_model()
    buffer, envs = fill_buffer(size, optimize, channels_first)
    before = buffer.rewards.copy()
    assert buffer.full == (size < 13)
    original = relabel_replay_buffer(model, buffer, batch_size=4)
    np.testing.assert_array_equal(original, before)
    expected = expected_rewards(model, envs, size, optimize)
    assert len(expected) == min(13, size - (1 if optimize and size < 13 else 0)) * 2
    for (row, env), value in expected.items():
        np.testing.assert_allclose(buffer.rewards[row, env], value, atol=1e-5, err_msg=f"row {row} env {env}")
    untouched = [(r, e) for r in range(size) for e in range(2) if (r, e) not in expected]
    for row, env in untouched:  # rows never written, and row pos of a full optimized buffer: kept as they were
        assert buffer.rewards[row, env] == before[row, env]
