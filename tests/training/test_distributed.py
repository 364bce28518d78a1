"""Training under torchrun: 2 CPU processes (gloo) on tiny data end with bit-identical weights and buffers, draw
different batches, resume a run that one rank's Ctrl-C stopped exactly, and only rank 0 writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from video2reward.testing.synthetic import write_square_dataset
from video2reward.training.distributed import rank_seed

pytestmark = pytest.mark.slow  # 2 torchrun processes train, interrupt and resume

ROOT = Path(__file__).resolve().parents[2]  # the repository root: the worker runs as `-m tests.helpers.ddp_worker`
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}


def torchrun(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 ARGS` (a free port of its own), output captured."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("ddp") / "data", n_train=3, n_test=1, t=16)


@pytest.fixture(scope="module")
def ranks(data: Path) -> Path:
    out = data.parent / "runs"
    proc = torchrun("-m", "tests.helpers.ddp_worker", str(out), str(data))
    errors = "".join(p.read_text() for p in out.glob("rank*/error.txt"))
    assert proc.returncode == 0, f"{errors}\n{proc.stderr[-3000:]}"
    (out / "stdout.txt").write_text(proc.stdout)  # both ranks' output
    return out


def assert_same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def test_both_ranks_end_with_bit_identical_weights_and_buffers(ranks: Path) -> None:
    for name in ("loop-whole", "model"):
        r0, r1 = (load_file(str(ranks / f"rank{r}" / f"{name}.safetensors")) for r in (0, 1))
        assert_same(r0, r1)
    buffers = load_file(str(ranks / "rank0" / "loop-whole.safetensors"))
    assert buffers["net.1.num_batches_tracked"].item() == 12  # BatchNorm statistics were trained, and synced
    assert not torch.equal(buffers["net.1.running_mean"], torch.zeros(16))


def test_only_rank_0_writes_the_model_and_it_is_what_every_rank_holds(ranks: Path) -> None:
    model = ranks / "model"
    assert {p.name for p in model.iterdir()} == {"model.safetensors", "config.json", "README.md"}  # no checkpoints
    assert_same(load_file(str(model / "model.safetensors")), load_file(str(ranks / "rank1" / "model.safetensors")))


def test_ranks_draw_different_batches_and_rank_0_draws_what_one_process_would(ranks: Path) -> None:
    b0, b1 = (json.loads((ranks / f"rank{r}" / "batches.json").read_text()) for r in (0, 1))
    assert len(b0) == len(b1) == 12 and all(x != y for x, y in zip(b0, b1))
    assert rank_seed(0, 0) == 0 and rank_seed(0, 1) not in (0, 1)
    one_process = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    assert b0[0] == float(one_process.sum())


def test_a_ctrl_c_on_one_rank_stops_both_and_resume_ends_bit_identical(ranks: Path) -> None:
    for r in (0, 1):  # run_loop raised "interrupted at step 6 of 12" on both ranks, then resumed
        assert_same(load_file(str(ranks / f"rank{r}" / "loop-whole.safetensors")),
                    load_file(str(ranks / f"rank{r}" / "loop-resumed.safetensors")))
    meta = json.loads((ranks / "loop-cut" / "state.json").read_text())
    assert meta["step"] == 6 and meta["world_size"] == 2


def test_the_cli_under_torchrun_prints_once_and_rank_0_writes(ranks: Path) -> None:
    assert (ranks / "stdout.txt").read_text().count("pretrained a cnn encoder with rotation") == 1
    assert {p.name for p in (ranks / "encoder").iterdir()} == {"encoder.safetensors", "config.json"}


def test_resuming_with_another_number_of_processes_is_refused(ranks: Path) -> None:
    from tests.helpers.ddp_worker import run_loop
    from video2reward.training.loop import TrainingError

    with pytest.raises(TrainingError, match=r"written by 2 process\(es\), this run has 1.*same number"):
        run_loop(ranks / "loop-cut", resume=True)  # the 2-process checkpoint, in this one process
