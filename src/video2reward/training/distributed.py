"""Several processes, one model: `torchrun --nproc_per_node N -m video2reward.cli train ...` (or `pretrain`).

torchrun starts N copies of the command and tells each its place through the environment (RANK, WORLD_SIZE,
LOCAL_RANK, MASTER_ADDR, MASTER_PORT). `session()` turns that into a process group (gloo on CPU, nccl on
CUDA, one GPU per process); without those variables everything here is a no-op and training is the
one-process training it always was. Inside a session:

* every rank trains the same module wrapped in DistributedDataParallel: gradients are averaged over ranks
  in backward, so parameters stay identical; DDP also copies rank 0's buffers (BatchNorm statistics, MoCo's
  queue, DINO's centre) to every rank before each forward, and `sync_buffers` does it once more at the end;
* every rank draws its own batches: its sampling generator is seeded with `rank_seed(seed, rank)` (rank 0
  keeps `seed`, so a one-process run draws exactly rank 0's batches), and `--batch-size` is per process:
  N processes see N times the frames per step;
* losses, metrics and the stop request (Ctrl-C on any rank) are agreed on by one small all-reduce per step
  (`agree`), so every rank takes the same decisions at the same step;
* only rank 0 writes: checkpoints (with every rank's generator state, so --resume continues each rank's
  stream), logs, progress bars and the output folder.
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from video2reward.errors import ConfigError

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True in a one-process run and on rank 0 of a distributed one: the process that writes files and prints."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0


def launched_by_torchrun() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


@contextmanager
def session(device: str = "auto", timeout_minutes: float = 30.0) -> Iterator[None]:
    """Join the process group torchrun describes in the environment for the duration of the block (and leave
    it after); a no-op in a one-process run or when a group is already set up (the caller owns that one).
    `device` is the command's --device: a CUDA device gives the nccl backend and pins this process to GPU
    LOCAL_RANK; anything else gloo."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield
        return
    missing = [v for v in ENV_VARS if v not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not: start distributed runs with "
                          f"`torchrun --nproc_per_node N -m video2reward.cli ...`, or unset WORLD_SIZE")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise ConfigError(f"LOCAL_RANK {local} but this node has {torch.cuda.device_count()} GPU(s): give "
                              f"torchrun --nproc_per_node at most {torch.cuda.device_count()}")
        torch.cuda.set_device(local)
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=timeout_minutes))
    try:
        yield
    finally:
        dist.destroy_process_group()


def place(device: torch.device) -> torch.device:
    """This process's device: `cuda` becomes `cuda:LOCAL_RANK` in a distributed run (one GPU per process)."""
    if device.type == "cuda" and world_size() > 1:
        return torch.device("cuda", local_rank())
    return device


def rank_seed(seed: int, rank_: int | None = None) -> int:
    """The seed of a rank's sampling generator: `seed` itself on rank 0 (so one process draws what rank 0
    draws), an independent stream derived from (seed, rank) on the others (not seed + rank, which would be
    another run's or another ensemble member's stream)."""
    rank_ = rank() if rank_ is None else rank_
    if rank_ == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank_]).generate_state(1, dtype=np.uint64)[0] >> 1)


def wrap(module: nn.Module) -> nn.Module:
    """`module` in DistributedDataParallel when several processes train (parameters and buffers copied from
    rank 0 now, gradients averaged in every backward), else `module` itself. The wrapper only runs
    forward/backward; checkpoints, `after_step` and everything else use the module itself."""
    if world_size() == 1 or not any(p.requires_grad for p in module.parameters()):
        return module
    device = next(module.parameters()).device
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(module, device_ids=ids)  # syncs buffers before each forward


def agree(loss: torch.Tensor, metrics: dict[str, float], stop: bool) -> tuple[float, dict[str, float], bool]:
    """The loss and metrics averaged over ranks, and whether any rank asked to stop: one all-reduce of a small
    vector, so every rank raises on a NaN and stops at a Ctrl-C at the same step. One process: unchanged."""
    if world_size() == 1:
        return float(loss.detach()), metrics, stop
    keys = sorted(metrics)  # every rank runs the same module, so the same keys
    values = torch.tensor([float(loss.detach()), *[float(metrics[k]) for k in keys], float(stop)],
                          dtype=torch.float64, device=loss.device)
    dist.all_reduce(values)
    n = world_size()
    return (float(values[0]) / n, {k: float(v) / n for k, v in zip(keys, values[1:-1].tolist())},
            bool(values[-1] > 0))


def sync_buffers(module: nn.Module) -> None:
    """Copy rank 0's buffers (BatchNorm running statistics, queues, centres) to every rank: DDP does it before
    each forward, so after the last step the ranks' buffers still hold their own last batch's statistics."""
    if world_size() == 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def gather_states(state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's `state` (a generator's ByteTensor, the same size on every rank), in rank order."""
    if world_size() == 1:
        return [state]
    device = torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else torch.device("cpu")
    parts = [torch.empty_like(state, device=device) for _ in range(world_size())]
    dist.all_gather(parts, state.to(device))
    return [p.cpu() for p in parts]


def main_says(flag: bool) -> bool:
    """Rank 0's `flag` on every rank, for decisions that read the file system (is there a checkpoint?), which
    every rank must take the same way."""
    if world_size() == 1:
        return flag
    device = torch.device("cuda", local_rank()) if dist.get_backend() == "nccl" else torch.device("cpu")
    value = torch.tensor([int(flag)], device=device)
    dist.broadcast(value, src=0)
    return bool(value.item())


def barrier() -> None:
    """Wait for every rank (after rank 0 wrote a file the others may read)."""
    if world_size() > 1:
        dist.barrier()
