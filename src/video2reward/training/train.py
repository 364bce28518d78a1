"""`v2r train`: demonstrations -> a reward head on an encoder -> a model folder.

The optimisation itself is `training_loop.train_loop` (schedule, NaN check, checkpoints, resume), shared
with `v2r pretrain`; this module picks the head, its sampler and its encoder (fresh or pretrained, frozen
or not), runs the loop, stores the goal, checks that the result learned something, and saves it.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from video2reward.core.files import load_tensors, read_render_facts, save_tensors
from video2reward.core.precision import autocast_dtype
from video2reward.core.progress import stage, write
from video2reward.encoders import ENCODERS, build_encoder, has_imagenet_weights
from video2reward.encoders.pretrained import ENCODER_WEIGHTS, load_encoder
from video2reward.errors import ConfigError
from video2reward.evaluation.metrics import auroc, value_order_correlation
from video2reward.inference.card import data_facts, provenance
from video2reward.inference.model import RewardModel
from video2reward.rewards.ensemble import COMBINED_HEADS, HeadEnsemble
from video2reward.rewards.registry import (
    HEAD_NAMES,
    HEADS,
    head_config_dict,
    learns_from_negatives,
    member_kinds,
)
from video2reward.training import distributed
from video2reward.training.config import PretrainConfig, TrainConfig, resolve_device
from video2reward.training.heads import (
    check_negatives,
    finish_head,
    load_negatives,
    make_head,
    make_sampler,
    options_of,
)
from video2reward.training.loop import (
    CHECKPOINT_DIR,
    TrainingError,
    check_writable,
    fit_resumable,
    has_checkpoint,
)
from video2reward.training.pretrain import pretrain_encoder
from video2reward.training.synthetic_negatives import parse_kinds, synthesize_negatives
from video2reward.video.augment import FrameAugment
from video2reward.video.dataset import Demonstration, load_demonstrations
from video2reward.video.view_augment import ViewAugment


@dataclass
class TrainResult:
    model: RewardModel
    seconds: float
    num_videos: int
    num_frames: int
    skipped: list[tuple[str, str]]
    metrics: dict[str, float]
    warnings: list[str] = field(default_factory=list)


def training_video_voc(model: RewardModel, demos: Sequence[Demonstration], max_videos: int = 8) -> float:
    """VOC of the trained model on (up to `max_videos` of) its own demonstrations: near 1 when it learned
    progress, near 0 when it collapsed to one value for every frame."""
    videos = [d.frames.permute(0, 2, 3, 1).numpy() for d in demos[:max_videos]]  # (T, S, S, 3) uint8
    return value_order_correlation([model.score(v).mu for v in videos])


def training_last_frame_success(model: RewardModel, demos: Sequence[Demonstration], max_videos: int = 8) -> float:
    """Mean success probability of (up to `max_videos` of) the demonstrations' last frames: near 1 when a
    success detector learned what the task done looks like."""
    lasts = [d.frames[-1:].permute(0, 2, 3, 1).numpy() for d in demos[:max_videos]]  # (1, S, S, 3) uint8
    return float(np.mean([model.score(frame).success_prob[0] for frame in lasts]))


def training_end_vs_start_auroc(model: RewardModel, demos: Sequence[Demonstration], max_videos: int = 8) -> float:
    """AUROC of the rewards of the last 10% of frames against the first 10% (of up to `max_videos`
    demonstrations): near 1 when the reward tells a finished task from its start on the videos it learned from."""
    ends, starts = [], []
    for demo in demos[:max_videos]:
        mu = model.score(demo.frames.permute(0, 2, 3, 1).numpy()).mu
        k = max(1, len(mu) // 10)
        ends.append(mu[-k:])
        starts.append(mu[:k])
    return auroc(np.concatenate(ends), np.concatenate(starts))


def _frames_float(frames: torch.Tensor) -> torch.Tensor:
    return frames.float().div_(255.0)


def _fit_pixel_ridge(demos: Sequence[Demonstration], config: TrainConfig) -> tuple[nn.Module, dict[str, float]]:
    head = make_head(config, None)  # closed form: no encoder, no sampler
    frames = torch.cat([_frames_float(d.frames) for d in demos])
    targets = torch.cat([d.progress for d in demos])
    return head, head.fit(frames, targets)


def is_learned(kind: str) -> bool:
    """`--head kind` trains heads on a frame encoder (every one but the pixel-ridge floor)."""
    return kind in HEAD_NAMES and all(HEADS[k].encoder for k in member_kinds(kind))


def is_pretrained(encoder: str) -> bool:
    """`--encoder` names a weights file or folder rather than a built-in architecture."""
    return encoder not in ENCODERS


def _make_encoder(config: TrainConfig) -> nn.Module:
    """A fresh `cnn`/`vit`/`efficientnet-lite0` (ImageNet weights), or the pretrained encoder `config.encoder`
    (frozen with `config.freeze`)."""
    if not is_pretrained(config.encoder):
        if config.freeze and not has_imagenet_weights(config.encoder):
            raise ConfigError(f"--freeze needs a pretrained --encoder (a folder or weights file, or "
                              f"efficientnet-lite0) or --pretrain, not {config.encoder!r} with --pretrain none: a "
                              f"frozen random encoder learns nothing")
        encoder = build_encoder(config.encoder, config.image_size)
        if config.freeze:  # the encoder keeps its BatchNorm layers in eval mode once every weight is frozen
            encoder.requires_grad_(False)
        return encoder
    encoder, _ = load_encoder(config.encoder)
    if config.freeze:
        encoder.requires_grad_(False)  # the head's optimizer skips it; no backward through it
    return encoder


def self_pretrains(config: TrainConfig) -> bool:
    """`config.pretrain` applies: a learned head on a fresh built-in encoder without ImageNet weights."""
    return (is_learned(config.head) and config.pretrain != "none" and not is_pretrained(config.encoder)
            and not has_imagenet_weights(config.encoder))


PRETRAIN = "pretrain"  # OUT/pretrain: --pretrain's encoder (resumable; removed once the model is saved)
MEMBERS = "members"  # OUT/members/k: an ensemble member's checkpoint, then its finished weights
MEMBER_DONE = "done.safetensors"


def _pretrain_fresh_encoder(demos: Sequence[Demonstration], config: TrainConfig, out: Path, resume: bool,
                            progress: bool) -> tuple[nn.Module, dict[str, Any]]:
    """`v2r pretrain --method config.pretrain` on the (already decoded) training videos, into OUT/pretrain
    (resumable; removed once the model is saved). Returns the encoder (frozen with `config.freeze`) and what the
    model file records."""
    pre_out = out / PRETRAIN
    pre_config = replace(PretrainConfig(), method=config.pretrain, encoder=config.encoder, image_size=config.image_size,
                         frame_fit=config.frame_fit, steps=config.pretrain_steps, seed=config.seed,
                         max_frames_per_video=config.max_frames_per_video, device=config.device,
                         threads=config.threads, precision=config.precision,
                         view_augment=config.augment and config.view_augment)
    t0 = time.perf_counter()
    if resume and (pre_out / ENCODER_WEIGHTS).exists():  # pretraining had finished before the interruption
        encoder, _ = load_encoder(pre_out)
    else:
        encoder = pretrain_encoder([], pre_out, pre_config, resume=resume and has_checkpoint(pre_out),
                                   progress=progress, demos=demos).encoder
    if config.freeze:
        encoder.requires_grad_(False)
    info = {"method": config.pretrain, "steps": config.pretrain_steps, "seconds": round(time.perf_counter() - t0, 2)}
    return encoder, info


def encoder_name(encoder: nn.Module) -> str:
    """The registry name ('cnn', 'vit') of an encoder instance, which is what a model file records."""
    for name, (_, cls) in ENCODERS.items():
        if type(encoder) is cls:
            return name
    raise ConfigError(f"encoder of type {type(encoder).__name__} is not a registered architecture")


def _batches(sampler, config: TrainConfig, device: torch.device) -> Callable[[torch.Generator], Any]:
    """sample(generator): the sampler's next batch with its frames as float in [0, 1], augmented, on device."""
    augment = (ViewAugment() if config.view_augment else FrameAugment()) if config.augment else None

    def sample(generator: torch.Generator):
        batch = sampler.sample(generator)
        frames = _frames_float(batch.frames)  # (N, 3, S, S)
        if augment is not None:
            frames = augment(frames, generator)
        batch.frames = frames
        return batch.to(device)

    return sample


