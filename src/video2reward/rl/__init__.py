"""Reinforcement learning with a learned reward: `LearnedReward` wraps a gymnasium env so its reward
comes from a video2reward model (see wrapper.py); `agents.train_agent` trains SB3 DQN/SAC on it (`v2r rl`),
`envs.env_spec` resolves task names, `report` draws learning curves and tables (`v2r rl-report`), `refine`
refines the reward online on the agent's own frames (`v2r rl --refine`). `reward_fn` gives the same reward to the
`imitation` library's batches of transitions, and `relabel_episodes` / `relabel_replay_buffer` recompute it for
stored episodes and SB3 replay buffers (see reward_fn.py)."""

from video2reward.rl.reward_fn import (
    LearnedRewardFn,
    relabel_episodes,
    relabel_replay_buffer,
    reward_fn,
)
from video2reward.rl.wrapper import (
    DEMO_SHORT_SIDE,
    OBSERVE,
    PREPROCESS,
    REWARDS,
    LearnedReward,
    VideoFrames,
    video_frame,
)

__all__ = ["LearnedReward", "LearnedRewardFn", "reward_fn", "relabel_episodes", "relabel_replay_buffer", "VideoFrames",
           "video_frame", "REWARDS", "OBSERVE", "PREPROCESS", "DEMO_SHORT_SIDE"]
