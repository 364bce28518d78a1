"""The one training loop, and `train_reward_model`, which feeds it demonstrations.

`train_loop` takes any module whose `forward(batch) -> (loss, metrics)`, a function that draws a batch
from a torch.Generator, and an optimizer; it owns the learning-rate schedule (linear warm-up, cosine
decay), gradient clipping, the NaN check, the progress bar and resumable checkpoints. Objectives and
reward heads bring only their loss.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from tqdm import tqdm

from video2reward.config import TrainConfig, resolve_device
from video2reward.encoders import ENCODERS, build_encoder
from video2reward.encoders.pretrained import load_encoder
from video2reward.errors import ConfigError, V2RError
from video2reward.model_files import load_tensors, read_json, save_tensors, write_json
from video2reward.rewards.model import RewardModel, head_config_dict
from video2reward.rewards.pixel_ridge import PixelRidge, PixelRidgeConfig
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.video.augment import FrameAugment
from video2reward.video.dataset import Demonstration, load_demonstrations
from video2reward.video.sampling import TripletSampler


class TrainingError(V2RError):
    """Training cannot go on (the loss became NaN/inf, a checkpoint does not fit the run, ...)."""


def warmup_cosine(step: int, warmup: int, total: int) -> float:
    """Learning-rate multiplier: linear warm-up to 1, then cosine decay to 0 at `total`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