def _optimize(head: nn.Module, sample: Callable[[torch.Generator], Any], config: TrainConfig, out: Path,
              resume: bool, progress: bool) -> dict[str, float]:
    """AdamW on the head's trainable parameters through `train_loop`, with resumable checkpoints in out/."""
    return fit_resumable(head, sample, steps=config.steps, lr=config.lr, weight_decay=config.weight_decay,
                         seed=config.seed, warmup=config.warmup_steps, out=out,
                         checkpoint_every=config.checkpoint_every, run_config=asdict(config), resume=resume,
                         progress=progress, desc=f"training {config.head}",
                         amp_dtype=autocast_dtype(config.precision, next(head.parameters()).device))


def _fit_head(
    demos: Sequence[Demonstration], negatives: Sequence[Demonstration], config: TrainConfig, device: torch.device,
    out: Path, resume: bool, progress: bool, encoder: nn.Module,
) -> tuple[nn.Module, dict[str, float]]:
    """One learned head of `config.head` on `encoder`: its sampler from its registry entry (training/heads.py),
    the one training loop, then its goal and calibration."""
    head = make_head(config, encoder).to(device)
    sampler = make_sampler(config, head, demos, negatives)
    metrics = _optimize(head, _batches(sampler, config, device), config, out, resume, progress)
    finish_head(head, demos, device)
    return head, metrics


