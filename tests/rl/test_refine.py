"""Online refinement (rl/refine.py): push-back lowers the reward of the agent's out-of-distribution frames while
the demonstrations keep their order; the agent-frame buffer stays bounded; LearnedReward.refresh() makes the
rest of an episode score with the new weights; heads without push-back are refused clearly."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.helpers.tiny_heads import HELD_OUT, fit, held_out_voc
from tests.helpers.tiny_model import tiny_model
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rewards.ensemble import HeadEnsemble
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.rank import RankConfig, RankHead
from video2reward.rewards.triplets import TripletSampler
from video2reward.rl import LearnedReward
from video2reward.rl.refine import (
    AgentFrameBuffer,
    RewardRefiner,
    check_refinable,
    refinement_videos,
)
from video2reward.testing.synthetic import (
    failed_squares,
    moving_square,
    square_demonstrations,
)
from video2reward.video.io import write_video

TRAINING = {"frames_per_video": 8, "batch_size": 32, "triplets_per_video": 32, "augment": False,
            "weight_decay": 0.0}


@pytest.fixture(scope="module")
def trained() -> RewardModel:
    """A tiny progress model trained on white squares crossing the frame (as tests/rewards/test_progress.py)."""
    model = fit(lambda enc: ProgressHead(enc, ProgressConfig(hidden=64)),
                lambda demos: TripletSampler(demos, frames_per_video=8, videos_per_batch=4, triplets_per_video=32))
    encoder = json.loads(json.dumps(dataclasses.asdict(model.head.encoder.config)))
    config = {"head": "progress", "image_size": 32, "frame_fit": "pad", "encoder": {"name": "cnn", "config": encoder},
              "head_config": dataclasses.asdict(model.head.config), "training": {"config": TRAINING}}
    return RewardModel(model.head, config)


def agent_buffer(episodes: list[np.ndarray], capacity: int = 1000) -> AgentFrameBuffer:
    buffer = AgentFrameBuffer(capacity)
    for frames in episodes:
        buffer.start_episode(frames[0])
        for frame in frames[1:]:
            buffer.add(frame)
    return buffer


def mean_mu(model: RewardModel, videos: list[np.ndarray]) -> float:
    return float(np.mean([model.score(v).mu[1:].mean() for v in videos]))


@pytest.mark.slow
def test_refinement_pushes_agent_frames_down_and_keeps_the_expert_order(trained: RewardModel) -> None:
    model = copy.deepcopy(trained)
    agent = failed_squares()  # what the agent "visited": a pink square no demonstration showed
    before, voc_before = mean_mu(model, agent), held_out_voc(model)
    assert before > 0.2 and voc_before > 0.9, (before, voc_before)  # the flaw to fix: OOD frames pay
    goal_before = model.head.goal.clone()
    refiner = RewardRefiner(model, square_demonstrations(), agent_buffer(agent), lr=1e-3, seed=0)
    first = refiner.refine(20)
    stats = refiner.refine(20)
    after, voc_after = mean_mu(model, agent), held_out_voc(model)
    assert after < 0.5 * before, (before, after)
    assert voc_after > 0.9, voc_after
    late = np.mean([model.score(moving_square(25, 32, y=y)).mu[-5:].mean() for y in HELD_OUT])
    assert late > 0.6, late  # the demonstrations' end still pays: not everything sank
    assert stats["agent_mu"] < first["agent_mu_before"] and stats["agent_episodes"] == len(agent)
    assert not torch.equal(goal_before, model.head.goal)  # the goal embedding follows the moved encoder
    assert not model.head.training  # back in eval mode for the wrapper
    assert refiner.summary()["gradient_steps"] == 40 and refiner.summary()["refinements"] == 2


@pytest.mark.slow
def test_a_progress_plus_rank_model_refines_its_progress_member_only(trained: RewardModel) -> None:
    """The default head is progress+rank: refinement pushes its progress member down on the agent's frames and
    keeps the rank member (single frames, no push-back) as trained, so the mean reward of those frames falls."""
    progress = copy.deepcopy(trained.head)
    rank = RankHead(copy.deepcopy(trained.head.encoder), RankConfig(hidden=16))
    model = RewardModel(HeadEnsemble([progress, rank]), {**trained.config, "head": "progress+rank"})
    agent = failed_squares()
    before = mean_mu(model, agent)
    rank_state = {k: v.clone() for k, v in rank.state_dict().items()}
    progress_state = {k: v.clone() for k, v in progress.state_dict().items()}
    RewardRefiner(model, square_demonstrations(), agent_buffer(agent), lr=1e-3, seed=0).refine(30)
    assert all(torch.equal(v, rank.state_dict()[k]) for k, v in rank_state.items())
    assert any(not torch.equal(v, progress.state_dict()[k]) for k, v in progress_state.items())
    assert mean_mu(model, agent) < before - 0.05, (before, mean_mu(model, agent))


@pytest.mark.slow
def test_an_empty_buffer_is_a_no_op(trained: RewardModel) -> None:
    model = copy.deepcopy(trained)
    buffer = AgentFrameBuffer(100)
    refiner = RewardRefiner(model, square_demonstrations(), buffer)
    state = {k: v.clone() for k, v in model.head.state_dict().items()}
    assert refiner.refine(5) is None
    buffer.start_episode(failed_squares()[0][0])  # one frame: no (initial, later) pair yet
    assert refiner.refine(5) is None
    assert all(torch.equal(v, model.head.state_dict()[k]) for k, v in state.items())


@pytest.mark.slow
def test_frozen_encoder_stays_frozen(trained: RewardModel) -> None:
    model = copy.deepcopy(trained)
    model.config = {**model.config, "encoder": {**model.config["encoder"], "frozen": True}}
    encoder = {k: v.clone() for k, v in model.head.encoder.state_dict().items()}
    mlp = model.head.mlp[0].weight.clone()
    RewardRefiner(model, square_demonstrations(), agent_buffer(failed_squares()), lr=1e-3).refine(3)
    assert all(torch.equal(v, model.head.encoder.state_dict()[k]) for k, v in encoder.items())
    assert not torch.equal(mlp, model.head.mlp[0].weight)


def test_buffer_keeps_recent_episodes_within_capacity() -> None:
    frames = [np.full((8, 8, 3), i, np.uint8) for i in range(40)]
    buffer = agent_buffer([frames[:10], frames[10:20], frames[20:30]], capacity=25)
    assert len(buffer) <= 25 and buffer.seen == 30
    demos = buffer.demonstrations()
    assert [d.name for d in demos] == ["agent-episode-1", "agent-episode-2"]  # the oldest went first
    assert demos[0].times.tolist() == list(range(10)) and int(demos[0].frames[3, 0, 0, 0]) == 13
    long = agent_buffer([frames], capacity=16)  # one episode longer than the buffer: thinned, reset frame kept
    (demo,) = long.demonstrations()
    assert len(long) <= 16 and demo.times[0] == 0 and int(demo.frames[0, 0, 0, 0]) == 0
    steps = demo.times.long().tolist()
    assert all(int(demo.frames[i, 0, 0, 0]) == s for i, s in enumerate(steps))  # each frame's own step
    assert steps[-1] >= 32  # later frames kept at a stride, not dropped
    with pytest.raises(ConfigError, match="at least 2"):
        AgentFrameBuffer(1)


def episode_with_a_weight_change(reward: str, refresh: bool) -> tuple[np.ndarray, np.ndarray]:
    """11 steps of MountainCar; before step 5 the weights change in place (as a refinement does). Returns the
    rewards and what the new weights give the whole episode (model.score)."""
    model = tiny_model(motion_gap=2)
    env = LearnedReward(gym.make("MountainCar-v0", render_mode="rgb_array", max_episode_steps=12), model,
                        reward=reward, preprocess="array")
    env.action_space.seed(0)
    env.reset(seed=0)
    frames, rewards = [env.render()], []
    for t in range(11):
        if t == 5:
            torch.manual_seed(1)
            with torch.no_grad():
                for p in model.head.parameters():
                    p.add_(0.05 * torch.randn_like(p))
            if refresh:
                env.refresh()
        rewards.append(env.step(env.action_space.sample())[1])
        frames.append(env.render())
    mu = model.score(np.stack(frames)).mu
    return np.array(rewards), (mu[1:] if reward == "progress" else np.diff(mu))


@pytest.mark.parametrize("reward", ["progress", "shaping"])
def test_refresh_scores_the_rest_of_the_episode_with_the_new_weights(reward: str) -> None:
    rewards, expected = episode_with_a_weight_change(reward, refresh=True)
    np.testing.assert_allclose(rewards[5:], expected[5:], atol=1e-5)
    stale, expected = episode_with_a_weight_change(reward, refresh=False)  # cached features of the old weights
    assert np.abs(stale[5:] - expected[5:]).max() > 1e-4


@pytest.mark.slow
def test_only_progress_heads_refine_and_videos_must_be_found(trained: RewardModel, tmp_path: Path) -> None:
    rank = RewardModel(trained.head, {**trained.config, "head": "rank"})
    with pytest.raises(ConfigError, match=r"supports the progress and progress\+rank heads only"):
        check_refinable(rank)
    with pytest.raises(ConfigError, match="does not record its training videos.*--refine-videos"):
        refinement_videos(trained)
    gone = RewardModel(trained.head, {**trained.config, "training": {"videos": ["no/such/video.mp4"]}})
    with pytest.raises(ConfigError, match="no/such/video.mp4.*--refine-videos"):
        refinement_videos(gone)
    with pytest.raises(ConfigError, match="no such file"):
        refinement_videos(trained, tmp_path / "missing")
    write_video(tmp_path / "demos" / "a.mp4", moving_square(12, 32), fps=10)
    (demo,) = refinement_videos(trained, tmp_path / "demos")
    assert demo.frames.shape == (12, 3, 32, 32)
    recorded = RewardModel(trained.head, {**trained.config,
                                          "training": {"videos": [str(tmp_path / "demos" / "a.mp4")]}})
    assert len(refinement_videos(recorded)) == 1
