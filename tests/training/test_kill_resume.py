"""`kill -9` in the middle of `v2r train`: the run loses at most one checkpoint interval, `--resume` continues it,
and the final weights equal those of an uninterrupted run bit for bit (CPU, fixed seed, one thread). Unlike
tests/training/test_loop.py (a Ctrl-C the loop sees and answers with a clean checkpoint), nothing here gets a
chance to clean up: the process dies wherever it is, possibly while writing a checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from video2reward.testing.synthetic import write_square_dataset

pytestmark = pytest.mark.slow  # a real `kill -9` of `v2r train` in a subprocess, twice its training

STEPS, EVERY = 60, 10
TRAIN = ["--pretrain", "none", "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--image-size", "32",
         "--batch-size", "16", "--frames-per-video", "8", "--warmup-steps", "5", "--threads", "1",
         "--device", "cpu", "--seed", "3", "--quiet"]


def v2r(*args: str) -> list[str]:
    return [sys.executable, "-m", "video2reward.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def test_kill_9_mid_training_then_resume_equals_the_uninterrupted_run(tmp_path: Path) -> None:
    data = write_square_dataset(tmp_path / "data", n_train=3, n_test=1)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(v2r("train", str(data / "train"), "--out", str(whole), *TRAIN), env=env(), check=True,
                   capture_output=True)

    proc = subprocess.Popen(v2r("train", str(data / "train"), "--out", str(killed), *TRAIN), env=env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = killed / "members" / "0" / "checkpoint" / "state.json"  # the default head's first member (progress)
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)  # as soon as the first checkpoint is there: mid-run, maybe mid-write
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed; raise STEPS"
    assert not (killed / "model.safetensors").exists()
    saved = json.loads(state.read_text())["step"]
    assert saved % EVERY == 0 and EVERY <= saved < STEPS // 2  # at most one interval lost (each member: STEPS/2)

    resumed = subprocess.run(v2r("train", str(data / "train"), "--out", str(killed), *TRAIN, "--resume"),
                             env=env(), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(str(whole / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed weights differ from the uninterrupted run"
    assert json.loads((whole / "config.json").read_text())["weights_sha256"] == \
        json.loads((killed / "config.json").read_text())["weights_sha256"]
