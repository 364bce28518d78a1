"""Fitting a frame of any shape to the model's square input: letterbox pad, center crop or stretch.

`fit_dims` gives the size a (width x height) frame is resized to, `to_square` pads or crops that to (size x size),
and `fit_square` does both with area-averaging resize. Decoding (io.py) and the gymnasium wrapper's rendered
frames (rl/wrapper.py) go through the same functions, so a model sees frames the same way wherever they come from.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from video2reward.errors import VideoError

FITS = ("pad", "crop", "stretch")


def fit_dims(width: int, height: int, size: int, fit: str) -> tuple[int, int]:
    """Size to resize a (width x height) frame to before it is padded or cropped to (size x size)."""
    if fit == "stretch":
        return size, size
    if fit == "pad":  # the long side becomes size
        scale = size / max(width, height)
        return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))
    scale = size / min(width, height)  # crop: the short side becomes size
    return max(size, round(width * scale)), max(size, round(height * scale))


def to_square(frame: np.ndarray, size: int) -> np.ndarray:
    """(h, w, 3) with each side cropped if longer than size or padded with black if shorter, centered."""
    h, w = frame.shape[:2]
    if h == w == size:
        return np.ascontiguousarray(frame)
    out = np.zeros((size, size, 3), np.uint8)
    src_y, src_x = max(0, (h - size) // 2), max(0, (w - size) // 2)  # crop offsets
    dst_y, dst_x = max(0, (size - h) // 2), max(0, (size - w) // 2)  # pad offsets
    ch, cw = min(h, size), min(w, size)
    out[dst_y : dst_y + ch, dst_x : dst_x + cw] = frame[src_y : src_y + ch, src_x : src_x + cw]
    return out


def fit_square(frame: np.ndarray, size: int | None, fit: str = "pad") -> np.ndarray:
    """(H, W, 3) uint8 -> (size, size, 3), resized with area averaging. `fit` says how a non-square frame
    becomes square: 'pad' keeps the whole frame (letterbox with black), 'crop' keeps the centered square,
    'stretch' resizes each side on its own."""
    if size is None:
        return frame
    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    h, w = frame.shape[:2]
    rw, rh = fit_dims(w, h, size, fit)
    if (rw, rh) != (w, h):
        frame = np.asarray(Image.fromarray(frame).resize((rw, rh), Image.BOX))
    return to_square(frame, size)


def resize_short_side(frame: np.ndarray, short_side: int) -> np.ndarray:
    """(H, W, 3) uint8 resized with area averaging so min(H, W) == `short_side`, aspect ratio kept."""
    height, width = frame.shape[:2]
    scale = short_side / min(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if size == (width, height):
        return frame
    return np.asarray(Image.fromarray(frame).resize(size, Image.BOX))


def as_rgb_frames(frames: np.ndarray) -> np.ndarray:
    """Accept (T, H, W, 1|3|4), (T, H, W) grayscale or one (H, W, 3|4) image, uint8; return (T, H, W, 3)."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8:
        raise VideoError(f"frames must be uint8 (got {frames.dtype}); scale floats with (x * 255).astype(np.uint8)")
    if frames.ndim == 3:  # one (H, W, 3|4) image, or a grayscale video (T, H, W)
        frames = frames[None] if frames.shape[-1] in (3, 4) else frames[..., None]
    if frames.ndim != 4 or frames.shape[-1] not in (1, 3, 4):
        raise VideoError(f"frames must have shape (T, H, W, 3), got {frames.shape}")
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    return frames[..., :3]


def fit_frames(frames: np.ndarray, size: int, fit: str = "pad") -> np.ndarray:
    """Frames as a user hands them over (see `as_rgb_frames`) -> (T, size, size, 3) uint8, each made square as
    `fit_square` does (what scoring an array reads)."""
    return np.stack([fit_square(f, size, fit) for f in as_rgb_frames(frames)])
