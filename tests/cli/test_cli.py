"""End to end through the `v2r` command: train, score, eval on tiny generated videos, and bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from video2reward.cli import main
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.video.io import read_frames, write_video

pytestmark = pytest.mark.slow  # every test scores or evaluates with a model the module trains first

TINY = ["--steps", "40", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8",
        "--warmup-steps", "5", "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = write_square_dataset(tmp_path_factory.mktemp("squares") / "data")
    model = root.parent / "model"
    assert main(["train", str(root / "train"), "--out", str(model), *TINY]) == 0
    return root, model


def test_train_writes_a_model_folder(trained) -> None:
    _, model = trained
    assert {p.name for p in model.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    config = json.loads((model / "config.json").read_text())
    assert config["head"] == "progress+rank" and config["image_size"] == 32  # the default head


def test_score_writes_one_reward_per_decoded_frame(trained, tmp_path: Path) -> None:
    root, model = trained
    out, plots = tmp_path / "rewards.jsonl", tmp_path / "plots"
    given = str(root / "test_expert")
    assert main(["score", str(model), given, str(root / "test_fail" / "ep_0.mp4"), "--out", str(out),
                 "--plot", str(plots), "--quiet"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["video"] for r in records] == [f"{given}/ep_0.mp4", f"{given}/ep_1.mp4",
                                             str(root / "test_fail" / "ep_0.mp4")]
    for r in records:
        assert len(r["rewards"]) == len(r["sigma"]) == len(read_frames(r["video"]))
        assert r["fps"] == pytest.approx(10)
    assert len(list(plots.glob("*.png"))) == 3


def test_eval_prints_and_writes_metrics(trained, tmp_path: Path, capsys) -> None:
    root, model = trained
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), str(root), "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert {"voc", "auroc"} <= set(result) and result["n_expert"] == 2 and result["n_failed"] == 2
    assert "VOC" in capsys.readouterr().out.upper()


def test_eval_reports_near_misses_when_the_data_has_them(trained, tmp_path: Path, capsys) -> None:
    root, model = trained
    out = tmp_path / "eval.json"
    assert main(["eval", str(model), str(root), "--out", str(out), "--quiet"]) == 0
    assert json.loads(out.read_text())["auroc_near_miss"] is None  # no test_partial/: undefined
    assert "near-miss AUROC (last 5)  n/a" in capsys.readouterr().out
    data = tmp_path / "data"
    shutil.copytree(root, data)
    (data / "test_partial").mkdir()
    assert main(["eval", str(model), str(data), "--out", str(out), "--quiet"]) == 0  # empty test_partial/
    assert json.loads(out.read_text())["auroc_near_miss"] is None
    capsys.readouterr()
    for i, stop in enumerate((0.5, 0.6)):  # near misses: the square stops partway, unlike the experts
        write_video(data / "test_partial" / f"ep_{i}.mp4", moving_square(24, 32, stop=stop), fps=10)
    assert main(["eval", str(model), str(data), "--out", str(out), "--quiet"]) == 0
    result = json.loads(out.read_text())
    assert result["n_partial"] == 2 and 0.0 <= result["auroc_near_miss"] <= 1.0
    assert (result["n_expert"], result["n_failed"]) == (2, 2)
    printed = capsys.readouterr().out
    assert f"near-miss AUROC (last 5)  {result['auroc_near_miss']:.3f}" in printed
    assert "test_partial/ep_1.mp4  partial" in printed


def test_pixel_ridge_floor_trains(trained, tmp_path: Path) -> None:
    root, _ = trained
    assert main(["train", str(root / "train"), "--out", str(tmp_path / "floor"), "--head", "pixel-ridge",
                 "--image-size", "32", "--quiet"]) == 0
    assert main(["eval", str(tmp_path / "floor"), str(root), "--out", str(tmp_path / "e.json"), "--quiet"]) == 0


def test_bad_video_is_named_and_skip_bad_goes_on(trained, tmp_path: Path, capsys) -> None:
    root, model = trained
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "broken.mp4").write_bytes(b"\x00\x01garbage" * 100)
    (folder / "good.mp4").write_bytes((root / "test_expert" / "ep_0.mp4").read_bytes())
    out = tmp_path / "r.jsonl"
    assert main(["score", str(model), str(folder), "--out", str(out), "--quiet"]) == 2
    assert "broken.mp4" in capsys.readouterr().err and not out.exists()
    assert main(["score", str(model), str(folder), "--out", str(out), "--skip-bad", "--quiet"]) == 0
    assert "broken.mp4" in capsys.readouterr().err
    assert [json.loads(line)["video"] for line in out.read_text().splitlines()] == [str(folder / "good.mp4")]


def test_empty_folder_and_wrong_model_are_clear_errors(trained, tmp_path: Path, capsys) -> None:
    root, model = trained
    (tmp_path / "empty").mkdir()
    assert main(["train", str(tmp_path / "empty"), "--out", str(tmp_path / "m"), "--quiet"]) == 2
    assert "no videos found" in capsys.readouterr().err
    assert main(["score", str(root), str(root / "test_expert"), "--out", str(tmp_path / "x.jsonl")]) == 2
    assert "model.safetensors" in capsys.readouterr().err


def test_interrupted_training_resumes(tmp_path: Path, trained) -> None:
    root, _ = trained
    args = ["train", str(root / "train"), "--out", str(tmp_path / "m"), *TINY]
    assert main([*args, "--resume"]) == 2  # nothing to resume yet: a clear error, not a silent fresh start


def test_help_runs_as_a_command() -> None:
    out = subprocess.run([sys.executable, "-m", "video2reward.cli", "train", "--help"], capture_output=True,
                         text=True, check=True).stdout
    assert "--image-size" in out and "--encoder" in out and "--steps" in out


def test_score_with_a_goal_image_from_the_scoring_camera(trained, tmp_path: Path) -> None:
    root, model = trained
    goal = tmp_path / "goal"
    write_video(goal, read_frames(root / "test_expert" / "ep_0.mp4")[-1:], fps=1)  # a one-image folder
    out = tmp_path / "g.jsonl"
    assert main(["score", str(model), str(root / "test_expert"), "--out", str(out), "--goal", str(goal),
                 "--quiet"]) == 0
    assert len(out.read_text().splitlines()) == 2