def member_configs(config: TrainConfig) -> list[TrainConfig]:
    """The members of an ensemble: `--ensemble K` gives K copies with seeds seed, seed + 1, ...; a combined head
    (progress+rank) one member per kind, each with 1 / members of the steps (the same warm-up), so that
    `--head progress+rank --steps 2000` is exactly `--head progress --steps 1000` + `--head rank --steps 1000`."""
    if config.head in COMBINED_HEADS:
        kinds = COMBINED_HEADS[config.head]
        return [replace(config, head=kind, ensemble=1, steps=max(1, config.steps // len(kinds))) for kind in kinds]
    return [replace(config, seed=config.seed + k, ensemble=1) for k in range(config.ensemble)]


def _fit_ensemble(
    demos: Sequence[Demonstration], negatives: Sequence[Demonstration], config: TrainConfig, device: torch.device,
    out: Path, resume: bool, progress: bool, pretrained: nn.Module | None,
) -> tuple[nn.Module, dict[str, float]]:
    """The members of `member_configs(config)`, trained one after the other, as one HeadEnsemble.

    Member k checkpoints in OUT/members/k/checkpoint and, once trained, leaves OUT/members/k/done.safetensors;
    `--resume` reloads the finished members, continues the interrupted one and trains the rest."""
    members, metrics = [], {}
    configs = member_configs(config)
    for k, member_config in enumerate(configs):
        member_out = out / MEMBERS / str(k)
        done = member_out / MEMBER_DONE
        torch.manual_seed(member_config.seed)  # each member's own initialisation
        encoder = copy.deepcopy(pretrained) if pretrained is not None else _make_encoder(member_config)
        if resume and done.exists():
            head = make_head(member_config, encoder).to(device)
            head.load_state_dict(load_tensors(done))
            head.eval()
        else:
            member_resume = resume and has_checkpoint(member_out)
            if progress:
                write(f"ensemble member {k + 1}/{len(configs)}: {member_config.head}, seed {member_config.seed}, "
                      f"{member_config.steps} steps")
            head, member_metrics = _fit_head(demos, negatives, member_config, device, member_out, member_resume,
                                             progress, encoder)
            if distributed.is_main():  # under torchrun rank 0 writes, the other ranks hold the same weights
                save_tensors(done, head.state_dict())
            metrics.update({f"member{k}/{name}": value for name, value in member_metrics.items()})
        members.append(head)
    return HeadEnsemble(members), metrics


def has_resume_state(out: Path) -> bool:
    """Whether OUT holds anything an interrupted `v2r train` left to resume from: the head's checkpoint, a
    pretraining checkpoint or its finished encoder, or an ensemble member's checkpoint or finished weights."""
    members = sorted((out / MEMBERS).iterdir()) if (out / MEMBERS).is_dir() else []
    return (any(has_checkpoint(folder) for folder in (out, out / PRETRAIN, *members))
            or (out / PRETRAIN / ENCODER_WEIGHTS).exists() or any((m / MEMBER_DONE).exists() for m in members))


def train_reward_model(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None,
    resume: bool = False, skip_bad: bool = False, progress: bool = True,
) -> TrainResult:
    """Train a reward model on every video under `paths` (each a successful demonstration); save it to `out`."""
    config = config or TrainConfig()
    out = Path(out)
    learned = is_learned(config.head)
    pretrained = learned and is_pretrained(config.encoder)
    if config.image_size < 16 and not pretrained:
        raise ConfigError(f"--image-size {config.image_size}: use at least 16 pixels")
    check_negatives(config)
    kinds = parse_kinds(config.synthetic_negatives)  # an unknown kind fails before any video is decoded
    if config.ensemble < 1:
        raise ConfigError(f"--ensemble {config.ensemble}: give the number of members, 1 or more")
    if config.ensemble > 1 and (config.head in COMBINED_HEADS or not is_learned(config.head)):
        why = ("is already an ensemble" if config.head in COMBINED_HEADS
               else "is deterministic (its members would be identical)")
        raise ConfigError(f"--ensemble: the {config.head} head {why}; use --ensemble with a single learned head, "
                          f"e.g. --head progress --ensemble {config.ensemble}")
    check_writable(out)
    if resume and not has_resume_state(out):
        raise TrainingError(f"--resume: nothing to resume in {out} (no checkpoint of an interrupted run there); "
                            f"run without --resume")
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    encoder = None
    if pretrained:  # loaded once; it saw frames of its own size, so training uses that size
        encoder = _make_encoder(config)
        config = replace(config, image_size=int(encoder.config.image_size))
    device = distributed.place(resolve_device(config.device))  # cuda:LOCAL_RANK under torchrun
    t0 = time.perf_counter()
    demos, skipped = load_demonstrations(paths, config.image_size, config.max_frames_per_video, skip_bad, progress,
                                         config.frame_fit, config.selection())
    pretrain_info = None
    if self_pretrains(config):  # a fresh cnn/vit learns from the videos themselves before the head trains on it
        encoder, pretrain_info = _pretrain_fresh_encoder(demos, config, out, resume, progress)
        torch.manual_seed(config.seed)  # the head's initialisation does not depend on how pretraining drew
    negatives, skipped_negatives = load_negatives(config, paths, skip_bad, progress)
    skipped = skipped + skipped_negatives
    synthetic = (synthesize_negatives(demos, kinds, config.seed)
                 if kinds and learned and learns_from_negatives(config.head) else [])
    encoder_info = None
    if config.head == "pixel-ridge":
        with stage("fitting pixel-ridge", enabled=progress and distributed.is_main()):  # closed form: no bar
            head, metrics = _fit_pixel_ridge(demos, config)
    elif learned:
        if config.ensemble > 1 or config.head in COMBINED_HEADS:
            head, metrics = _fit_ensemble(demos, [*negatives, *synthetic], config, device, out, resume, progress,
                                          encoder)
        else:
            encoder = encoder or _make_encoder(config)
            head_resume = resume and has_checkpoint(out)  # else it was pretraining that stopped
            head, metrics = _fit_head(demos, [*negatives, *synthetic], config, device, out, head_resume, progress,
                                      encoder)
        encoder_info = {"name": encoder_name(head.encoder), "config": asdict(head.encoder.config)}
        if is_pretrained(config.encoder):
            encoder_info["pretrained_from"] = str(config.encoder)
            encoder_info["frozen"] = config.freeze
        elif pretrain_info is not None:
            encoder_info["pretrained_with"] = pretrain_info
            encoder_info["frozen"] = config.freeze
        elif config.freeze:  # a built-in encoder with ImageNet weights (efficientnet-lite0), kept as built
            encoder_info["frozen"] = True
    else:
        raise ConfigError(f"--head {config.head}: unknown head (known: {', '.join(HEAD_NAMES)})")
    seconds = time.perf_counter() - t0
    model_config = {
        "head": config.head,
        **({"ensemble": config.ensemble} if config.ensemble > 1 else {}),
        "image_size": config.image_size,
        "frame_fit": config.frame_fit,
        "encoder": encoder_info,
        "head_config": head_config_dict(head),
        **({"members": [{"head": c.head, "head_config": head_config_dict(m)}
                        for c, m in zip(member_configs(config), head.members)]}
           if config.head in COMBINED_HEADS else {}),
        "training": {
            "config": asdict(config), "seconds": round(seconds, 2), "videos": [d.name for d in demos],
            "num_frames": int(sum(d.num_frames for d in demos)), "skipped": skipped, "final_metrics": metrics,
            **({"negatives": [d.name for d in negatives]} if negatives else {}),
            **({"synthetic_negatives": {"kinds": list(kinds), "videos": len(synthetic)}} if synthetic else {}),
            "data": data_facts(demos, paths, config.camera_key), **provenance(),
        },
    }
    rendered = read_render_facts([p for p in paths if Path(p).is_dir()])
    if rendered is not None:  # v2r rl renders the env as these videos were rendered (rl/render.py)
        model_config["render"] = rendered
    model = RewardModel(head.cpu(), model_config)
    warnings = []
    train_voc = training_video_voc(model, demos)
    model_config["training"]["train_video_voc"] = round(train_voc, 4)
    model_config["training"]["train_end_vs_start_auroc"] = round(training_end_vs_start_auroc(model, demos), 4)
    if config.head == "success":  # a detector is flat before the end: VOC is not its check
        fired = training_last_frame_success(model, demos)
        model_config["training"]["train_last_frame_success"] = round(fired, 4)
        if not fired > 0.5:
            warnings.append(
                f"the success detector does not fire on its own demonstrations' last frames (mean probability "
                f"{fired:.2f}); retry with more --steps or a larger --success-fraction (now {options_of(config, 'success').success_fraction})"
            )
    elif not train_voc > 0.5:
        warnings.append(
            f"the model did not learn to order its own training videos (VOC {train_voc:.2f} on them): its "
            f"features probably collapsed. Retry with a lower --lr (now {config.lr}), more --steps, or a larger "
            f"--image-size if the moving parts are small in the frame"
        )
    model_config["training"]["warnings"] = warnings
    if not distributed.is_main():  # every rank ends with the same model; rank 0 writes it
        return TrainResult(model, seconds, len(demos), model_config["training"]["num_frames"], skipped, metrics,
                           warnings)
    model.save(out)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)  # the run finished: nothing left to resume
    shutil.rmtree(out / MEMBERS, ignore_errors=True)
    shutil.rmtree(out / PRETRAIN, ignore_errors=True)
    return TrainResult(model, seconds, len(demos), model_config["training"]["num_frames"], skipped, metrics,
                       warnings)
