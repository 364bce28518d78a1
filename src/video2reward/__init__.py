"""video2reward: turn plain videos of a task into a dense reward function.

    import video2reward
    model = video2reward.load("models/pendulum")
    rewards = model.score("episode.mp4")       # or a uint8 array (T, H, W, 3)
    rewards.mu, rewards.sigma                  # one value per decoded frame
"""

from video2reward.errors import ConfigError, ModelFileError, V2RError, VideoError

__version__ = "0.1.0"
__all__ = ["load", "RewardModel", "Rewards", "V2RError", "VideoError", "ModelFileError", "ConfigError"]


def __getattr__(name: str):
    """Import torch-backed parts on first use, so `import video2reward` (and `v2r --help`) stays fast."""
    if name in ("load", "RewardModel", "Rewards"):
        from video2reward.rewards import model

        return getattr(model, name)
    raise AttributeError(f"module 'video2reward' has no attribute {name!r}")
