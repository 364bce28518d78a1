"""The one training loop that every objective and reward head trains on.

`train_loop` takes any module whose `forward(batch) -> (loss, metrics)`, a function that draws a batch
from a torch.Generator, and an optimizer; it owns the learning-rate schedule (linear warm-up, cosine
decay), gradient clipping, the NaN check, the progress bar, the `after_step` hook (momentum targets) and
resumable checkpoints (`Checkpointer`), so an interrupted run resumed with --resume ends bit-for-bit where
the uninterrupted one would. Under torchrun the same loop trains with DistributedDataParallel (see
distributed.py: per-rank batches, averaged gradients, rank 0 writes); with `amp_dtype` the forward pass runs
under autocast (see precision.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from video2reward.core.files import load_tensors, read_json, save_tensors, write_json
from video2reward.core.precision import autocast
from video2reward.core.preflight import (
    check_free_space,
    check_output_folder,
    training_bytes,
)
from video2reward.core.progress import progress_bar
from video2reward.core.stop import StopRequest
from video2reward.errors import V2RError
from video2reward.training import distributed


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
        """Called on every rank (each hands in its generator state); only rank 0 writes."""
        rngs = distributed.gather_states(generator.get_state())
        if distributed.is_main():
            self._write(step, module, optimizer, rngs)
        distributed.barrier()  # no rank goes on (or stops) before the checkpoint is complete on disk

    def _write(self, step: int, module: nn.Module, optimizer: torch.optim.Optimizer, rngs: list[torch.Tensor]) -> None:
        opt = optimizer.state_dict()
        tensors = {f"model.{k}": v for k, v in module.state_dict().items()}
        for idx, state in opt["state"].items():
            for key, value in state.items():
                tensors[f"optim.{idx}.{key}"] = torch.as_tensor(value)
        tensors["rng"] = rngs[0]
        tensors.update({f"rng.rank{r}": state for r, state in enumerate(rngs) if r > 0})  # torchrun: every rank's
        # The step travels with the tensors: killed between the two writes, a run leaves new tensors beside the
        # previous JSON, whose fields (param groups, config, world size) never change within a run.
        tensors["step"] = torch.tensor(step)
        world = {"world_size": len(rngs)} if len(rngs) > 1 else {}
        try:
            save_tensors(self.tensors_path, tensors)  # tensors first: the JSON names a complete step
            write_json(self.json_path, {"step": step, "param_groups": opt["param_groups"],
                                        "config": self.run_config, **world})
        except OSError as exc:  # the disk filled up after the start-up check: each file is whole, old or new
            raise TrainingError(f"{self.directory}: cannot write the checkpoint of step {step} ({exc.strerror or exc})"
                                f"; the previous checkpoint is intact: make room, then run the same command with "
                                f"--resume") from exc

    def exists(self) -> bool:
        return self.json_path.exists() and self.tensors_path.exists()

    def load(self, module: nn.Module, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> int:
        meta = read_json(self.json_path)
        if meta.get("config") != self.run_config:
            raise TrainingError(
                f"{self.json_path}: this checkpoint was written by a run with other settings; resume with the "
                f"same options, or start afresh without --resume (or with another --out)"
            )
        written_by, world = int(meta.get("world_size", 1)), distributed.world_size()
        if written_by != world:
            raise TrainingError(
                f"{self.json_path}: this checkpoint was written by {written_by} process(es), this run has {world}; "
                f"resume with the same number (torchrun --nproc_per_node/--nnodes), or start afresh without --resume"
            )
        tensors = load_tensors(self.tensors_path)
        module.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, name = key.split(".", 2)
                state.setdefault(int(idx), {})[name] = value
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
        rank = distributed.rank()
        generator.set_state(tensors["rng"] if rank == 0 else tensors[f"rng.rank{rank}"])
        return int(tensors["step"]) if "step" in tensors else int(meta["step"])


def _last_good(checkpointer: Checkpointer | None, step: int) -> str:
    if checkpointer is None or not checkpointer.exists():
        return ""
    return f"; the last good checkpoint (step {step}) is in {checkpointer.directory}, continue from it with --resume"


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
    amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Run optimisation steps `start_step` .. `steps - 1`; returns the last metrics (smoothed; averaged over
    ranks under torchrun). After every optimizer step, `module.after_step(step, steps)` runs when the module
    has one. `amp_dtype` (torch.bfloat16) runs the forward pass under autocast.

    The learning rate is a pure function of the step, the batch a pure function of the generator state,
    so a run resumed from a checkpoint continues exactly as the uninterrupted run would have."""
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"])  # the peak lr; restored from a checkpoint on resume
    smoothed: dict[str, float] = {}
    module.train()
    model = distributed.wrap(module)  # DistributedDataParallel under torchrun, else the module itself
    device = next(module.parameters(), torch.empty(0)).device
    # a bar on a terminal; in a log file one line when the stage ends (steps, time, last metrics)
    bar = progress_bar(range(start_step, steps), desc=desc, unit="step", initial=start_step, total=steps,
                       disable=not (progress and distributed.is_main()))
    last_saved = start_step
    with StopRequest() as stop, bar:
        for step in bar:
            for group in optimizer.param_groups:
                group["lr"] = group["initial_lr"] * warmup_cosine(step, warmup, steps)
            batch = sample(generator)
            with autocast(device, amp_dtype):
                loss, metrics = model(batch)
            loss_value, metrics, stop_agreed = distributed.agree(loss, metrics, stop.requested)
            if not math.isfinite(loss_value):
                raise TrainingError(f"loss became {loss_value} at step {step}{_last_good(checkpointer, last_saved)}"
                                    f"; try a lower --lr")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if grad_clip:
                norm = float(nn.utils.clip_grad_norm_(module.parameters(), grad_clip))
                if not math.isfinite(norm):  # a finite loss with inf gradients: stop before they reach the weights
                    raise TrainingError(f"gradient norm became {norm} at step {step}"
                                        f"{_last_good(checkpointer, last_saved)}; try a lower --lr")
            optimizer.step()
            after_step = getattr(module, "after_step", None)
            if after_step is not None:  # momentum targets (MoCo keys, DINO teacher), queues
                after_step(step, steps)
            for k, v in metrics.items():  # exponential moving average for a readable bar
                smoothed[k] = v if k not in smoothed else 0.95 * smoothed[k] + 0.05 * v
            if step % 10 == 0 or step + 1 == steps:  # the bar shows the rate itself; the last step's in the log
                bar.set_postfix({k: f"{v:.4f}" for k, v in smoothed.items()})
            done = step + 1
            # one process reads its own flag; ranks act on the flag they agreed on, all at the same step
            stopping = stop.requested if distributed.world_size() == 1 else stop_agreed
            if checkpointer and done < steps and (done % checkpointer.every == 0 or stopping):
                checkpointer.save(done, module, optimizer, generator)
                last_saved = done
            if stopping and done < steps:
                where = (f"; state saved in {checkpointer.directory}: run the same command with --resume to "
                         f"continue") if checkpointer else ""
                raise TrainingError(f"interrupted at step {done} of {steps}{where}")
    distributed.sync_buffers(module)  # rank 0's BatchNorm statistics everywhere: identical models on all ranks
    return smoothed


