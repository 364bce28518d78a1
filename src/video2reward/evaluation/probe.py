"""`v2r probe`: how much a frozen encoder's features know about task progress, before any reward head.

Features of every frame of DATA/train (the demonstrations) are L2-normalised and two probes are fitted to
each frame's normalised time t/(T-1):
  * kNN: the mean time of the k nearest training frames by cosine similarity;
  * linear: ridge regression  w = (X^T X + alpha I)^-1 X^T y  on the features (plus a bias).
Each probe then predicts the time of every frame of the held-out DATA/test_expert videos, and the probe's
VOC (mean Spearman of prediction vs frame index) says how well time can be read off the features.

Collapse is reported, not hidden: `feature_std` is the mean over dimensions of the std of the normalised
features across frames, times sqrt(D): about 1 for features spread over the sphere, 0 when every frame
maps to the same vector (a collapsed DINO or MoCo run).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.errors import ConfigError
from video2reward.evaluation.metrics import value_order_correlation
from video2reward.video.dataset import Demonstration, load_demonstrations

COLLAPSE_THRESHOLD = 0.1  # feature_std below this: the features are (nearly) one point


@dataclass
class ProbeResult:
    knn_voc: float  # VOC of the kNN time probe on held-out expert videos
    linear_voc: float  # VOC of the ridge time probe
    feature_std: float  # sqrt(D) * mean_d std_n(z_nd / |z_n|): ~1 healthy, 0 collapsed
    collapsed: bool
    train_frames: int
    test_videos: int

    def table(self) -> str:
        rows = [("kNN probe VOC", self.knn_voc), ("linear probe VOC", self.linear_voc),
                ("feature std (x sqrt D)", self.feature_std)]
        lines = [f"{name:<24} {value:7.3f}" for name, value in rows]
        if self.collapsed:
            lines.append(f"COLLAPSED: feature std {self.feature_std:.3f} < {COLLAPSE_THRESHOLD}: every frame maps "
                         "to nearly the same vector")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


@torch.no_grad()
def encode_frames(encoder: nn.Module, demos: list[Demonstration], batch_size: int = 256) -> list[torch.Tensor]:
    """L2-normalised features (T, D) of every kept frame of every demonstration."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for demo in demos:
        feats = [encoder(chunk.to(device).float().div_(255.0)) for chunk in demo.frames.split(batch_size)]
        out.append(F.normalize(torch.cat(feats).float().cpu(), dim=-1))
    return out


def feature_std(features: torch.Tensor) -> float:
    """sqrt(D) * mean over dims of the std over rows of (N, D) L2-normalised features."""
    if features.shape[0] < 2:
        return float("nan")
    return float(features.std(dim=0).mean() * math.sqrt(features.shape[1]))


def knn_predict(train_x: torch.Tensor, train_y: torch.Tensor, x: torch.Tensor, k: int = 5) -> torch.Tensor:
    """Mean target of the k most cosine-similar training rows (rows are unit vectors)."""
    sims = x @ train_x.T  # (M, N)
    idx = sims.topk(min(k, train_x.shape[0]), dim=1).indices  # (M, k)
    return train_y[idx].mean(dim=1)


def ridge_fit(x: torch.Tensor, y: torch.Tensor, alpha: float = 1e-2) -> torch.Tensor:
    """w (D + 1,) minimising |[X 1] w - y|^2 + alpha |w|^2:  w = (A^T A + alpha I)^-1 A^T y."""
    a = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1).double()  # (N, D + 1)
    gram = a.T @ a + alpha * torch.eye(a.shape[1], dtype=a.dtype)
    return torch.linalg.solve(gram, a.T @ y.double()).float()


def ridge_predict(w: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x, torch.ones(x.shape[0], 1)], dim=1) @ w


def probe_encoder(
    encoder: nn.Module, data_dir: str | os.PathLike, k: int = 5, alpha: float = 1e-2, frame_fit: str = "pad",
    max_frames_per_video: int = 400, progress: bool = False,
) -> ProbeResult:
    """Fit time probes on DATA/train features, measure them on DATA/test_expert (see the module docstring)."""
    data = Path(data_dir)
    for split in ("train", "test_expert"):
        if not (data / split).is_dir():
            raise ConfigError(f"{data / split}: not a folder; `v2r probe` needs DATA/train (videos to fit the probes "
                              f"on) and DATA/test_expert (held-out expert videos), as `v2r demo-data` writes")
    size = int(encoder.config.image_size)
    train, _ = load_demonstrations([data / "train"], size, max_frames_per_video, progress=progress, fit=frame_fit)
    test, _ = load_demonstrations([data / "test_expert"], size, max_frames_per_video, progress=progress,
                                  fit=frame_fit)
    train_feats, test_feats = encode_frames(encoder, train), encode_frames(encoder, test)
    x = torch.cat(train_feats)  # (N, D)
    y = torch.cat([d.progress for d in train]).float()  # (N,)
    w = ridge_fit(x, y, alpha)
    knn = [knn_predict(x, y, f, k).numpy() for f in test_feats]
    linear = [ridge_predict(w, f).numpy() for f in test_feats]
    std = feature_std(torch.cat([x, *test_feats]))
    return ProbeResult(
        knn_voc=float(value_order_correlation(knn)), linear_voc=float(value_order_correlation(linear)),
        feature_std=std, collapsed=bool(std < COLLAPSE_THRESHOLD), train_frames=int(x.shape[0]),
        test_videos=len(test),
    )
