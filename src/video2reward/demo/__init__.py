"""Demo data: videos of scripted experts and failures on gymnasium tasks, with per-frame labels."""

from video2reward.demo.generate import generate_demo_data
from video2reward.tasks import DEMO_TASKS

__all__ = ["DEMO_TASKS", "generate_demo_data"]
