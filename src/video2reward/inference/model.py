"""RewardModel: a trained reward head behind one small API: `load(dir)`, `score(video or frames)`, `save(dir)`.

The model maps frames to features and features to rewards; `video/` maps files to frames and the streaming
`Scorer` (scorer.py) keeps each frame's context. `score` joins the three: it streams a video in chunks, so
memory stays flat in video length, and returns exactly one reward per decoded frame, in order.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from video2reward.core.files import load_model_dir, save_model_dir
from video2reward.core.precision import autocast, scoring_dtype
from video2reward.errors import ConfigError, ModelFileError
from video2reward.inference.card import write_model_card
from video2reward.inference.parallel import embedded
from video2reward.inference.scorer import SCORE_BATCH, Rewards, Scorer, frames_to_tensor
from video2reward.rewards.registry import build_head
from video2reward.video.frame_fit import fit_frames
from video2reward.video.io import VideoSource, iter_frames, probe, read_frames


class RewardModel:
    """A trained reward head with its config. Use `video2reward.load(dir)` to get one."""

    def __init__(self, head: nn.Module, config: dict[str, Any], device: str | torch.device = "cpu",
                 precision: str = "auto"):
        self.device = torch.device(device)
        self.amp_dtype = scoring_dtype(precision, self.device)  # bf16 forward passes of the encoder, or None
        self._low_precision: tuple[tuple, nn.Module] | None = None  # (weights' versions, bf16 copy): CPU bf16
        self.head = head.to(self.device).eval()
        self.config = config
        self.image_size: int = int(config["image_size"])
        self.frame_fit: str = config.get("frame_fit", "pad")  # how frames become square, as in training
        self.path: Path | None = None  # the folder it was loaded from or saved to: names it in plots and reports

    def __repr__(self) -> str:
        return f"RewardModel({self.describe()}, device={self.device.type})"

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
        model = cls(head, config, device, precision)
        model.path = Path(directory)
        return model

    def save(self, directory: str | os.PathLike) -> None:
        """model.safetensors, then config.json (with the weights' hash), then the model card README.md."""
        saved = save_model_dir(Path(directory), self.head.state_dict(), self.config)
        write_model_card(Path(directory), saved)
        self.path = Path(directory)

    # ---- what the head reads -----------------------------------------------------------------------
    @property
    def motion_gap(self) -> int:
        """Frames between the current frame and its motion partner (0: the head reads single frames)."""
        return int(getattr(self.head.config, "motion_gap", 0))

    @property
    def context(self) -> int:
        """Frames a reward reads: K for a temporal head (the frame and its K-1 predecessors), else 1."""
        return int(getattr(self.head.config, "context", 1))

    @property
    def has_success(self) -> bool:
        """The head has a success detector (`predict_success`): scoring gives success_prob per frame."""
        return getattr(self.head, "predict_success", None) is not None

    @property
    def has_epistemic(self) -> bool:
        """The head is an ensemble (`predict_with_epistemic`): scoring gives the members' disagreement."""
        return getattr(self.head, "predict_with_epistemic", None) is not None

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D): head.embed, in bf16 when the model scores in bf16 (the encoder
        is where the time goes); features come back as float32, so the small predict heads run as trained."""
        head, frames = self._encoding(frames)
        with autocast(self.device, self.amp_dtype if head is self.head else None):
            return head.embed(frames).float()

    def _encoding(self, frames: torch.Tensor) -> tuple[nn.Module, torch.Tensor]:
        """The head whose encoder runs, and its input: on a CPU scoring in bf16, a bf16 copy of the head and bf16
        frames (autocast on CPU casts every weight at every call: slower than float32); else the head itself and
        the frames, under autocast. The copy is made again whenever the head's weights change (`v2r rl --refine`
        updates them in place; every in-place write bumps a tensor's version)."""
        if self.amp_dtype is None or self.device.type != "cpu":
            return self.head, frames
        versions = tuple((t.data_ptr(), t._version) for t in (*self.head.parameters(), *self.head.buffers()))
        if self._low_precision is None or self._low_precision[0] != versions:
            with torch.no_grad():
                low = copy.deepcopy(self.head).to(self.amp_dtype).eval()
            self._low_precision = (versions, low)
        return self._low_precision[1], frames.to(self.amp_dtype)

    @property
    def has_feature_map(self) -> bool:
        """Whether `embed_frames(..., spatial=True)` works: the head has one encoder with a feature map."""
        return hasattr(getattr(self.head, "encoder", None), "feature_map")

    def feature_map(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, C*h*w): the encoder's feature map, flattened (encoders that have one)."""
        if not self.has_feature_map:
            name = (self.config.get("encoder") or {}).get("name", "no single encoder")
            raise ConfigError(f"spatial features need an encoder with a feature map (cnn, efficientnet-lite0); this "
                              f"{self.config.get('head')} model has {name}: use its pooled features instead")
        head, frames = self._encoding(frames)
        with autocast(self.device, self.amp_dtype if head is self.head else None):
            return head.encoder.feature_map(frames).float().flatten(1)  # (B, C, h, w) -> (B, C*h*w)

    @torch.inference_mode()
    def embed_frames(self, frames: np.ndarray, batch_size: int = SCORE_BATCH, spatial: bool = False) -> torch.Tensor:
        """(T, S, S, 3) uint8 frames at the model's size -> (T, D) features: the head's input, or with `spatial`
        the encoder's last feature map before global pooling, flattened (T, C*h*w): where things are in the
        picture, which pooling gives up (used by the relative reading, inference/relative.py)."""
        embed = self.feature_map if spatial else self.embed
        out = [embed(frames_to_tensor(frames[i : i + batch_size], self.device))
               for i in range(0, len(frames), batch_size)]
        return torch.cat(out)

    def prepare(self) -> None:
        """Make what the first embedding would make (the bf16 copy of a CPU model scoring in bf16, per-size
        caches) now, before several threads embed at once (inference/parallel.py)."""
        self.embed_frames(np.zeros((1, self.image_size, self.image_size, 3), np.uint8))

    def goal_from_image(self, path: str | os.PathLike, spatial: bool = False) -> torch.Tensor:
        """Goal features from an image or a video (its last frame), seen from the scoring camera."""
        frames = read_frames(path, self.image_size, self.frame_fit)
        return self.embed_frames(frames[-1:], spatial=spatial)[0]

    # ---- scoring -----------------------------------------------------------------------------------
    def scorer(self, goal: torch.Tensor | None = None, batch_size: int = SCORE_BATCH,
               keep_frames: bool = False) -> Scorer:
        """A streaming `Scorer` of this model (frames in order, one or N streams)."""
        return Scorer(self, goal, batch_size, keep_frames)

    def score(
        self, video: str | os.PathLike | VideoSource | np.ndarray, goal: torch.Tensor | None = None,
        batch_size: int = SCORE_BATCH,
    ) -> Rewards:
        """Rewards for every frame of a video file / frame folder, or of a uint8 array (T, H, W, 3)."""
        scorer = self.scorer(goal, batch_size)
        if isinstance(video, np.ndarray):
            return scorer.score(fit_frames(video, self.image_size, self.frame_fit))
        chunks = iter_frames(video, self.image_size, chunk=batch_size, fit=self.frame_fit)
        parts = [scorer.score(chunk, z) for chunk, z in embedded(self, chunks, lambda chunk: chunk)]
        return Rewards.join(parts, probe(video).fps, success=self.has_success, epistemic=self.has_epistemic)

    def describe(self) -> str:
        encoder = self.config.get("encoder") or {}
        members = int(self.config.get("ensemble", 1))
        kind = f"ensemble of {members} {self.config['head']} heads" if members > 1 else f"{self.config['head']} head"
        return f"{kind}, {encoder.get('name', 'no')} encoder, {self.image_size}px frames"


def load(directory: str | os.PathLike, device: str | torch.device = "cpu", precision: str = "auto") -> RewardModel:
    """Load a model folder written by `v2r train` (model.safetensors + config.json). `precision` 'auto' scores
    in bf16 on a CUDA device (the encoder under autocast) and in float32 on CPU; 'fp32' or 'bf16' to choose."""
    return RewardModel.load(directory, device, precision)