@dataclass
class Checkpointer:
    """Resumable state in `directory`: weights + optimizer tensors + RNG in safetensors, the rest in JSON."""

    directory: Path
    every: int
    run_config: dict[str, Any] = field(default_factory=dict)

    @property
    def tensors_path(self) -> Path:
        return self.directory / "state.safetensors"

    @property
    def json_path(self) -> Path:
        return self.directory / "state.json"

    def save(self, step: int, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> None:
        opt = optimizer.state_dict()
        tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
        for idx, state in opt["state"].items():
            for key, value in state.items():
                tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value)
        tensors["rng"] = generator.get_state()
        save_tensors(self.tensors_path, tensors)  # tensors first: the JSON names a complete step
        write_json(self.json_path, {"step": step, "param_groups": opt["param_groups"], "config": self.run_config})

    def exists(self) -> bool:
        return self.json_path.exists() and self.tensors_path.exists()

    def load(self, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> int:
        meta = read_json(self.json_path)
        if meta.get("config") != self.run_config:
            raise TrainingError(
                f"{self.json_path}: this checkpoint was written by a run with other settings; resume with the "
                f"same options, or start afresh without --resume (or with another --out)"
            )
        tensors = load_tensors(self.tensors_path)
        module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        generator.set_state(tensors["rng"])
        return int(meta["step"])


class _StopRequest:
    """Turns the first Ctrl-C (SIGINT) into a request to stop at the next step boundary, so the checkpoint
    written then is a clean one; a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def __enter__(self) -> "_StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def train_loop(
    module: nn.Module,
    sample: Callable[[torch.Generator], Any],
    optimizer: torch.optim.Optimizer,
    steps: int,
    generator: torch.Generator,
    warmup: int = 100,
    checkpointer: Checkpointer | None = None,
    start_step: int = 0,
    grad_clip: float = 1.0,
    progress: bool = True,
    desc: str = "training",
) -> dict[str, float]:
    """Run optimisation steps `start_step` .. `steps - 1`; returns the last metrics (smoothed).
    After every optimizer step, `module.after_step(step, steps)` runs when the module has one.

    The learning rate is a pure function of the step, the batch a pure function of the generator state,
    so a run resumed from a checkpoint continues exactly as the uninterrupted run would have."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # the peak lr; restored from a checkpoint on resume
    smoothed: dict[str, float] = {}
    module.train()
    bar = tqdm(range(start_step, steps), desc=desc, unit="step", disable=not progress, initial=start_step,
               total=steps, dynamic_ncols=True)
    last_saved = start_step
    t0 = time.perf_counter()
    with _StopRequest() as stop, bar:
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * warmup_cosine(step, warmup, steps)
            batch = sample(generator)
            loss, metrics = module(batch)
            if not torch.isfinite(loss):
                where = (f"; the last good checkpoint (step {last_saved}) is in {checkpointer.directory}, "
                         f"continue from it with --resume") if checkpointer and checkpointer.exists() else ""
                raise TrainingError(f"loss became {loss.item()} at step {step}{where}; try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
            optimizer.step()
            after_step = getattr(module, "after_step", None)
            if after_step is not None:  # momentum targets (MoCo keys, DINO teacher), queues
                after_step(step, steps)
            for k, v in metrics.items():  # exponential moving average for a readable bar
                smoothed[k] = v if k not in smoothed else 0.95 * smoothed[k] + 0.05 * v
            if step % 10 == 0:
                rate = (step + 1 - start_step) / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix({**{k: f"{v:.4f}" for k, v in smoothed.items()}, "it/s": f"{rate:.1f}"})
            done = step + 1
            if checkpointer and done < steps and (done % checkpointer.every == 0 or stop.requested):
                checkpointer.save(done, module, optimizer, generator)
                last_saved = done
            if stop.requested and done < steps:
                where = (f"; state saved in {checkpointer.directory}: run the same command with --resume to "
                         f"continue") if checkpointer else ""
                raise TrainingError(f"interrupted at step {done} of {steps}{where}")
    return smoothed


def check_writable(directory: Path) -> None:
    """Fail before hours of work, not after: the output folder must be creatable and writable."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".v2r-write-test"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot write the model here ({exc.strerror}); choose another --out") from exc


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
    from video2reward.evaluation import value_order_correlation

    videos = [d.frames.permute(0, 2, 3, 1).numpy() for d in demos[:max_videos]]  # (T, S, S, 3) uint8
    return value_order_correlation([model.score(v).mu for v in videos])


def _frames_float(frames: torch.Tensor) -> torch.Tensor:
    return frames.float().div_(255.0)


def _fit_pixel_ridge(demos: Sequence[Demonstration], config: TrainConfig) -> tuple[nn.Module, dict[str, float]]:
    head = PixelRidge(PixelRidgeConfig(components=config.pca_components, alpha=config.ridge_alpha))
    frames = torch.cat([_frames_float(d.frames) for d in demos])
    targets = torch.cat([d.progress for d in demos])
    return head, head.fit(frames, targets)


def is_pretrained(encoder: str) -> bool:
    """`--encoder` names a weights file or folder rather than a built-in architecture."""
    return encoder not in ENCODERS


def pretrained_image_size(config: TrainConfig) -> int:
    """The frame size training must use: a pretrained encoder's own, else `config.image_size`."""
    if not is_pretrained(config.encoder) or config.head != "progress":
        return config.image_size
    encoder, _ = load_encoder(config.encoder)
    return int(encoder.config.image_size)


def _make_encoder(config: TrainConfig) -> nn.Module:
    """A fresh `cnn`/`vit`, or the pretrained encoder `config.encoder` (frozen with `config.freeze`)."""
    if not is_pretrained(config.encoder):
        if config.freeze:
            raise ConfigError(f"--freeze needs a pretrained --encoder (a folder or weights file), not "
                              f"{config.encoder!r}: a frozen random encoder learns nothing")
        return build_encoder(config.encoder, config.image_size)
    encoder, _ = load_encoder(config.encoder)
    if config.freeze:
        encoder.requires_grad_(False)  # the head's optimizer skips it; no backward through it
    return encoder


def encoder_name(encoder: nn.Module) -> str:
    """The registry name ('cnn', 'vit') of an encoder instance, which is what a model file records."""
    for name, (_, cls) in ENCODERS.items():
        if type(encoder) is cls:
            return name
    raise ConfigError(f"encoder of type {type(encoder).__name__} is not a registered architecture")


def _fit_progress(
    demos: Sequence[Demonstration], config: TrainConfig, device: torch.device, out: Path, resume: bool,
    progress: bool,
) -> tuple[nn.Module, dict[str, float]]:
    encoder = _make_encoder(config)
    head = ProgressHead(encoder, ProgressConfig(sigma_min=config.sigma_min, motion_gap=config.motion_gap))
    head = head.to(device)
    per_video = config.frames_per_video * (2 if config.motion_gap > 0 else 1)  # motion partners are encoded too
    sampler = TripletSampler(
        list(demos), frames_per_video=config.frames_per_video,
        videos_per_batch=max(1, config.batch_size // per_video),
        triplets_per_video=config.triplets_per_video, motion_gap=config.motion_gap,
    )
    augment = FrameAugment() if config.augment else None

    def sample(generator: torch.Generator):
        batch = sampler.sample(generator)
        frames = _frames_float(batch.frames)  # (N, 3, S, S)
        if augment is not None:
            frames = augment(frames, generator)
        batch.frames = frames
        return batch.to(device)

    params = [p for p in head.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(config.seed)
    checkpointer = Checkpointer(out / "checkpoint", config.checkpoint_every, asdict(config))
    start = 0
    if resume:
        if not checkpointer.exists():
            raise TrainingError(f"--resume: no checkpoint in {checkpointer.directory}; run without --resume")
        start = checkpointer.load(head, optimizer, generator)
    metrics = train_loop(head, sample, optimizer, config.steps, generator, warmup=config.warmup_steps,
                         checkpointer=checkpointer, start_step=start, progress=progress, desc="training progress")
    head.eval()
    goal_frames = torch.stack([d.frames[-1] for d in demos])  # (V, 3, S, S): the task done, per demo
    head.set_goal(_frames_float(goal_frames).to(device))
    return head, metrics


def train_reward_model(
    paths: Sequence[str | os.PathLike], out: str | os.PathLike, config: TrainConfig | None = None,
    resume: bool = False, skip_bad: bool = False, progress: bool = True,
) -> TrainResult:
    """Train a reward model on every video under `paths` (each a successful demonstration); save it to `out`."""
    config = config or TrainConfig()
    out = Path(out)
    size = pretrained_image_size(config)
    if size != config.image_size:  # the pretrained encoder saw frames of its own size: keep it
        config = replace(config, image_size=size)
    if config.image_size < 16:
        raise ConfigError(f"--image-size {config.image_size}: use at least 16 pixels")
    check_writable(out)
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    device = resolve_device(config.device)
    t0 = time.perf_counter()
    demos, skipped = load_demonstrations(paths, config.image_size, config.max_frames_per_video, skip_bad, progress,
                                         config.frame_fit)
    if config.head == "pixel-ridge":
        head, metrics = _fit_pixel_ridge(demos, config)
        encoder_info = None
    elif config.head == "progress":
        head, metrics = _fit_progress(demos, config, device, out, resume, progress)
        encoder_info = {"name": encoder_name(head.encoder), "config": asdict(head.encoder.config)}
        if is_pretrained(config.encoder):
            encoder_info["pretrained_from"] = str(config.encoder)
            encoder_info["frozen"] = config.freeze
    else:
        raise ConfigError(f"--head {config.head}: unknown head (known: progress, pixel-ridge)")
    seconds = time.perf_counter() - t0
    model_config = {
        "head": config.head,
        "image_size": config.image_size,
        "frame_fit": config.frame_fit,
        "encoder": encoder_info,
        "head_config": head_config_dict(head),
        "training": {
            "config": asdict(config), "seconds": round(seconds, 2), "videos": [d.name for d in demos],
            "num_frames": int(sum(d.num_frames for d in demos)), "skipped": skipped, "final_metrics": metrics,
        },
    }
    model = RewardModel(head.cpu(), model_config)
    warnings = []
    train_voc = training_video_voc(model, demos)
    model_config["training"]["train_video_voc"] = round(train_voc, 4)
    if not train_voc > 0.5:
        warnings.append(
            f"the model did not learn to order its own training videos (VOC {train_voc:.2f} on them): its "
            f"features probably collapsed. Retry with a lower --lr (now {config.lr}), more --steps, or a larger "
            f"--image-size if the moving parts are small in the frame"
        )
    model_config["training"]["warnings"] = warnings
    model.save(out)
    shutil.rmtree(out / "checkpoint", ignore_errors=True)  # the run finished: nothing left to resume
    return TrainResult(model, seconds, len(demos), model_config["training"]["num_frames"], skipped, metrics,
                       warnings)
