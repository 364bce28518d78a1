"""`torchrun --nproc_per_node 2 -m video2reward.cli score` (gloo, CPU): a folder of videos and a LeRobotDataset
scored by two processes give the bytes one process writes (JSONL and parquet), and a run killed with kill -9
resumes, scoring only the videos that have no part yet."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.tiny_model import tiny_model
from video2reward.cli import main
from video2reward.inference.sharded import parts_folder
from video2reward.testing.bad_datasets import KEYS, make_dataset
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.video.io import write_video

pytestmark = pytest.mark.slow  # torchrun processes
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (torchrun starts its workers in sessions of their own: killpg misses them)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
            "-m", "video2reward.cli", *args]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("sharded")
    videos = write_square_dataset(root / "videos", n_train=3, n_test=2)
    dataset, _ = make_dataset(root / "lerobot")
    model = root / "model"
    tiny_model().save(model)
    return model, videos, dataset


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_two_processes_write_the_bytes_of_one(inputs, tmp_path: Path, suffix: str) -> None:
    model, videos, dataset = inputs
    args = [str(model), str(videos), str(dataset), "--camera-key", KEYS[1], "--quiet"]
    one, two = tmp_path / f"one{suffix}", tmp_path / f"two{suffix}"
    assert main(["score", *args, "--out", str(one)]) == 0
    done = subprocess.run(torchrun("score", *args, "--out", str(two)), env=ENV, capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "scored 12 videos" in done.stdout and "in 2 processes" in done.stdout  # 7 videos + 5 episodes
    assert one.read_bytes() == two.read_bytes()
    assert not parts_folder(two).exists()  # merged, then removed


def test_killed_run_resumes_with_the_missing_videos_only(inputs, tmp_path: Path) -> None:
    model, _, _ = inputs
    folder = tmp_path / "many"
    for i in range(24):  # long enough that the run is still going when a few parts exist
        write_video(folder / f"v{i:02d}.mp4", moving_square(160, 64, y=8 + i), fps=10)
    out = tmp_path / "rewards.jsonl"
    args = ["score", str(model), str(folder), "--out", str(out), "--quiet"]
    log = tmp_path / "first-run.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(torchrun(*args), env=ENV, stdout=sink, stderr=subprocess.STDOUT)
    parts = parts_folder(out)
    deadline = time.monotonic() + 120
    while len(list(parts.glob("*.npz"))) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    for pid in [proc.pid, *descendants(proc.pid)]:  # torchrun and both workers, mid-run
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait()
    time.sleep(0.5)
    finished = sorted(p.name for p in parts.glob("[0-9]*.npz"))
    assert 4 <= len(finished) < 24, (finished, log.read_text(errors="replace")[-3000:])
    assert not out.exists()
    stamps = {name: (parts / name).stat().st_mtime_ns for name in finished}
    # a rank of the rerun reads the parts before scoring: they must not change (not scored again)
    rerun = subprocess.Popen(torchrun(*args), env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen_again = set()
    while rerun.poll() is None:
        for name, stamp in stamps.items():
            path = parts / name
            if path.exists() and path.stat().st_mtime_ns != stamp:
                seen_again.add(name)
        time.sleep(0.01)
    stdout, stderr = rerun.communicate()
    assert rerun.returncode == 0, stderr[-3000:]
    assert f"resuming: {len(finished)} of 24 videos already scored" in stdout
    assert not seen_again
    whole = tmp_path / "whole.jsonl"
    assert main(["score", str(model), str(folder), "--out", str(whole), "--quiet"]) == 0
    assert out.read_bytes() == whole.read_bytes()
