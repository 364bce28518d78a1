"""One rank of tests/training/test_distributed.py, run from the repository root as
`torchrun --standalone --nproc_per_node 2 -m tests.helpers.ddp_worker OUT DATA`.

Each rank writes OUT/rank{R}/*.safetensors (what it ended with) and OUT/rank{R}/batches.json (a checksum of
every batch it drew), or OUT/rank{R}/error.txt; the test compares the ranks' files.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from safetensors.torch import save_file

from video2reward.training import distributed
from video2reward.training.config import TrainConfig
from video2reward.training.loop import Checkpointer, TrainingError, train_loop
from video2reward.training.train import train_reward_model

STEPS, INTERRUPT_AT = 12, 5  # rank 1 alone gets a Ctrl-C while drawing the batch of step 5


class NormedRegressor(nn.Module):
    """forward(batch) -> (loss, metrics) with a BatchNorm layer: its running statistics are buffers that each
    rank updates from its own batch."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, batch):
        x, y = batch
        loss = (self.net(x).squeeze(-1) - y).pow(2).mean()
        return loss, {"loss": loss.item()}


def run_loop(folder: Path, interrupt: bool = False, resume: bool = False) -> tuple[nn.Module, list[float]]:
    torch.manual_seed(0)
    model = NormedRegressor()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(distributed.rank_seed(0))
    ckpt = Checkpointer(folder, every=100, run_config={"steps": STEPS})
    start = ckpt.load(model, opt, gen) if resume else 0
    drawn: list[float] = []

    def sample(g: torch.Generator):
        if interrupt and distributed.rank() == 1 and len(drawn) == INTERRUPT_AT:
            os.kill(os.getpid(), signal.SIGINT)
        x = torch.randn(32, 4, generator=g)
        drawn.append(float(x.sum()))
        return x, x.sum(dim=1).sin()

    train_loop(model, sample, opt, STEPS, gen, warmup=3, checkpointer=ckpt, start_step=start, progress=False)
    return model, drawn


def main(out: Path, data: Path) -> None:
    mine = out / f"rank{distributed.rank()}"
    mine.mkdir(parents=True, exist_ok=True)
    whole, drawn = run_loop(out / "loop-whole")
    save_file(whole.state_dict(), str(mine / "loop-whole.safetensors"))
    (mine / "batches.json").write_text(json.dumps(drawn))
    with pytest.raises(TrainingError, match=f"interrupted at step {INTERRUPT_AT + 1} of {STEPS}"):
        run_loop(out / "loop-cut", interrupt=True)
    resumed, _ = run_loop(out / "loop-cut", resume=True)
    save_file(resumed.state_dict(), str(mine / "loop-resumed.safetensors"))

    config = replace(TrainConfig(), steps=8, image_size=32, batch_size=16, frames_per_video=8, warmup_steps=2,
                     pretrain="rotation", pretrain_steps=4, device="cpu", threads=1)
    result = train_reward_model([data / "train"], out / "model", config, progress=False)
    save_file({k: v.contiguous() for k, v in result.model.head.state_dict().items()}, str(mine / "model.safetensors"))

    from video2reward.cli import (
        main as v2r,  # the command torchrun runs as `-m video2reward.cli`, in this group
    )

    assert v2r(["pretrain", str(data / "train"), "--out", str(out / "encoder"), "--steps", "4", "--image-size", "32",
                "--batch-size", "16", "--frames-per-video", "8", "--warmup-steps", "1", "--device", "cpu",
                "--threads", "1", "--quiet"]) == 0


if __name__ == "__main__":
    out_dir, data_dir = Path(sys.argv[1]), Path(sys.argv[2])
    torch.set_num_threads(1)
    try:
        with distributed.session("cpu"):
            main(out_dir, data_dir)
    except BaseException:
        (out_dir / f"rank{os.environ.get('RANK')}").mkdir(parents=True, exist_ok=True)
        (out_dir / f"rank{os.environ.get('RANK')}" / "error.txt").write_text(traceback.format_exc())
        raise
