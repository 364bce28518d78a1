"""`v2r train --head X [--negatives DIR]` for every learned head, a handful of steps each, then `v2r score`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from video2reward.cli import main
from video2reward.rewards.registry import HEAD_NAMES as HEADS
from video2reward.rewards.registry import learns_from_negatives
from video2reward.testing.synthetic import failed_squares, write_square_dataset
from video2reward.video.io import read_frames, write_video

TINY = ["--steps", "6", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps",
        "2", "--triplets-per-video", "8", "--threads", "1", "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = write_square_dataset(tmp_path_factory.mktemp("heads") / "data", n_train=3, n_test=1)
    for i, frames in enumerate(failed_squares(2)):
        write_video(root / "failed" / f"f{i}.mp4", frames, fps=10)
    return root


@pytest.mark.parametrize("head", [h for h in HEADS if h != "pixel-ridge"])
def test_train_then_score_with_every_head(head: str, data: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    negatives = ["--negatives", str(data / "failed")] if learns_from_negatives(head) else []
    assert main(["train", str(data / "train"), "--out", str(model), "--head", head, *negatives, *TINY]) == 0
    config = json.loads((model / "config.json").read_text())
    assert config["head"] == head and config["encoder"]["name"] == "cnn"
    assert len(config["training"].get("negatives", [])) == (2 if negatives else 0)
    out = tmp_path / "r.jsonl"
    video = data / "test_expert" / "ep_0.mp4"
    assert main(["score", str(model), str(video), "--out", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert len(record["rewards"]) == len(record["sigma"]) == len(read_frames(video))
    assert ("success_prob" in record) == (head == "success")
    if head == "success":
        assert len(record["success_prob"]) == len(record["rewards"])


def test_negatives_with_a_head_that_does_not_use_them_is_an_error(data: Path, tmp_path: Path, capsys) -> None:
    args = ["train", str(data / "train"), "--out", str(tmp_path / "m"), "--negatives", str(data / "failed")]
    assert main([*args, "--head", "goal-distance", *TINY]) == 2
    assert "--negatives: the goal-distance head does not learn from failed videos" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()  # refused before any work
    assert main([*args[:-1], str(tmp_path / "nowhere"), "--head", "rank", *TINY]) == 2
    assert "nowhere" in capsys.readouterr().err
    inside = ["train", str(data), "--out", str(tmp_path / "m"), "--negatives", str(data / "failed")]
    assert main([*inside, "--head", "rank", *TINY]) == 2  # data/ holds failed/: they would be demonstrations too
    assert "also under the demonstration folders" in capsys.readouterr().err


def test_train_help_lists_the_heads(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert all(h in text for h in HEADS) and "--negatives" in text and "--success-fraction" in text
