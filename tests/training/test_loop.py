"""The training loop: interrupted + resumed equals uninterrupted, NaN stops the run, schedule shape."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from tests.helpers.toy_regressor import Regressor, regression_batch
from video2reward.training.loop import (
    Checkpointer,
    TrainingError,
    train_loop,
    warmup_cosine,
)


def run(tmp: Path, steps: int, interrupt_at: int | None = None, resume: bool = False) -> nn.Module:
    torch.manual_seed(0)
    model = Regressor()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    ckpt = Checkpointer(tmp, every=7, run_config={"steps": steps})
    start = ckpt.load(model, opt, gen) if resume else 0

    def sampler(g):
        if sampler.calls == interrupt_at:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered mid-step
        sampler.calls += 1
        return regression_batch(g)

    sampler.calls = start
    train_loop(model, sampler, opt, steps, gen, warmup=3, checkpointer=ckpt, start_step=start, progress=False)
    return model


def test_interrupted_then_resumed_run_equals_uninterrupted_bit_for_bit(tmp_path: Path) -> None:
    whole = run(tmp_path / "a", steps=30)
    with pytest.raises(TrainingError, match="interrupted at step 12 of 30.*--resume"):
        run(tmp_path / "b", steps=30, interrupt_at=11)
    resumed = run(tmp_path / "b", steps=30, resume=True)
    for p, q in zip(whole.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(p, q)


def test_checkpoint_from_other_settings_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TrainingError):
        run(tmp_path, steps=30, interrupt_at=9)
    with pytest.raises(TrainingError, match="other settings"):
        run(tmp_path, steps=40, resume=True)


def test_nan_loss_stops_with_the_step_named(tmp_path: Path) -> None:
    model = Regressor()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)

    def bad(g):
        x, y = regression_batch(g)
        return x, y * float("nan")

    with pytest.raises(TrainingError, match="loss became nan at step 0"):
        train_loop(model, bad, opt, 5, torch.Generator().manual_seed(0), progress=False)


def test_warmup_cosine_schedule() -> None:
    values = [warmup_cosine(s, 10, 100) for s in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] < 0.01
