"""Camera shift: how each demo task is seen in its `test_cam/` split, never in train/ or the other test splits.

Users record demonstrations with one camera and run the agent with another. `v2r demo-data` therefore writes,
next to the splits seen from the training camera, a `test_cam/` folder laid out like a data folder of its own
(`test_cam/{test_expert,test_fail}/ep_*.mp4`, `test_cam/labels.json`, plus `test_cam/goals/<view>.png`), whose
videos are seen through a *view shift*:

* Meta-World tasks (`CameraView`): rendered from cameras the train split never uses: the scene's other corner
  cameras (corner2, corner3, corner4: other sides of the table, other fields of view) and the training camera
  ("corner") moved and turned, as a tripod knocked a few centimetres would be.
* classic-control tasks (`FrameShift`), whose renderer has one fixed 2-D view: a change of the picture instead:
  a crop to another size and aspect ratio, swapped colours, a tinted background, a low-resolution render.

Episode i of test_cam/test_expert (and of test_cam/test_fail) is seen through view `views[i % len(views)]`;
labels.json names it under "view". `goals/<view>.png` is the last frame of one more expert episode seen through
that view: the goal image a user would take with the new camera (`v2r score --goal`, `v2r eval`'s voc_cam_goal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from PIL import Image

from video2reward.tasks.task import DemoTask, make_env

CAM_SPLIT = "test_cam"  # the folder under a task's data folder
TRAINING_CAMERA = "corner"  # metaworld_tasks.CAMERA: the one camera of train/, test_expert/, test_fail/, test_partial/


@dataclass(frozen=True)
class CameraView:
    """A Meta-World view: render from `camera`, its position moved by `offset` (metres, world x, y, z) and its
    orientation turned by `yaw` degrees about the world's vertical axis, then `pitch` degrees about its own x."""

    name: str
    camera: str
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    yaw: float = 0.0
    pitch: float = 0.0

    def make_env(self, task: DemoTask) -> gym.Env:
        if task.make_env is None:
            raise ValueError(f"{task.name}: a CameraView needs a Meta-World task (one with make_env)")
        env = task.make_env(render_mode="rgb_array", max_episode_steps=task.max_steps, camera_name=self.camera)
        if self.offset != (0.0, 0.0, 0.0) or self.yaw or self.pitch:
            move_camera(env.unwrapped.model, self.camera, self.offset, self.yaw, self.pitch)
        return env

    def shift(self, frame: np.ndarray) -> np.ndarray:
        return frame  # the change is in the camera, not in the picture


def move_camera(model, camera: str, offset: tuple[float, float, float], yaw: float, pitch: float) -> None:
    """Move and turn a fixed MuJoCo camera in place: q' = q_yaw(world z) * q * q_pitch(camera x)."""
    import mujoco  # here: MuJoCo loads only when a Meta-World view is made

    cid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
    if cid < 0:
        raise ValueError(f"no camera named {camera!r} in this Meta-World scene")
    model.cam_pos[cid] += np.asarray(offset, dtype=np.float64)
    q_yaw, q_pitch = np.zeros(4), np.zeros(4)
    mujoco.mju_euler2Quat(q_yaw, np.radians([0.0, 0.0, yaw]), "xyz")
    mujoco.mju_euler2Quat(q_pitch, np.radians([pitch, 0.0, 0.0]), "xyz")
    turned, out = np.zeros(4), np.zeros(4)
    mujoco.mju_mulQuat(turned, q_yaw, model.cam_quat[cid].copy())
    mujoco.mju_mulQuat(out, turned, q_pitch)
    model.cam_quat[cid] = out


def crop_window(frame: np.ndarray) -> np.ndarray:
    """Another framing: 6% off the top, 14% off the bottom, 10% off the left, 2% off the right (the frame
    changes size and aspect ratio; every demo task's moving parts and goal stay inside)."""
    h, w = frame.shape[:2]
    return frame[round(0.06 * h): h - round(0.14 * h), round(0.10 * w): w - round(0.02 * w)]


def swap_colors(frame: np.ndarray) -> np.ndarray:
    """Colour channels rotated (R, G, B) -> (B, R, G): a red rod turns green, black and white stay as they are."""
    return np.ascontiguousarray(frame[..., [2, 0, 1]])


BACKGROUND = np.array([120, 150, 190], dtype=np.uint8)  # the tint that replaces a white background


def tint_background(frame: np.ndarray) -> np.ndarray:
    """Near-white pixels (all channels >= 235: the renders' background) become a mid blue-grey."""
    out = frame.copy()
    out[(frame >= 235).all(axis=-1)] = BACKGROUND
    return out


def low_resolution(frame: np.ndarray) -> np.ndarray:
    """A camera of a quarter of the resolution: area-averaged down by 4, then bilinear back up (soft edges)."""
    h, w = frame.shape[:2]
    small = Image.fromarray(frame).resize((max(1, w // 4), max(1, h // 4)), Image.BOX)
    return np.asarray(small.resize((w, h), Image.BILINEAR))


@dataclass(frozen=True)
class FrameShift:
    """A classic-control view: the task's own render, changed picture by picture with `op`."""

    name: str
    op: Callable[[np.ndarray], np.ndarray]

    def make_env(self, task: DemoTask) -> gym.Env:

        return make_env(task)

    def shift(self, frame: np.ndarray) -> np.ndarray:
        return self.op(frame)


# Two tripods knocked off the training pose (checked by eye: the arm, the table and the goal stay in view).
METAWORLD_VIEWS: tuple[CameraView, ...] = (
    CameraView("corner2", "corner2"),
    CameraView("corner3", "corner3"),
    CameraView("corner4", "corner4"),
    CameraView("corner-moved-left", TRAINING_CAMERA, offset=(-0.1, -0.2, 0.15), yaw=8.0, pitch=-6.0),
    CameraView("corner-moved-right", TRAINING_CAMERA, offset=(-0.15, 0.2, 0.1), yaw=-8.0),
)

CLASSIC_VIEWS: tuple[FrameShift, ...] = (
    FrameShift("crop", crop_window),
    FrameShift("colors", swap_colors),
    FrameShift("background", tint_background),
    FrameShift("low-resolution", low_resolution),
)


def views_for(task: DemoTask) -> tuple[CameraView, ...] | tuple[FrameShift, ...]:
    """The views of a task's test_cam split: other cameras for Meta-World, picture changes for the rest."""
    return METAWORLD_VIEWS if task.make_env is not None else CLASSIC_VIEWS


def view_of(index: int, views: tuple) -> CameraView | FrameShift:
    """The view of episode `index` of a test_cam split (views in turn)."""
    return views[index % len(views)]


def describe_views(views: tuple) -> dict[str, str]:
    """labels.json's description of each view."""
    out = {}
    for v in views:
        if isinstance(v, CameraView):
            moved = v.offset != (0.0, 0.0, 0.0) or v.yaw or v.pitch
            out[v.name] = (f"camera {v.camera}" + (f" moved by {list(v.offset)} m, turned {v.yaw:g} deg (yaw) and "
                                                    f"{v.pitch:g} deg (pitch)" if moved else ""))
        else:
            out[v.name] = " ".join((v.op.__doc__ or v.name).split())
    return out

