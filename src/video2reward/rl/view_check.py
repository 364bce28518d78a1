"""Before an agent trains: do the env's rendered frames look like the demonstrations the reward learned from?

A reward model read from another camera, size or orientation than its videos gives numbers that mean nothing,
and an agent then learns nothing (or exploits them). So `v2r rl` renders a few frames and measures, in the
model's own feature space,

    d(x)   = min over demonstration frames y of || f(x) - f(y) ||        a rendered frame's nearest demonstration
    spread = the 90th percentile, over demonstration frames y of one video, of min over frames y' of the
             *other* videos of || f(y) - f(y') ||                         how far demonstrations lie from each other
    ratio  = median_x d(x) / spread

and warns, naming the flags to check, when the ratio passes WARN_RATIO: the rendered frames sit much farther
from every demonstration than the demonstrations sit from each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from video2reward.video.frame_fit import fit_square

WARN_RATIO = 3.0
SPREAD_QUANTILE = 0.9


@dataclass
class ViewCheck:
    distance: float  # median over rendered frames of the distance to the nearest demonstration frame
    spread: float  # the demonstrations' own spread (module docstring)

    @property
    def ratio(self) -> float:
        return self.distance / max(self.spread, 1e-8)

    @property
    def mismatch(self) -> bool:
        return self.ratio > WARN_RATIO


def view_check(model, rendered: np.ndarray, demos: Sequence[np.ndarray]) -> ViewCheck:
    """`rendered` (N, S, S, 3) and each of `demos` (T, S, S, 3): uint8 frames at the model's size; at least two
    demonstration videos (the spread compares videos with each other)."""
    if len(demos) < 2:
        raise ValueError("the view check needs at least two demonstration videos")
    features = [model.embed_frames(video).float() for video in demos]  # per video (T, D)
    nearest = []
    for i, own in enumerate(features):
        others = torch.cat([f for j, f in enumerate(features) if j != i])  # (T', D)
        nearest.append(torch.cdist(own, others).min(dim=1).values)  # (T,)
    spread = float(torch.quantile(torch.cat(nearest), SPREAD_QUANTILE))
    distance = torch.cdist(model.embed_frames(rendered).float(), torch.cat(features)).min(dim=1).values  # (N,)
    return ViewCheck(float(distance.median()), spread)


def mismatch_warning(check: ViewCheck, camera: str, size: tuple[int, int] | None, flip: str) -> str:
    """The warning `v2r rl` prints when `check.mismatch`."""
    rendering = f"camera {camera or 'the default'}, size {f'{size[0]}x{size[1]}' if size else 'the default'}, " \
                f"flip {flip}"
    return (f"warning: the env's frames do not look like the demonstrations: their distance to the nearest "
            f"demonstration frame is {check.ratio:.1f}x the demonstrations' own spread (above {WARN_RATIO:g}x). The "
            f"learned reward may mean nothing on them: check --camera, --render-size and --flip (now {rendering})")


def rendered_frames(env, steps: int, seed: int) -> list[np.ndarray]:
    """The frames of `steps` random-action steps from a seeded reset, as `env.render()` gives them."""
    env.reset(seed=seed)
    env.action_space.seed(seed)
    frames = [env.render()]
    for _ in range(steps - 1):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        frames.append(env.render())
        if terminated or truncated:
            env.reset(seed=seed + len(frames))
    return frames


def check_env_view(model, env, demos: Sequence, steps: int = 32, seed: int = 0) -> ViewCheck:
    """`view_check` of `steps` frames rendered by `env` against `demos` (Demonstrations at the model's size,
    up to 5 videos, 32 frames of each, evenly spread)."""
    rendered = np.stack([fit_square(f, model.image_size, model.frame_fit) for f in rendered_frames(env, steps, seed)])
    picked = [demos[i] for i in np.linspace(0, len(demos) - 1, min(5, len(demos))).round().astype(int)]
    videos = []
    for demo in picked:
        frames = demo.frames.permute(0, 2, 3, 1).numpy()  # (T, S, S, 3) uint8
        videos.append(frames[np.linspace(0, len(frames) - 1, min(32, len(frames))).round().astype(int)])
    return view_check(model, rendered, videos)
