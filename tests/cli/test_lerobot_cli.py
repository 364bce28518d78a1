"""A LeRobotDataset end to end, as a user runs it: `v2r demo-data --format lerobot`, `v2r train` on its train/
dataset, `v2r score` (JSONL and parquet), `v2r eval`, `v2r report`, with the rewards per episode identical to
scoring the same episodes written as separate mp4 files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from video2reward.cli import main
from video2reward.video.io import find_videos
from video2reward.video.lerobot import DatasetSelection

pytestmark = pytest.mark.slow
MAIN = "observation.images.main"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(lerobot data, mp4 data of the same seed, a model trained on the dataset's train/)."""
    root = tmp_path_factory.mktemp("lerobot_cli")
    common = ["--tasks", "pendulum", "--n-train", "3", "--n-test-expert", "2", "--n-test-fail", "2",
              "--no-camera-shift", "--quiet"]
    main(["demo-data", str(root / "lr"), "--format", "lerobot", *common])
    main(["demo-data", str(root / "mp4"), *common])
    model = root / "model"
    main(["train", str(root / "lr" / "pendulum" / "train"), "--camera-key", MAIN, "--out", str(model),
          "--head", "progress", "--pretrain", "none", "--steps", "20", "--threads", "1", "--quiet"])
    return root / "lr" / "pendulum", root / "mp4" / "pendulum", model


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_demo_data_writes_v3_datasets_with_two_cameras(data) -> None:
    lr, _, _ = data
    for split, count in (("train", 3), ("test_expert", 2), ("test_fail", 2), ("test_partial", 2)):
        info = json.loads((lr / split / "meta" / "info.json").read_text())
        assert info["codebase_version"] == "v3.0" and info["total_episodes"] == count
        assert [k for k, f in info["features"].items() if f["dtype"] == "video"] == [MAIN, "observation.images.crop"]
    labels = json.loads((lr / "labels.json").read_text())
    assert "test_fail/episode_000001" in labels["videos"] and labels["camera_keys"][0] == MAIN
    crop = find_videos([lr / "train"], DatasetSelection("observation.images.crop"))
    assert len(crop) == 3


def test_model_records_the_camera_and_scores_like_separate_mp4s(data, tmp_path: Path) -> None:
    lr, mp4, model = data
    config = json.loads((model / "config.json").read_text())
    assert config["training"]["config"]["camera_key"] == MAIN
    assert [Path(v).name for v in config["training"]["videos"]] == [f"episode_{i:06d}" for i in range(3)]
    # no --camera-key: the model's own camera is read
    main(["score", str(model), str(lr / "test_expert"), str(lr / "test_fail"), "--out", str(tmp_path / "lr.jsonl"),
          "--quiet"])
    main(["score", str(model), str(mp4 / "test_expert"), str(mp4 / "test_fail"), "--out",
          str(tmp_path / "mp4.jsonl"), "--quiet"])
    got, want = _jsonl(tmp_path / "lr.jsonl"), _jsonl(tmp_path / "mp4.jsonl")
    assert [Path(r["video"]).name for r in got] == ["episode_000000", "episode_000001"] * 2
    assert len(got) == len(want) == 4
    for a, b in zip(got, want):
        assert len(a["rewards"]) == len(b["rewards"])
        np.testing.assert_allclose(a["rewards"], b["rewards"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(a["sigma"], b["sigma"], atol=1e-6, rtol=0)


def test_progress_parquet_has_one_row_per_decoded_frame(data, tmp_path: Path) -> None:
    lr, _, model = data
    out = tmp_path / "progress.parquet"
    main(["score", str(model), str(lr / "test_fail"), "--out", str(out), "--quiet"])
    table = pq.read_table(out)
    assert table.column_names == ["index", "episode_index", "frame_index", "timestamp", "progress",
                                  "progress_sigma", "success_prob", "progress_sparse", "progress_dense", "video"]
    main(["score", str(model), str(lr / "test_fail"), "--out", str(tmp_path / "same.jsonl"), "--quiet"])
    records = _jsonl(tmp_path / "same.jsonl")
    assert table.num_rows == sum(len(r["rewards"]) for r in records)
    frames = pq.read_table(lr / "test_fail" / "data" / "chunk-000" / "file-000.parquet")
    assert table.column("index").to_pylist() == frames.column("index").to_pylist()  # the dataset's own indices
    assert table.column("episode_index").to_pylist() == frames.column("episode_index").to_pylist()
    assert table.column("frame_index").to_pylist() == frames.column("frame_index").to_pylist()
    np.testing.assert_allclose(table.column("progress").to_numpy(), np.concatenate([r["rewards"] for r in records]),
                               atol=1e-5)
    np.testing.assert_array_equal(table.column("progress_sparse").to_numpy(),
                                  np.clip(table.column("progress").to_numpy(), 0, 1))  # what RA-BC reads
    assert table.column("success_prob").null_count == table.num_rows  # a progress model has no success head


def test_eval_and_report_read_the_datasets(data, tmp_path: Path, capsys) -> None:
    lr, _, model = data
    main(["eval", str(model), str(lr), "--out", str(tmp_path / "eval.json"), "--json"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["auroc"] is not None and result["auroc_near_miss"] is not None
    assert result["dense_spearman"] is not None  # labels.json's SPLIT/episode_NNNNNN keys matched
    main(["report", str(model), str(lr / "test_expert"), str(lr / "test_fail"), "--out", str(tmp_path / "page"),
          "--quiet"])
    page = (tmp_path / "page" / "index.html").read_text()
    assert "episode_000001" in page and "VOC" in page


def test_bad_camera_key_is_one_line(data, tmp_path: Path, capsys) -> None:
    lr, _, model = data
    assert main(["score", str(model), str(lr / "test_fail"), "--camera-key", "observation.images.top", "--out",
                 str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "observation.images.main, observation.images.crop" in err
