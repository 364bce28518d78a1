"""RewardModel: a trained reward head behind one small API: `load(dir)`, `score(video or frames)`, `save(dir)`.

Scoring streams the video in chunks, so memory stays flat in video length, and returns exactly one
reward per decoded frame, in order.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from video2reward.encoders import encoder_from_config
from video2reward.errors import ConfigError, ModelFileError, VideoError
from video2reward.core.files import load_model_dir, save_model_dir
from video2reward.core.precision import autocast, autocast_dtype
from video2reward.rewards.ensemble import COMBINED_HEADS, HeadEnsemble
from video2reward.rewards.goal_distance import GoalDistanceConfig, GoalDistanceHead
from video2reward.rewards.pixel_ridge import PixelRidge, PixelRidgeConfig
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.rank import RankConfig, RankHead
from video2reward.rewards.success import SuccessConfig, SuccessHead
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead
from video2reward.rewards.temporal_distance import TemporalDistanceConfig, TemporalDistanceHead
from video2reward.video.frame_fit import fit_square
from video2reward.video.io import VideoSource, iter_frames, probe, read_frames


# Frames per forward pass when scoring. Smaller batches stay in cache: embed + predict of a progress model at 64 px
# on 1 CPU thread (CPU time, bench/speed.py's machine) ran at 2,800 frames/s in batches of 64 against 1,900 in
# batches of 256 (default CNN), and 7,800 against 4,000 (the distillation student, --student tiny).
SCORE_BATCH = 64


@dataclass
class Rewards:
    """Per-frame output of a reward model: mu is the reward; sigma its predicted std."""

    mu: np.ndarray  # (T,)
    sigma: np.ndarray  # (T,)
    success_prob: np.ndarray | None = None  # (T,) when the model has a success detector
    fps: float | None = None
    epistemic: np.ndarray | None = None  # (T,) for an ensemble: the std of its members' rewards

    def __len__(self) -> int:
        return len(self.mu)


# Reward heads on a frame encoder: name -> (config dataclass, head class taking (encoder, config)).
ENCODER_HEADS: dict[str, tuple[type, type[nn.Module]]] = {
    "progress": (ProgressConfig, ProgressHead),
    "temporal": (TemporalConfig, TemporalProgressHead),
    "rank": (RankConfig, RankHead),
    "goal-distance": (GoalDistanceConfig, GoalDistanceHead),
    "temporal-distance": (TemporalDistanceConfig, TemporalDistanceHead),
    "success": (SuccessConfig, SuccessHead),
}


def build_head(config: dict[str, Any]) -> nn.Module:
    """Rebuild an (untrained) head from a model config; raises ModelFileError for unknown heads."""
    kind = config.get("head")
    if kind in COMBINED_HEADS:  # one member per kind, each with its own head_config (config["members"])
        entries = config.get("members") or []
        if [e.get("head") for e in entries] != list(COMBINED_HEADS[kind]):
            raise ModelFileError(f"a {kind!r} model config must list its members {COMBINED_HEADS[kind]}")
        return HeadEnsemble([build_head({**config, "head": e["head"], "head_config": e.get("head_config", {}),
                                         "members": None}) for e in entries])
    members = int(config.get("ensemble", 1))
    if members > 1:
        if kind not in ENCODER_HEADS:
            raise ModelFileError(f"the model config asks for an ensemble of {kind!r} heads, which v2r cannot build")
        return HeadEnsemble([build_head({**config, "ensemble": 1}) for _ in range(members)])
    if kind in ENCODER_HEADS:
        config_cls, head_cls = ENCODER_HEADS[kind]
        encoder = encoder_from_config(config["encoder"]["name"], config["encoder"]["config"])
        return head_cls(encoder, config_cls(**config.get("head_config", {})))
    if kind == "pixel-ridge":
        return PixelRidge(PixelRidgeConfig(**config.get("head_config", {})))
    known = ", ".join([*ENCODER_HEADS, *COMBINED_HEADS, "pixel-ridge"])
    raise ModelFileError(f"unknown reward head {kind!r} in the model config (known: {known})")


def frames_to_tensor(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1] on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device)
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def _as_rgb_frames(frames: np.ndarray) -> np.ndarray:
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


class RewardModel:
    """A trained reward head with its config. Use `video2reward.load(dir)` to get one."""

    def __init__(self, head: nn.Module, config: dict[str, Any], device: str | torch.device = "cpu",
                 precision: str = "auto"):
        self.device = torch.device(device)
        self.amp_dtype = autocast_dtype(precision, self.device)  # bf16 autocast of the encoder (cuda), or None
        self.head = head.to(self.device).eval()
        self.config = config
        self.image_size: int = int(config["image_size"])
        self.frame_fit: str = config.get("frame_fit", "pad")  # how frames become square, as in training

    # ---- files -------------------------------------------------------------------------------------
    @classmethod
    def load(cls, directory: str | os.PathLike, device: str | torch.device = "cpu",
             precision: str = "auto") -> "RewardModel":
        tensors, config = load_model_dir(Path(directory))
        head = build_head(config)
        missing, unexpected = head.load_state_dict(tensors, strict=False)
        if missing or unexpected:
            raise ModelFileError(
                f"{Path(directory) / 'model.safetensors'}: weights do not fit the model in config.json "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]}); re-copy the model folder"
            )
        return cls(head, config, device, precision)

    def save(self, directory: str | os.PathLike) -> None:
        save_model_dir(Path(directory), self.head.state_dict(), self.config)

    # ---- scoring -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def embed_frames(self, frames: np.ndarray, batch_size: int = SCORE_BATCH, spatial: bool = False) -> torch.Tensor:
        """(T, S, S, 3) uint8 frames at the model's size -> (T, D) features: the head's input, or with `spatial`
        the encoder's last feature map before global pooling, flattened (T, C*h*w): where things are in the
        picture, which pooling gives up (used by the relative reading, relative_reward.py)."""
        embed = self._feature_map if spatial else self._embed
        out = [embed(frames_to_tensor(frames[i : i + batch_size], self.device))
               for i in range(0, len(frames), batch_size)]
        return torch.cat(out)

    def goal_from_image(self, path: str | os.PathLike, spatial: bool = False) -> torch.Tensor:
        """Goal features from an image or a video (its last frame), seen from the scoring camera."""
        frames = read_frames(path, self.image_size, self.frame_fit)
        return self.embed_frames(frames[-1:], spatial=spatial)[0]

    @torch.inference_mode()
    def score_chunks(
        self, chunks: Iterable[np.ndarray], goal: torch.Tensor | None = None, batch_size: int = SCORE_BATCH
    ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]]:
        """Stream (mu, sigma, success_prob, epistemic) for chunks of (N, S, S, 3) uint8 frames at the model's
        size; success_prob is None unless the head has a success detector (`predict_success`), epistemic None
        unless it is an ensemble. The first frame of the first chunk is the initial frame that progress is
        measured from."""
        predict_success = getattr(self.head, "predict_success", None)
        with_epistemic = getattr(self.head, "predict_with_epistemic", None)
        initial = None
        gap = self.motion_gap
        before = self.context - 1  # a temporal head's window: the K-1 frames before each frame
        history: torch.Tensor | None = None  # features of the last `gap` (or K-1) frames before this batch
        seen = 0
        for chunk in chunks:
            for start in range(0, len(chunk), batch_size):
                z = self._embed(frames_to_tensor(chunk[start : start + batch_size], self.device))  # (B, D)
                if initial is None:
                    initial = z[0]
                previous = None
                if gap > 0:  # z of frame max(t - gap, 0) for every frame t of the batch
                    past = z[:0] if history is None else history
                    full = torch.cat([past, z])  # (P + B, D): frames seen - P .. seen + B - 1
                    t = seen + torch.arange(len(z), device=z.device)
                    idx = (t - gap - (seen - len(past))).clamp(min=0)
                    previous = torch.where((t - gap >= 0)[:, None], full[idx], initial)
                    history = full[-gap:]
                elif before > 0:  # z of frames t-K+1 .. t-1 for every frame t, the initial frame before frame 0
                    past = z[:0] if history is None else history
                    full = torch.cat([past, z])  # (P + B, D): frames seen - P .. seen + B - 1
                    t = seen + torch.arange(len(z), device=z.device)
                    src = t[:, None] + torch.arange(-before, 0, device=z.device)  # (B, K-1) frame indices
                    idx = (src - (seen - len(past))).clamp(min=0)
                    previous = torch.where((src >= 0)[..., None], full[idx], initial)  # (B, K-1, D)
                    history = full[-before:]  # memory stays flat: only K-1 features cross batches
                epistemic = None
                if with_epistemic is not None:
                    mu, sigma, epistemic = with_epistemic(z, initial, goal, previous)
                    epistemic = epistemic.float().cpu().numpy()
                else:
                    mu, sigma = self.head.predict(z, initial, goal, previous)
                prob = None
                if predict_success is not None:
                    prob = predict_success(z, initial, goal, previous).float().cpu().numpy()
                seen += len(z)
                yield mu.float().cpu().numpy(), sigma.float().cpu().numpy(), prob, epistemic

    @property
    def context(self) -> int:
        """Frames a reward reads: K for a temporal head (the frame and its K-1 predecessors), else 1."""
        return int(getattr(self.head.config, "context", 1))

    def _embed(self, frames: torch.Tensor) -> torch.Tensor:
        """head.embed, under bf16 autocast when the model scores in bf16 (the encoder is where the time goes);
        features come back as float32, so the small predict heads run as trained."""
        with autocast(self.device, self.amp_dtype):
            return self.head.embed(frames).float()

    @property
    def has_feature_map(self) -> bool:
        """Whether `embed_frames(..., spatial=True)` works: the head has one encoder with a feature map."""
        return hasattr(getattr(self.head, "encoder", None), "feature_map")

    def _feature_map(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, C*h*w): the encoder's feature map, flattened (encoders that have one)."""
        encoder = getattr(self.head, "encoder", None)
        if not self.has_feature_map:
            name = (self.config.get("encoder") or {}).get("name", "no single encoder")
            raise ConfigError(f"spatial features need an encoder with a feature map (cnn, efficientnet-lite0); this "
                              f"{self.config.get('head')} model has {name}: use its pooled features instead")
        with autocast(self.device, self.amp_dtype):
            return encoder.feature_map(frames).float().flatten(1)  # (B, C, h, w) -> (B, C*h*w)

    @property
    def motion_gap(self) -> int:
        """Frames between the current frame and its motion partner (0: the head reads single frames)."""
        return int(getattr(self.head.config, "motion_gap", 0))

    def score(
        self, video: str | os.PathLike | VideoSource | np.ndarray, goal: torch.Tensor | None = None,
        batch_size: int = SCORE_BATCH,
    ) -> Rewards:
        """Rewards for every frame of a video file / frame folder, or of a uint8 array (T, H, W, 3)."""
        if isinstance(video, np.ndarray):
            frames = _as_rgb_frames(video)
            resized = np.stack([fit_square(f, self.image_size, self.frame_fit) for f in frames])
            chunks: Iterable[np.ndarray] = [resized]
            fps = None
        else:
            chunks = iter_frames(video, self.image_size, chunk=batch_size, fit=self.frame_fit)
            fps = probe(video).fps
        parts = list(self.score_chunks(chunks, goal, batch_size))
        mu = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.float32)
        sigma = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, np.float32)
        prob = None
        if getattr(self.head, "predict_success", None) is not None:
            prob = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.float32)
        epistemic = None
        if getattr(self.head, "predict_with_epistemic", None) is not None:
            epistemic = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.float32)
        return Rewards(mu, sigma, prob, fps, epistemic)

    def describe(self) -> str:
        encoder = self.config.get("encoder") or {}
        members = int(self.config.get("ensemble", 1))
        kind = f"ensemble of {members} {self.config['head']} heads" if members > 1 else f"{self.config['head']} head"
        return f"{kind}, {encoder.get('name', 'no')} encoder, {self.image_size}px frames"


def head_config_dict(head: nn.Module) -> dict[str, Any]:
    return asdict(head.config)


def load(directory: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "auto") -> RewardModel:
    """Load a model folder written by `v2r train` (model.safetensors + config.json). `precision` 'auto' scores
    in bf16 on a CUDA device (the encoder under autocast) and in float32 on CPU; 'fp32' or 'bf16' to choose."""
    return RewardModel.load(directory, device, precision)
