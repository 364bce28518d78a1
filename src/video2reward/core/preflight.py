"""Checks that run before long work starts, so that a read-only output folder or a disk without room is an
error in the first seconds of a run, not after hours of training.

- `check_output_folder`: the folder can be created and a file in it written and removed (a probe file: the only
  test that holds for every cause: permissions, a read-only mount, quotas, a full disk, a path through a file).
- `check_free_space`: the file system has room for what the run will write, estimated from the model by
  `training_bytes`. A disk that fills up later anyway (another program writing) still cannot damage a model or a
  checkpoint: those are written to a temp file and renamed, so the previous one stays whole.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import torch.nn as nn

from video2reward.errors import ConfigError

MARGIN_BYTES = 16 << 20  # JSON files, plots, the file system's own rounding


def check_output_folder(directory: str | os.PathLike, what: str = "the output") -> None:
    """Create `directory` if needed and write, then remove, a probe file in it; a ConfigError naming the
    folder and the reason (read-only, permission denied, no space, not a folder) otherwise."""
    directory = Path(directory)
    probe = directory / f".v2r-write-test-{os.getpid()}"  # one per process: ranks of a torchrun share the folder
    try:
        if directory.exists() and not directory.is_dir():  # mkdir(exist_ok=True) would say 'File exists'
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
        directory.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{directory}: cannot write {what} here ({exc.strerror or exc}); choose another folder "
                          f"or fix this one's permissions") from exc


def _megabytes(n: int) -> str:
    return f"{n / (1 << 20):,.0f} MB" if n >= 1 << 20 else f"{n / 1024:,.1f} KB"


def free_bytes(directory: str | os.PathLike) -> int:
    """Free bytes for an unprivileged user on the file system that holds `directory` (or its nearest existing
    parent, for a folder not created yet)."""
    path = Path(directory).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def check_free_space(directory: str | os.PathLike, needed: int, what: str) -> None:
    free = free_bytes(directory)
    if free < needed:
        raise ConfigError(f"{directory}: {_megabytes(free)} free on its disk, but {what} needs about "
                          f"{_megabytes(needed)}; free some space or choose another --out")


def training_bytes(module: nn.Module) -> int:
    """What a training run of `module` has on disk at its peak: a checkpoint (all tensors + AdamW's two moments
    of each trainable parameter) written beside the previous one before the rename replaces it, then the final
    model the same way, plus MARGIN_BYTES."""
    tensors = sum(t.numel() * t.element_size() for t in module.state_dict().values())
    moments = 2 * sum(p.numel() * p.element_size() for p in module.parameters() if p.requires_grad)
    return 2 * (tensors + moments) + 2 * tensors + MARGIN_BYTES
