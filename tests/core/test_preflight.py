"""Unwritable output and full disks are errors in the first seconds of `v2r train` / `v2r score`, naming the
folder and the reason, not after the work is done.

Tests may run as root, for whom chmod does not block writes: the chmod case is skipped for root, and two
mechanisms that hold for every user stand in for it: an --out path that runs through a file (the OS refuses
it, root or not) and a simulated read-only file system (EROFS from the probe write)."""

from __future__ import annotations

import errno
import os
from collections import namedtuple
from pathlib import Path

import pytest
import torch.nn as nn

import video2reward.core.preflight as preflight
import video2reward.inference.scoring as scoring
from video2reward.cli import main
from video2reward.core.preflight import (
    MARGIN_BYTES,
    check_output_folder,
    training_bytes,
)
from video2reward.errors import ConfigError
from video2reward.testing.synthetic import write_square_dataset

TINY = ["--pretrain", "none", "--steps", "3", "--image-size", "32", "--batch-size", "16", "--frames-per-video", "8",
        "--warmup-steps", "1", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("preflight") / "data", n_train=2, n_test=1)


@pytest.fixture(scope="module")
def model(data: Path) -> Path:
    assert main(["train", str(data / "train"), "--out", str(data.parent / "model"), *TINY]) == 0
    return data.parent / "model"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes through chmod")
def test_read_only_folder_is_refused(tmp_path: Path, data: Path, capsys) -> None:
    (locked := tmp_path / "locked").mkdir()
    locked.chmod(0o555)
    try:
        assert main(["train", str(data / "train"), "--out", str(locked / "m"), *TINY]) == 2
    finally:
        locked.chmod(0o755)
    assert "cannot write the model here (Permission denied)" in capsys.readouterr().err


def test_out_through_a_file_fails_before_any_video_is_read(tmp_path: Path, capsys) -> None:
    (blocker := tmp_path / "a_file").write_text("x")
    (videos := tmp_path / "videos").mkdir()
    (videos / "broken.mp4").write_bytes(b"not a video")  # decoding first would report this file instead
    assert main(["train", str(videos), "--out", str(blocker / "model"), *TINY]) == 2
    err = capsys.readouterr().err
    assert f"{blocker / 'model'}: cannot write the model here (Not a directory)" in err and "broken" not in err


def test_read_only_file_system_is_named(tmp_path: Path, monkeypatch) -> None:
    def read_only(self, data):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    with pytest.raises(ConfigError, match=r"out: cannot write the model here \(Read-only file system\)"):
        check_output_folder(tmp_path / "out", "the model")


def test_too_little_disk_stops_training_before_the_first_step(tmp_path: Path, data: Path, monkeypatch,
                                                              capsys) -> None:
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: usage(10 << 20, 9 << 20, 1 << 20))
    out = tmp_path / "m"
    assert main(["train", str(data / "train"), "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    member = out / "members" / "0"  # the default head's first member (progress) stops before its first step
    assert f"{member}: 1 MB free on its disk, but writing the checkpoints and model of training progress needs " \
           f"about " in err
    assert not (member / "checkpoint").exists() and not (out / "model.safetensors").exists()


def test_training_bytes_counts_weights_moments_and_the_renames() -> None:
    layer = nn.Linear(10, 10)  # 110 float32: 440 bytes of weights, 880 of AdamW moments
    assert training_bytes(layer) == 2 * (440 + 880) + 2 * 440 + MARGIN_BYTES
    layer.weight.requires_grad_(False)  # frozen: no moments
    assert training_bytes(layer) == 2 * (440 + 80) + 2 * 440 + MARGIN_BYTES


def test_score_output_problems_come_before_scoring(tmp_path: Path, data: Path, model: Path, capsys) -> None:
    (blocker := tmp_path / "a_file").write_text("x")
    videos = str(data / "test_expert")
    assert main(["score", str(model), videos, "--out", str(blocker / "r.jsonl"), "--quiet"]) == 2
    assert f"{blocker}: cannot write the rewards here (Not a directory)" in capsys.readouterr().err
    assert main(["score", str(model), videos, "--out", str(tmp_path), "--quiet"]) == 2
    assert f"{tmp_path}: is a folder; give --out a file name" in capsys.readouterr().err
    assert main(["score", str(model), videos, "--out", str(tmp_path / "r.jsonl"), "--plot",
                 str(blocker / "plots"), "--quiet"]) == 2
    assert "cannot write plots here (Not a directory)" in capsys.readouterr().err


def test_disk_full_while_scoring_leaves_the_old_output(tmp_path: Path, data: Path, model: Path, monkeypatch,
                                                       capsys) -> None:
    out = tmp_path / "r.jsonl"
    out.write_text("previous results\n")

    def no_space(scored):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(scoring, "jsonl_record", no_space)
    assert main(["score", str(model), str(data / "test_expert"), "--out", str(out), "--quiet"]) == 2
    assert "writing the rewards or plots failed (No space left on device)" in capsys.readouterr().err
    assert out.read_text() == "previous results\n" and [p.name for p in tmp_path.iterdir()] == ["r.jsonl"]


def _probe_many(directory: str) -> None:
    for _ in range(300):
        check_output_folder(directory)


def test_processes_probing_one_folder_at_once_do_not_trip_each_other(tmp_path: Path) -> None:
    """The ranks of a `torchrun ... score` all check the same --out folder at the same moment: one's probe file
    must never be the one another removes (seen as 'cannot write the rewards here (No such file or directory)')."""
    import multiprocessing  # here, not at the top: only this test starts processes

    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_probe_many, args=(str(tmp_path),)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert list(tmp_path.iterdir()) == []  # every probe removed
