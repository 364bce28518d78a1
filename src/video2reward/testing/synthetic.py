"""Tiny generated videos for tests and benchmarks: a square that moves left to right (progress is its x position)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from video2reward.video.dataset import Demonstration
from video2reward.video.io import write_video


def moving_square(t: int = 24, size: int = 32, color=(255, 255, 255), y: int | None = None,
                  start: float = 0.0, stop: float = 1.0) -> np.ndarray:
    """(T, size, size, 3) uint8: a square whose x moves from `start` to `stop` of the free width."""
    side = size // 4
    y = size // 2 - side // 2 if y is None else y
    frames = np.zeros((t, size, size, 3), np.uint8)
    frames[:] = (30, 30, 60)
    for k in range(t):
        x = int(round((start + (stop - start) * k / max(t - 1, 1)) * (size - side)))
        frames[k, y : y + side, x : x + side] = color
    return frames


def write_square_dataset(root: Path, n_train: int = 4, n_test: int = 2, t: int = 24, size: int = 32) -> Path:
    """root/{train,test_expert,test_fail}/*.mp4: experts move the square all the way; failures stall early."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test_expert", n_test)):
        for i in range(n):
            y = int(rng.integers(2, size - size // 4 - 2))
            write_video(root / split / f"ep_{i}.mp4", moving_square(t + 2 * i, size, y=y), fps=10)
    for i in range(n_test):
        write_video(root / "test_fail" / f"ep_{i}.mp4", moving_square(t, size, stop=0.15 * (i + 1)), fps=10)
    return root


def as_demonstration(frames: np.ndarray, name: str = "video"):
    """(T, S, S, 3) uint8 frames -> a Demonstration with every frame kept (as load_demonstrations gives)."""
    return Demonstration(name, torch.from_numpy(frames).permute(0, 3, 1, 2).contiguous(),
                         torch.arange(len(frames)).float(), len(frames))


def square_demonstrations(n: int = 6, size: int = 32, seed: int = 0) -> list:
    """n demonstrations of 20 + i frames: a white square crossing the frame at a random height."""
    rng = np.random.default_rng(seed)
    return [as_demonstration(moving_square(20 + i, size, y=int(rng.integers(2, size - size // 4 - 2))), f"d{i}")
            for i in range(n)]


FAILED_COLOR = (255, 150, 150)


def failed_squares(n: int = 3, size: int = 32, t: int = 20, color=FAILED_COLOR) -> list[np.ndarray]:
    """Failed videos that look like no demonstration: a pink square (the wrong object) crossing the frame."""
    return [moving_square(t + i, size, color=color, y=4 + 6 * i) for i in range(n)]


def swinging_square(t: int = 40, size: int = 32, y: int | None = None, phase: int = 0) -> np.ndarray:
    """(T, size, size, 3) uint8: a square swinging about the centre with an amplitude that grows from 1 pixel to
    the frame's edge, a period of 4 frames (centre, right, centre, left): every other frame is the same image
    (the square at the centre), so one frame alone cannot tell early from late; the motion can."""
    side = size // 4
    y = size // 2 - side // 2 if y is None else y
    centre = (size - side) // 2
    frames = np.zeros((t, size, size, 3), np.uint8)
    frames[:] = (30, 30, 60)
    for k in range(t):
        amplitude = 1 + (centre - 1) * k / max(t - 1, 1)
        x = centre + int(round(amplitude * (0, 1, 0, -1)[(k + phase) % 4]))
        frames[k, y : y + side, x : x + side] = 255
    return frames
