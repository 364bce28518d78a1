"""`v2r distill`: a small student trained on a teacher model's soft outputs, the third stage of SimCLRv2 (Chen et
al. 2020, "Big Self-Supervised Models are Strong Semi-Supervised Learners": distil the big fine-tuned network
into a smaller one on unlabelled data, with the teacher's predictions as the only targets).

The student keeps the teacher's head type and head options on a small CNN (`--student tiny`, CNN_PRESETS in
encoders/cnn.py) and is saved as an ordinary model folder, so `v2r score`, `v2r eval` and `video2reward.load`
use it unchanged. Its inputs are the ones the teacher's scoring uses: frames of the teacher's training videos
(clean, and augmented ones, which the teacher labels too), each with its video's first frame as the initial
frame, its motion partner `motion_gap` frames earlier, and the goal. The teacher reads its stored goal; the
student's goal is, as after `v2r train`, the mean of its own embedding of the demonstrations' last frames,
recomputed every step (with gradient) and stored at the end. Loss per head:

    progress, temporal KL(N(mu_t, sigma_t) || N(mu_s, sigma_s))       the teacher's whole Normal, not just mu
                       (temporal: each frame with its K-1 predecessors, the window scoring reads)
    temporal-distance  T^2 KL(softmax(l_t / T) || softmax(l_s / T))   over the gap bins of (first frame, frame)
    rank, success      T^2 KL(Bern(sigmoid(l_t / T)) || Bern(sigmoid(l_s / T)))   on the reward's logit
    goal-distance      (mu_s - mu_t)^2                                 the normalised distance to the goal

rank's Platt scaling and goal-distance's [0, 1] map (d_start, d_end) and both heads' constant sigma are copied
from the teacher, so the student learns the teacher's raw score / distance on the same scale. goal-distance
matches the distance to the stored goal only: a student's distances to another `--goal` may differ more.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.precision import autocast_dtype
from video2reward.encoders import encoder_config
from video2reward.encoders.cnn import CNN_PRESETS
from video2reward.errors import ConfigError
from video2reward.evaluation.metrics import spearman, value_order_correlation
from video2reward.inference.card import data_facts, provenance
from video2reward.inference.model import RewardModel
from video2reward.rewards.ensemble import COMBINED_HEADS
from video2reward.rewards.progress import normal_kl
from video2reward.rewards.registry import HEAD_NAMES, build_head, distill_kind
from video2reward.rewards.triplets import kept_earlier_frames
from video2reward.training.config import DistillConfig, TrainConfig, resolve_device
from video2reward.training.loop import CHECKPOINT_DIR, check_writable, fit_resumable
from video2reward.training.train import is_learned, training_end_vs_start_auroc
from video2reward.video.augment import FrameAugment
from video2reward.video.dataset import (
    Demonstration,
    even_subsample,
    load_demonstrations,
)
from video2reward.video.lerobot import DatasetSelection

COPIED_BUFFERS = ("scale", "shift", "residual_std", "d_start", "d_end")  # calibration taken from the teacher
GOAL_FRAMES_PER_STEP = 64  # at most this many demonstrations' last frames form the student's goal per step


@dataclass
class DistillBatch:
    frames: torch.Tensor  # (N, 3, S, S) float in [0, 1] at the student's size
    initial: torch.Tensor  # (K,) long: the video's first frame, for each current frame
    current: torch.Tensor  # (K,) long
    previous: torch.Tensor  # (K,) long: the motion partner (= current without a motion gap); a temporal
    # teacher: (K, C-1) long, each frame's C-1 predecessors (its window of C frames), oldest first
    goal_frames: torch.Tensor  # (G, 3, S, S) float: demonstrations' last frames (the student's goal)
    target: torch.Tensor  # (K,) teacher mu (progress, goal-distance) or logit (rank, success); (K, bins) logits
    target_sigma: torch.Tensor = field(default_factory=lambda: torch.zeros(0))  # (K,) progress only

    def to(self, device: torch.device) -> "DistillBatch":
        return DistillBatch(*(getattr(self, f).to(device) for f in self.__dataclass_fields__))


def teacher_targets(head: nn.Module, z: torch.Tensor, initial: torch.Tensor, current: torch.Tensor,
                    previous: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's outputs on features z, (target, target_sigma) as DistillBatch holds them: its head's
    `distill_output` (a Normal (mu, sigma), or one tensor: a value, a logit or bin logits) with its stored goal."""
    out = head.distill_output(z[current], z[initial], None, z[previous])
    return out if isinstance(out, tuple) else (out, torch.zeros(0))