def check_writable(directory: Path) -> None:
    """Fail before hours of work, not after: the output folder must be creatable and writable (by rank 0, the
    one process that writes under torchrun)."""
    if distributed.is_main():
        check_output_folder(directory, "the model")


CHECKPOINT_DIR = "checkpoint"  # fit_resumable's checkpoints: OUT/checkpoint


def has_checkpoint(out: str | Path) -> bool:
    """Whether fit_resumable left a checkpoint in OUT to resume from."""
    return (Path(out) / CHECKPOINT_DIR).exists()


def fit_resumable(
    module: nn.Module, sample: Callable[[torch.Generator], Any], *, steps: int, lr: float, weight_decay: float,
    seed: int, warmup: int, out: Path, checkpoint_every: int, run_config: dict[str, Any], resume: bool,
    progress: bool, desc: str, amp_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """AdamW on `module`'s trainable parameters through `train_loop`, checkpointed in OUT/checkpoint; with
    `resume`, continue from that checkpoint (which must have been written with the same `run_config`).
    Under torchrun each rank samples from its own generator (`distributed.rank_seed`)."""
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(distributed.rank_seed(seed))
    checkpointer = Checkpointer(Path(out) / CHECKPOINT_DIR, checkpoint_every, run_config)
    if distributed.is_main():  # room for the checkpoints and the model, before the first step
        check_free_space(out, training_bytes(module), f"writing the checkpoints and model of {desc}")
    start = 0
    if resume:
        if not distributed.main_says(checkpointer.exists()):
            raise TrainingError(f"--resume: no checkpoint in {checkpointer.directory}; run without --resume")
        start = checkpointer.load(module, optimizer, generator)
    return train_loop(module, sample, optimizer, steps, generator, warmup=warmup, checkpointer=checkpointer,
                      start_step=start, progress=progress, desc=desc, amp_dtype=amp_dtype)
