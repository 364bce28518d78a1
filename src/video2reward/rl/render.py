"""Rendering an RL env as the demonstrations were recorded (`v2r rl --camera NAME --render-size N|WxH --flip F`):
the learned reward only means something on frames that look like its training videos.

    --camera       a MuJoCo camera of the scene (Meta-World: corner, corner2, corner3, topview, behindGripper,
                   gripperPOV, ...); other envs have one view and refuse it
    --render-size  N (square) or WxH: Meta-World renders at that size; other envs' frames are resized to it
    --flip         none | vertical | horizontal | both, applied to the frames as v2r renders them (Meta-World's
                   are already upright: its corner cameras are mounted upside down and v2r turns them)

Rendering happens once per step either way; only its camera, size and orientation change.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np
from PIL import Image

from video2reward.errors import ConfigError

FLIPS = ("none", "vertical", "horizontal", "both")


def parse_render_size(text: str) -> tuple[int, int] | None:
    """'' -> None (the env's own size), '112' -> (112, 112), '160x120' -> (160, 120) as (width, height)."""
    if not text:
        return None
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = (size[0], size[0])
    if len(size) != 2 or min(size) < 8:
        raise ConfigError(f"--render-size {text!r}: give N or WxH in pixels, at least 8 (e.g. 112 or 160x120)")
    return size


@dataclass(frozen=True)
class RenderOptions:
    camera: str = ""  # '' : the env's default view
    size: tuple[int, int] | None = None  # (width, height); None: the env's own
    flip: str = "none"

    def __post_init__(self) -> None:
        if self.flip not in FLIPS:
            raise ConfigError(f"--flip {self.flip!r}: choose one of {', '.join(FLIPS)}")

    @classmethod
    def from_options(cls, camera: str, render_size: str, flip: str) -> "RenderOptions":
        return cls(camera, parse_render_size(render_size), "none" if flip in ("", "auto") else flip)


def resolve_render(camera: str, render_size: str, flip: str, recorded: dict[str, str] | None,
                   has_cameras: bool) -> tuple[RenderOptions, str]:
    """The options given, with what was left out (camera and size empty, flip 'auto') taken from how the model's
    training videos were rendered (`recorded`: the model config's "render", from render.json); and a line saying
    where each came from. A recorded camera is used only where the env has cameras."""
    recorded = recorded or {}
    took = []
    if not camera and has_cameras and recorded.get("camera"):
        camera = recorded["camera"]
        took.append(f"camera {camera}")
    if not render_size and recorded.get("render_size"):
        render_size = recorded["render_size"]
        took.append(f"size {render_size}")
    if flip in ("", "auto"):
        flip = recorded.get("flip") or "none"
        took += [f"flip {flip}"] if recorded.get("flip") else []
    options = RenderOptions.from_options(camera, render_size, flip)
    said = f"rendering as the model's training videos were ({', '.join(took)})" if took else ""
    return options, said


def flip_frame(frame: np.ndarray, flip: str) -> np.ndarray:
    """(H, W, 3) -> the frame turned over as `flip` says (a contiguous copy unless `flip` is none)."""
    if flip in ("vertical", "both"):
        frame = frame[::-1]
    if flip in ("horizontal", "both"):
        frame = frame[:, ::-1]
    return frame if flip == "none" else np.ascontiguousarray(frame)


def resize_frame(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (height, width, 3) uint8: area averaging when shrinking (as video/frame_fit.py resizes
    every frame), bilinear when growing."""
    width, height = size
    if frame.shape[:2] == (height, width):
        return frame
    shrink = height <= frame.shape[0] and width <= frame.shape[1]
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame)).resize(size, Image.BOX if shrink else Image.BILINEAR))


class RenderAs(gym.Wrapper):
    """`render()` frames flipped and resized as `options` say (the camera is chosen when the env is made)."""

    def __init__(self, env: gym.Env, options: RenderOptions):
        super().__init__(env)
        self.options = options

    def render(self):
        frame = self.env.render()
        if not isinstance(frame, np.ndarray):
            return frame
        if self.options.size is not None:
            frame = resize_frame(frame, self.options.size)
        return flip_frame(frame, self.options.flip)


def check_camera(options: RenderOptions, mujoco_scene: bool, task: str) -> None:
    if options.camera and not mujoco_scene:
        raise ConfigError(f"--camera {options.camera}: {task} has one view (only Meta-World / MuJoCo scenes have "
                          f"cameras to choose); leave --camera out")


def with_options(options: RenderOptions) -> dict:
    """make_metaworld_env keyword arguments for `options` (camera and native render size)."""
    kwargs: dict = {}
    if options.camera:
        kwargs["camera_name"] = options.camera
    if options.size is not None and options.size[0] == options.size[1]:
        kwargs["size"] = options.size[0]  # Meta-World renders squares; other sizes are resized by RenderAs
    return kwargs


__all__ = ["FLIPS", "RenderAs", "RenderOptions", "check_camera", "flip_frame", "parse_render_size", "resize_frame",
           "resolve_render", "with_options"]
