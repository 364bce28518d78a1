"""video2reward: turn plain videos of a task into a dense reward function.

    import video2reward
    model = video2reward.load("models/pendulum")
    rewards = model.score("episode.mp4")       # or a uint8 array (T, H, W, 3)
    rewards.mu, rewards.sigma                  # one value per decoded frame

    scorer = model.scorer()                    # streaming: frames in order, one or N streams
    scorer.step(frame[None])                   # (N, S, S, 3) uint8 at the model's size -> one reward per stream
"""

from video2reward.errors import ConfigError, ModelFileError, V2RError, VideoError

__version__ = "0.1.0"
__all__ = ["load", "RewardModel", "Rewards", "Scorer", "LearnedReward", "reward_fn", "relabel_episodes",
           "relabel_replay_buffer", "V2RError", "VideoError", "ModelFileError",
           "ConfigError"]
_LAZY = {"load": "video2reward.inference.model", "RewardModel": "video2reward.inference.model",
         "Rewards": "video2reward.inference.scorer", "Scorer": "video2reward.inference.scorer",
         "LearnedReward": "video2reward.rl.wrapper", "reward_fn": "video2reward.rl.reward_fn",
         "relabel_episodes": "video2reward.rl.reward_fn", "relabel_replay_buffer": "video2reward.rl.reward_fn"}


def __getattr__(name: str):
    """Import torch-backed parts on first use, so `import video2reward` (and `v2r --help`) stays fast."""
    if name in _LAZY:
        import importlib  # here, not at the top: `import video2reward` stays free of torch

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'video2reward' has no attribute {name!r}")
