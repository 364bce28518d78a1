"""Faults during training: NaN loss and inf gradients stop the run with the last good checkpoint intact, a
crash between or inside the checkpoint writes never leaves a checkpoint that loads wrong, a full disk while
checkpointing is one clear error. (A real `kill -9` of `v2r train`: tests/training/test_kill_resume.py.)"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import video2reward.core.files as model_files
import video2reward.training.loop as training_loop
from tests.helpers.toy_regressor import Regressor, regression_batch
from video2reward.errors import ModelFileError
from video2reward.training.loop import Checkpointer, TrainingError, train_loop

STEPS, EVERY = 20, 4


class Crash(Exception):
    """Stands for the process dying at this point."""


def run(folder: Path, sample=None, resume: bool = False) -> tuple[nn.Module, Checkpointer]:
    torch.manual_seed(0)
    model = Regressor()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    ckpt = Checkpointer(folder, every=EVERY, run_config={"steps": STEPS})
    start = ckpt.load(model, opt, gen) if resume else 0
    train_loop(model, sample or good_batch, opt, STEPS, gen, warmup=3, checkpointer=ckpt, start_step=start,
               progress=False)
    return model, ckpt


def good_batch(g: torch.Generator):
    return regression_batch(g, size=16)


def same_weights(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


def test_nan_loss_names_the_step_and_the_last_good_checkpoint_resumes(tmp_path: Path) -> None:
    calls = []

    def nan_at_10(g):
        calls.append(1)
        x, y = good_batch(g)
        return x, y * (float("nan") if len(calls) == 11 else 1.0)

    with pytest.raises(TrainingError, match=r"loss became nan at step 10; the last good checkpoint \(step 8\) is in "
                                            r".*--resume"):
        run(tmp_path / "b", nan_at_10)
    probe = Regressor()
    assert Checkpointer(tmp_path / "b", EVERY, {"steps": STEPS}).load(
        probe, torch.optim.AdamW(probe.parameters()), torch.Generator()) == 8
    assert all(torch.isfinite(p).all() for p in probe.parameters())
    whole, _ = run(tmp_path / "a")
    resumed, _ = run(tmp_path / "b", resume=True)  # the cause fixed, the run goes on from step 8
    assert same_weights(whole, resumed)


def test_inf_gradient_stops_before_it_reaches_the_weights(tmp_path: Path) -> None:
    class InfGrad(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = nn.Parameter(torch.ones(3))

        def forward(self, batch):
            return torch.sqrt(self.w - self.w.detach()).sum(), {}  # loss 0, d/dw = 1 / (2 * 0) = inf

    module = InfGrad()
    with pytest.raises(TrainingError, match="gradient norm became (inf|nan) at step 0"):
        train_loop(module, good_batch, torch.optim.SGD(module.parameters(), lr=0.1), 5,
                   torch.Generator().manual_seed(0), progress=False)
    assert torch.equal(module.w.detach(), torch.ones(3))


def test_killed_between_the_tensor_and_json_writes_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    whole, _ = run(tmp_path / "a")
    real_write_json = training_loop.write_json

    def die_before_json_of_step_12(path, obj):
        if obj.get("step") == 12:
            raise Crash  # state.safetensors already holds step 12, state.json still says step 8
        real_write_json(path, obj)

    monkeypatch.setattr(training_loop, "write_json", die_before_json_of_step_12)
    with pytest.raises(Crash):
        run(tmp_path / "b")
    monkeypatch.setattr(training_loop, "write_json", real_write_json)
    resumed, _ = run(tmp_path / "b", resume=True)
    assert same_weights(whole, resumed)


def test_a_half_written_checkpoint_is_never_loaded(tmp_path: Path, monkeypatch) -> None:
    real_save_file = model_files.save_file
    saves = []

    def die_halfway_through_the_third_save(tensors, path):
        saves.append(path)
        real_save_file(tensors, path)
        if len(saves) == 3:  # the temp file of step 12 is half written when the process dies
            data = Path(path).read_bytes()
            Path(path).write_bytes(data[: len(data) // 2])
            raise Crash

    monkeypatch.setattr(model_files, "save_file", die_halfway_through_the_third_save)
    with pytest.raises(Crash):
        run(tmp_path)
    monkeypatch.setattr(model_files, "save_file", real_save_file)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json", "state.safetensors"]  # no temp file left
    probe = Regressor()
    opt = torch.optim.AdamW(probe.parameters())
    assert Checkpointer(tmp_path, EVERY, {"steps": STEPS}).load(probe, opt, torch.Generator()) == 8

    state = tmp_path / "state.safetensors"  # a checkpoint cut short by other means (a copy, a bad disk)
    state.write_bytes(state.read_bytes()[:-100])
    with pytest.raises(ModelFileError, match="state.safetensors: not a readable safetensors file"):
        Checkpointer(tmp_path, EVERY, {"steps": STEPS}).load(probe, opt, torch.Generator())


def test_disk_full_while_checkpointing_is_one_clear_error(tmp_path: Path, monkeypatch) -> None:
    real_save_tensors = training_loop.save_tensors

    def full_from_the_third_save(path, tensors):
        if int(tensors["step"]) >= 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save_tensors(path, tensors)

    monkeypatch.setattr(training_loop, "save_tensors", full_from_the_third_save)
    with pytest.raises(TrainingError, match=r"cannot write the checkpoint of step 12 \(No space left on device\); "
                                            r"the previous checkpoint is intact"):
        run(tmp_path)
    probe = Regressor()
    assert Checkpointer(tmp_path, EVERY, {"steps": STEPS}).load(
        probe, torch.optim.AdamW(probe.parameters()), torch.Generator()) == 8
