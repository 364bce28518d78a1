"""Logs that read right in a file: with output sent to a file, `v2r train` and `v2r eval` write no redrawn
progress bars (no carriage returns), only a handful of lines, one per stage that ended, each with its time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from video2reward.core.progress import ENV
from video2reward.testing.synthetic import write_square_dataset

pytestmark = pytest.mark.slow  # trains a (tiny) model in a subprocess

TINY = ["--steps", "40", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "5",
        "--pretrain-steps", "10", "--threads", "1"]


def run_to_file(args: list[str], log: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env["OMP_NUM_THREADS"] = "1"
    with log.open("w") as f:  # stdout and stderr into one file, as `v2r ... > log 2>&1` does
        subprocess.run([sys.executable, "-m", "video2reward.cli", *args], stdout=f, stderr=subprocess.STDOUT,
                       env=env, check=True, timeout=600)
    return log.read_text()


def stage_line(text: str, stage: str) -> str:
    found = [line for line in text.splitlines() if line.startswith(f"{stage}: ")]
    assert len(found) == 1, f"no single end line for {stage!r} in:\n{text}"
    assert re.search(r" in \d+\.\d s\b", found[0]), found[0]
    return found[0]


def test_train_and_eval_logs_are_a_line_per_stage(tmp_path: Path) -> None:
    data = write_square_dataset(tmp_path / "data")
    text = run_to_file(["train", str(data / "train"), "--out", str(tmp_path / "model"), *TINY], tmp_path / "train.log")
    assert "\r" not in text and len(text) < 2000, text
    lines = text.splitlines()
    assert len(lines) <= 10, text
    stage_line(text, "decoding videos")
    stage_line(text, "pretraining (rotation)")
    for member in ("progress", "rank"):  # progress+rank: each member's training ends with its steps and loss
        assert "loss " in stage_line(text, f"training {member}")
        assert "20 steps in" in stage_line(text, f"training {member}")
    assert lines[-2].startswith("trained progress+rank head") and lines[-1].startswith("saved ")
    order = [next(i for i, line in enumerate(lines) if line.startswith(s)) for s in
             ("decoding videos", "pretraining", "ensemble member 1/2", "training progress", "ensemble member 2/2",
              "training rank", "trained ")]
    assert order == sorted(order), text  # stdout's lines and stderr's in the order they happened

    text = run_to_file(["eval", str(tmp_path / "model"), str(data), "--out", str(tmp_path / "eval.json")],
                       tmp_path / "eval.log")
    assert "\r" not in text
    for split in ("test_expert", "test_fail"):
        assert "frames/s" in stage_line(text, f"scoring data/{split}")
