"""Environments by name, scripted experts and failure policies, camera and view specs: what `rl/` and the
demo data share.

Adding a task means adding one `DemoTask` (tasks/task.py) to `TASKS`: the generator and `v2r rl` only talk to
tasks through that dataclass. The classic tasks live in classic.py, the Meta-World ones in metaworld.py (which
imports Meta-World, and so MuJoCo, only when an env is made).
"""

from video2reward.tasks.classic import MOUNTAIN_CAR, PENDULUM
from video2reward.tasks.metaworld import METAWORLD_TASKS
from video2reward.tasks.press_twice import PRESS_TWICE
from video2reward.tasks.task import DemoTask, make_env

TASKS: dict[str, DemoTask] = {task.name: task for task in (PENDULUM, MOUNTAIN_CAR, PRESS_TWICE, *METAWORLD_TASKS)}
DEMO_TASKS: tuple[str, ...] = (PENDULUM.name, MOUNTAIN_CAR.name)  # the default set: seconds to generate

__all__ = ["DEMO_TASKS", "TASKS", "DemoTask", "make_env"]