class DistillSampler:
    """Per step: `videos_per_batch` random videos, from each its first frame, `frames_per_video` random frames and
    their motion partners, augmented for a fraction of the videos, with the teacher's outputs on them."""

    def __init__(self, teacher: RewardModel, videos: list[Demonstration], goal_frames: torch.Tensor,
                 config: DistillConfig, student_size: int):
        self.teacher = teacher
        self.videos, self.goal_frames, self.config = videos, goal_frames, config
        self.videos_per_batch = max(1, config.batch_size // config.frames_per_video)
        self.gap, self.size = teacher.motion_gap, student_size
        self.before = teacher.context - 1  # a temporal teacher reads each frame with its K-1 predecessors
        self.augment = FrameAugment()

    def to_student_size(self, frames: torch.Tensor) -> torch.Tensor:
        if frames.shape[-1] == self.size:
            return frames
        return F.interpolate(frames, size=(self.size, self.size), mode="area")

    def sample(self, generator: torch.Generator) -> DistillBatch:
        frames, initial, current, previous, offset = [], [], [], [], 0
        n = self.config.frames_per_video
        for v in torch.randint(len(self.videos), (self.videos_per_batch,), generator=generator).tolist():
            video = self.videos[v]
            cur = torch.randint(video.frames.shape[0], (n,), generator=generator)
            idx = [torch.zeros(1, dtype=torch.long), cur]
            earlier = kept_earlier_frames(video.times, cur, self.gap, self.before + 1)  # as scoring reads them
            if earlier is not None:  # (n,) motion partners, or (n, K-1) frames t-K+1 .. t-1, oldest first
                idx.append(earlier.flatten())
            chunk = video.frames[torch.cat(idx)].float().div_(255.0)  # (1 + n [+ n], 3, S, S)
            if torch.rand((), generator=generator) < self.config.augment_fraction:
                chunk = self.augment(chunk, generator)
            frames.append(chunk)
            initial.append(torch.full((n,), offset))
            current.append(offset + 1 + torch.arange(n))
            if self.before > 0:
                previous.append(offset + 1 + n + torch.arange(n * self.before).view(n, self.before))
            else:
                previous.append(offset + 1 + (n if self.gap > 0 else 0) + torch.arange(n))
            offset += chunk.shape[0]
        x, init, cur, prev = torch.cat(frames), torch.cat(initial), torch.cat(current), torch.cat(previous)
        with torch.no_grad():
            z = self.teacher.embed(x.to(self.teacher.device))  # as the scorer embeds
            target, sigma = teacher_targets(self.teacher.head, z, init, cur, prev)
        goals = self.goal_frames
        if len(goals) > GOAL_FRAMES_PER_STEP:
            goals = goals[torch.randperm(len(goals), generator=generator)[:GOAL_FRAMES_PER_STEP]]
        return DistillBatch(self.to_student_size(x), init, cur, prev, self.to_student_size(goals.float().div(255.0)),
                            target.cpu(), sigma.cpu())


def binary_kl_logits(teacher: torch.Tensor, student: torch.Tensor) -> torch.Tensor:
    """KL(Bern(sigmoid(t)) || Bern(sigmoid(s))) elementwise = BCE(s, p) - BCE(t, p) with p = sigmoid(t)."""
    p = torch.sigmoid(teacher)
    bce = F.binary_cross_entropy_with_logits
    return bce(student, p, reduction="none") - bce(teacher, p, reduction="none")


class DistillLoss(nn.Module):
    """The student head and its distillation loss: forward(DistillBatch) -> (loss, metrics) for train_loop."""

    def __init__(self, student: nn.Module, kind: str, temperature: float):  # kind: rewards/base.py DISTILL_KINDS
        super().__init__()
        self.student, self.kind, self.t = student, kind, float(temperature)

    def forward(self, batch: DistillBatch) -> tuple[torch.Tensor, dict[str, float]]:
        head, t = self.student, self.t
        z = head.embed(batch.frames)
        cur, init, prev = z[batch.current], z[batch.initial], z[batch.previous]
        goal = None  # the heads that read a goal see what set_goal will store
        if self.kind in ("normal", "value"):
            goal = head.embed(batch.goal_frames).mean(dim=0)
        out = head.distill_output(cur, init, goal, prev)
        if self.kind == "normal":  # KL(N(mu_t, sigma_t) || N(mu_s, sigma_s))
            mu, sigma = out
            loss = normal_kl(batch.target, batch.target_sigma, mu, sigma).mean()
            return loss, {"loss": loss.item(), "mae": (mu - batch.target).abs().mean().item()}
        if self.kind == "value":  # the reward itself, squared error
            loss = (out - batch.target).pow(2).mean()
            return loss, {"loss": loss.item(), "mae": (out - batch.target).abs().mean().item()}
        if self.kind == "bins":  # T^2 KL(softmax(l_t / T) || softmax(l_s / T))
            log_q = F.log_softmax(out / t, dim=-1)
            loss = t * t * F.kl_div(log_q, F.log_softmax(batch.target / t, dim=-1), log_target=True,
                                    reduction="batchmean")
            with torch.no_grad():
                gap = (out.softmax(-1) - batch.target.softmax(-1)) @ head.centres
            return loss, {"loss": loss.item(), "mae": gap.abs().mean().item()}
        loss = t * t * binary_kl_logits(batch.target / t, out / t).mean()  # "logit": T^2 KL of Bernoullis
        with torch.no_grad():
            mae = (torch.sigmoid(out) - torch.sigmoid(batch.target)).abs().mean().item()
        return loss, {"loss": loss.item(), "mae": mae}


@dataclass
class DistillResult:
    model: RewardModel
    seconds: float
    num_videos: int
    num_frames: int
    metrics: dict[str, float]
    agreement: dict[str, float]


def _recorded(teacher: RewardModel, key: str) -> list[str]:
    return list((teacher.config.get("training") or {}).get(key) or [])


def distill_videos(teacher: RewardModel, config: DistillConfig) -> tuple[list[str], list[str]]:
    """(demonstration paths, failed-video paths) to distill on: the options, else what the teacher records."""
    if config.videos:
        return [config.videos], [config.negatives] if config.negatives else []
    recorded = _recorded(teacher, "videos")
    missing = [v for v in recorded if not Path(v).exists()]
    if not recorded or missing:
        where = (f"{len(missing)} of its {len(recorded)} training videos (e.g. {missing[0]}) are not found from "
                 f"here" if recorded else "its config.json records no training videos")
        raise ConfigError(f"distill needs the teacher's training videos and {where}: pass --videos DIR")
    negatives = [config.negatives] if config.negatives else [v for v in _recorded(teacher, "negatives")
                                                             if Path(v).exists()]
    return recorded, negatives


def student_config(teacher: RewardModel, config: DistillConfig) -> dict[str, Any]:
    """The student's model config: the teacher's head and head options on the preset encoder."""
    size = config.image_size or teacher.image_size
    if size < 16:
        raise ConfigError(f"--image-size {size}: use at least 16 pixels")
    encoder = asdict(encoder_config("cnn", size, **CNN_PRESETS[config.student]))
    encoder["channels"] = list(encoder["channels"])  # as it comes back from JSON
    head, head_config = teacher.config["head"], teacher.config["head_config"]
    if head in COMBINED_HEADS:  # one progress head learns the members' mean Normal (progress is member 0)
        head, head_config = teacher.config["members"][0]["head"], teacher.config["members"][0]["head_config"]
    return {"head": head, "image_size": size, "frame_fit": teacher.frame_fit,
            "encoder": {"name": "cnn", "config": encoder}, "head_config": copy.deepcopy(head_config)}


def agreement(teacher: RewardModel, student: RewardModel, videos: list[Demonstration], max_videos: int = 8
              ) -> dict[str, float]:
    """Spearman of student vs teacher rewards per video (mean) and both models' VOC, on up to `max_videos`."""
    frames = [videos[i].frames.permute(0, 2, 3, 1).numpy() for i in even_subsample(len(videos), max_videos)]
    t_mu = [teacher.score(f).mu for f in frames]
    s_mu = [student.score(f).mu for f in frames]
    rho = [spearman(a, b) for a, b in zip(t_mu, s_mu)]
    return {"teacher_spearman": round(float(np.nanmean(rho)), 4), "voc": round(value_order_correlation(s_mu), 4),
            "teacher_voc": round(value_order_correlation(t_mu), 4)}


def distill(model_dir: str | os.PathLike, out: str | os.PathLike, config: DistillConfig | None = None,
            resume: bool = False, skip_bad: bool = False, progress: bool = True) -> DistillResult:
    """Distil the model in `model_dir` into a `config.student` student; save it to `out` as a model folder."""
    config = config or DistillConfig()
    out = Path(out)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    device = resolve_device(config.device)
    # the teacher's targets at training precision: float32 on a CPU, where `auto` would score in bf16
    teacher = RewardModel.load(model_dir, device, "auto" if autocast_dtype("auto", device) else "fp32")
    kind = teacher.config["head"]
    if kind not in HEAD_NAMES or distill_kind(kind) is None:
        why = ("it has no encoder to distil (pixel-ridge is already tiny)" if kind not in HEAD_NAMES or not is_learned(kind)
               else "its reward is not one a student can match (a distilled student matches a progress Normal, a "
                    "value, a logit or bins)")
        raise ConfigError(f"{model_dir}: a {kind!r} model cannot be distilled: {why}")
    if config.student not in CNN_PRESETS:
        raise ConfigError(f"--student {config.student}: unknown (known: {', '.join(CNN_PRESETS)})")
    if config.temperature <= 0 or not 0 <= config.augment_fraction <= 1 or config.frames_per_video < 1:
        raise ConfigError("need --temperature > 0, 0 <= --augment-fraction <= 1 and --frames-per-video >= 1")
    check_writable(out)
    t0 = time.perf_counter()
    demo_paths, negative_paths = distill_videos(teacher, config)
    train = {**asdict(TrainConfig()), **((teacher.config.get("training") or {}).get("config") or {})}
    max_frames = config.max_frames_per_video or int(train["max_frames_per_video"])
    load = dict(size=teacher.image_size, max_frames=max_frames, skip_bad=skip_bad, progress=progress,
                fit=teacher.frame_fit)
    select = DatasetSelection(train.get("camera_key", ""), train.get("episodes", ""), train.get("task", ""))
    demos, skipped = load_demonstrations(demo_paths, **load, select=replace(select, outcome="successful"))
    negatives, skipped_neg = (load_demonstrations(negative_paths, **load, select=replace(select, outcome="failed"))
                              if negative_paths else ([], []))
    torch.manual_seed(config.seed)
    model_config = student_config(teacher, config)
    head = build_head(model_config)
    for name in COPIED_BUFFERS:
        if hasattr(head, name):
            getattr(head, name).copy_(getattr(teacher.head, name))
    head.to(device)
    goal_frames = torch.stack([d.frames[-1] for d in demos])  # (V, 3, S, S) uint8
    sampler = DistillSampler(teacher, [*demos, *negatives], goal_frames, config, model_config["image_size"])
    module = DistillLoss(head, distill_kind(model_config["head"]), config.temperature)
    run = {**asdict(config), "teacher_weights_sha256": teacher.config.get("weights_sha256")}

    def sample(gen: torch.Generator) -> DistillBatch:
        return sampler.sample(gen).to(device)

    metrics = fit_resumable(module, sample, steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                            seed=config.seed, warmup=config.warmup_steps, out=out,
                            checkpoint_every=config.checkpoint_every, run_config=run, resume=resume,
                            progress=progress, desc=f"distilling {kind}")
    head.eval()
    if hasattr(head, "set_goal"):
        head.set_goal(sampler.to_student_size(goal_frames.float().div(255.0)).to(device))
    seconds = time.perf_counter() - t0
    student = RewardModel(head.cpu(), model_config, precision="fp32")
    teacher = RewardModel(teacher.head.cpu(), teacher.config, precision="fp32")  # the agreement of the float32 models
    agree = agreement(teacher, student, demos)
    model_config["training"] = {
        "config": train, "distill": asdict(config), "distilled_from": str(model_dir),
        "teacher": teacher.describe(), "teacher_weights_sha256": teacher.config.get("weights_sha256"),
        "videos": [d.name for d in demos], **({"negatives": [d.name for d in negatives]} if negatives else {}),
        "num_frames": int(sum(d.num_frames for d in [*demos, *negatives])), "skipped": skipped + skipped_neg,
        "seconds": round(seconds, 2), "final_metrics": metrics, **agree,
        "train_end_vs_start_auroc": round(training_end_vs_start_auroc(student, demos), 4),
        "data": data_facts(demos, demo_paths, select.camera_key),
        **provenance("video2reward.training.distill.distill", verb="distilled"),
    }
    student.save(out)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return DistillResult(student, seconds, len(demos) + len(negatives), model_config["training"]["num_frames"],
                         metrics, agree)
