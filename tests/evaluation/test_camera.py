"""`v2r eval` on data with a test_cam/ split: VOC from other cameras beside the in-view VOC, and with each
camera's goal image for models that read a goal."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from video2reward.cli import main
from video2reward.demo.generate import labels_json
from video2reward.evaluation.camera import add_camera_shift, reads_goal
from video2reward.evaluation.data_dir import evaluate_data_dir_with_near_misses
from video2reward.evaluation.metrics import EvalResult
from video2reward.inference.model import RewardModel
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model
from video2reward.video.io import write_video


def _mirror(frames: np.ndarray) -> np.ndarray:
    """The other camera: the scene mirrored and in other colours."""
    return np.ascontiguousarray(frames[:, :, ::-1, ::-1])


def _add_test_cam(root):
    """root/test_cam/: two expert videos (one moving backwards in the mirror: a reward that reads the picture,
    not the task, gets it wrong), one failure, labels with views and a goal image per view."""
    cam = root / "test_cam"
    videos = {}
    for i, (view, frames) in enumerate((("same", moving_square(22, 32, y=10)),
                                        ("mirror", _mirror(moving_square(22, 32, y=12))))):
        write_video(cam / "test_expert" / f"ep_{i:03d}.mp4", frames, fps=10)
        videos[f"test_expert/ep_{i:03d}.mp4"] = {"split": "test_expert", "success": True, "view": view,
                                                  "dense": [float(k) for k in range(22)], "num_frames": 22}
    write_video(cam / "test_fail" / "ep_000.mp4", moving_square(22, 32, stop=0.2), fps=10)
    videos["test_fail/ep_000.mp4"] = {"split": "test_fail", "success": False, "view": "same",
                                      "dense": [0.0] * 22, "num_frames": 22}
    (cam / "goals").mkdir()
    goals = {"same": moving_square(22, 32, y=10)[-1:], "mirror": _mirror(moving_square(22, 32, y=12))[-1:]}
    for view, frame in goals.items():
        Image.fromarray(frame[0]).save(cam / "goals" / f"{view}.png")
    labels = {"task": "squares", "videos": videos, "goal_images": {v: f"goals/{v}.png" for v in goals}}
    (cam / "labels.json").write_text(labels_json(labels), encoding="utf-8")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = write_square_dataset(tmp_path_factory.mktemp("cam"), n_train=3, n_test=2)
    _add_test_cam(root)
    return root


@pytest.fixture(scope="module")
def models(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    fast = replace(TrainConfig(), pretrain="none", steps=3, batch_size=16, frames_per_video=4, warmup_steps=1,
                   image_size=16, threads=1)
    return {head: train_reward_model([data / "train"], out / head, replace(fast, head=head), progress=False).model
            for head in ("pixel-ridge", "progress")}


def test_camera_fields_filled_in(data, models):
    for head, model in models.items():
        result, *_ = evaluate_data_dir_with_near_misses(model, data, progress=False)
        assert result.n_cam == 2 and -1 <= result.voc_cam <= 1 and 0 <= result.auroc_cam <= 1
        assert result.dense_cam is not None
        assert reads_goal(model) == (head == "progress")
        assert math.isnan(result.voc_cam_goal) == (head == "pixel-ridge")
        assert math.isnan(result.voc_cam_relative) == (head == "pixel-ridge")  # no encoder features
        assert math.isnan(result.auroc_cam_relative) == (head == "pixel-ridge")
        assert EvalResult.from_json(result.to_json()).auroc_cam_relative == pytest.approx(result.auroc_cam_relative,
                                                                                          nan_ok=True)
        # the in-view numbers do not depend on test_cam/
        plain, *_ = evaluate_data_dir_with_near_misses(model, data, progress=False, camera_shift=False)
        assert plain.voc == result.voc and plain.n_cam == 0 and math.isnan(plain.voc_cam)


def test_pixel_floor_fails_on_the_mirror(data, models):
    """The pixel floor orders the same-camera video and gets the mirrored one backwards: voc_cam shows it."""
    result = add_camera_shift(EvalResult(1.0, 1.0, None, 0, 0), models["pixel-ridge"], data, progress=False)
    rows = {r["video"]: r["voc"] for r in evaluate_rows(models["pixel-ridge"], data)}
    assert rows["test_expert/ep_000.mp4"] > 0.8 and rows["test_expert/ep_001.mp4"] < 0.0
    assert result.voc_cam == pytest.approx(np.mean(list(rows.values())))


def evaluate_rows(model, data):
    from video2reward.evaluation.camera import _score_split
    from video2reward.evaluation.metrics import video_voc

    rewards = _score_split(model, data / "test_cam", "test_expert", skip_bad=False, progress=False)
    return [{"video": k, "voc": video_voc(v)} for k, v in rewards.items()]


def test_json_round_trip_and_old_results():
    result = EvalResult(0.9, 1.0, 0.5, 2, 2, voc_cam=0.4, auroc_cam=float("nan"), dense_cam=0.3, n_cam=2)
    back = EvalResult.from_json(result.to_json())
    assert back.voc_cam == 0.4 and math.isnan(back.auroc_cam) and back.dense_cam == 0.3 and back.n_cam == 2
    assert json.loads(result.to_json())["auroc_cam"] is None
    old = json.loads(result.to_json())
    for key in ("voc_cam", "auroc_cam", "dense_cam", "voc_cam_goal", "n_cam"):
        del old[key]
    assert math.isnan(EvalResult.from_json(json.dumps(old)).voc_cam)  # eval.json written before test_cam/


def test_cli_eval_reports_other_cameras(data, models, tmp_path, capsys):
    model_dir = tmp_path / "m"
    models["progress"].save(model_dir)
    assert main(["eval", str(model_dir), str(data), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "VOC, other cameras (test_cam)" in out and "with each camera's goal image" in out
    saved = json.loads((model_dir / "eval.json").read_text())
    assert saved["n_cam"] == 2 and saved["voc_cam"] is not None


def test_relative_distance_runs_from_zero_towards_one():
    import torch

    from video2reward.inference.relative import relative_progress

    goal = torch.zeros(2)
    features = torch.tensor([[4.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(relative_progress(features, goal, "distance"), [0.0, 0.5, 0.75, 1.0])


def test_relative_projection_counts_only_movement_towards_the_goal():
    import torch

    from video2reward.inference.relative import relative_progress

    goal = torch.tensor([4.0, 0.0, 0.0])  # the line from the first frame (origin) to the goal is the x axis
    features = torch.tensor([[0.0, 0.0, 0.0],
                             [1.0, 0.0, 0.0],    # a quarter of the way
                             [1.0, 3.0, -2.0],   # the same, plus a sideways change: still a quarter
                             [-2.0, 0.0, 0.0],   # moved away from the goal: negative
                             [4.0, 0.0, 0.0],    # at the goal
                             [6.0, 1.0, 0.0]])   # past it
    np.testing.assert_allclose(relative_progress(features, goal), [0.0, 0.25, 0.25, -0.5, 1.0, 1.5])
    # the same by hand for random features: <z_t - z_0, g - z_0> / |g - z_0|^2
    gen = torch.Generator().manual_seed(0)
    z, g = torch.randn(7, 5, generator=gen), torch.randn(5, generator=gen)
    line = g - z[0]
    expected = [float((z[t] - z[0]).dot(line) / line.dot(line)) for t in range(7)]
    np.testing.assert_allclose(relative_progress(z, g, "projection"), expected, rtol=1e-5, atol=1e-6)
    # the distance reading sees the sideways change as moving away
    assert relative_progress(features, goal, "distance")[2] < relative_progress(features, goal, "distance")[1]
    with pytest.raises(ValueError, match="projection, distance"):
        relative_progress(features, goal, "angle")


def test_cli_scores_relative_goal_progress(data, models, tmp_path):
    model_dir = tmp_path / "m"
    models["progress"].save(model_dir)
    goal = data / "test_cam" / "goals" / "same.png"
    out = tmp_path / "rel.jsonl"
    assert main(["score", str(model_dir), str(data / "test_cam" / "test_expert"), "--goal", str(goal), "--relative",
                 "--out", str(out), "--quiet"]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 2 and all(line["rewards"][0] == 0.0 and len(line["rewards"]) == 22 for line in lines)
    distance_out = tmp_path / "rel_distance.jsonl"
    assert main(["score", str(model_dir), str(data / "test_cam" / "test_expert"), "--goal", str(goal), "--relative",
                 "--relative-reading", "distance", "--out", str(distance_out), "--quiet"]) == 0
    distance = [json.loads(line) for line in distance_out.read_text().splitlines()]
    assert [d["rewards"][0] for d in distance] == [0.0, 0.0] and distance[0]["rewards"] != lines[0]["rewards"]
    assert main(["score", str(model_dir), str(data / "test_expert"), "--relative", "--out", str(out), "--quiet"]) == 2


def test_spatial_features_are_the_encoders_flattened_feature_map(data, models):
    """`embed_frames(spatial=True)` is the CNN's last feature map, flattened frame by frame (not the pooled vector
    the head reads); a model without one says so; 'auto' picks the map where there is one."""
    import torch

    from video2reward.errors import ConfigError
    from video2reward.inference.relative import use_feature_map
    from video2reward.inference.scorer import frames_to_tensor
    from video2reward.video.io import read_frames

    model = RewardModel.load(models["progress"].path, precision="fp32")  # compared with the float32 encoder below
    frames = read_frames(data / "test_expert" / "ep_0.mp4", model.image_size, model.frame_fit)[:5]
    spatial = model.embed_frames(frames, spatial=True)
    with torch.inference_mode():
        fmap = model.head.encoder.feature_map(frames_to_tensor(frames, model.device))  # (5, C, h, w)
    assert fmap.ndim == 4 and spatial.shape == (5, fmap[0].numel())
    torch.testing.assert_close(spatial, fmap.flatten(1))
    assert spatial.shape[1] != model.embed_frames(frames).shape[1]
    assert use_feature_map(model) and use_feature_map(model, "map") and not use_feature_map(model, "pooled")

    class NoMap(torch.nn.Module):  # a head whose encoder has no feature map (as a ViT's)
        def __init__(self):
            super().__init__()
            self.encoder = torch.nn.Identity()

    bare = type(model).__new__(type(model))
    bare.head, bare.config = NoMap(), {"head": "progress", "encoder": {"name": "vit"}}
    assert not bare.has_feature_map and not use_feature_map(bare)
    with pytest.raises(ConfigError, match="progress model has vit: use its pooled features"):
        bare.feature_map(frames_to_tensor(frames, model.device))


def test_cli_relative_features_map_and_pooled(data, models, tmp_path):
    model_dir = tmp_path / "m"
    models["progress"].save(model_dir)
    goal = data / "test_cam" / "goals" / "same.png"
    readings = {}
    for features in ("map", "pooled", "auto"):
        out = tmp_path / f"{features}.jsonl"
        assert main(["score", str(model_dir), str(data / "test_cam" / "test_expert"), "--goal", str(goal),
                     "--relative", "--relative-features", features, "--out", str(out), "--quiet"]) == 0
        readings[features] = [json.loads(line)["rewards"] for line in out.read_text().splitlines()]
    assert readings["auto"] == readings["map"] != readings["pooled"]
    # the CLI spells the choices out (importing relative_reward would slow every command's start): keep them equal
    from video2reward.cli import build_parser
    from video2reward.inference.relative import FEATURES, READINGS

    score = build_parser()._subparsers._group_actions[0].choices["score"]
    choices = {a.dest: tuple(a.choices) for a in score._actions if a.choices}
    assert choices["relative_reading"] == READINGS and choices["relative_features"] == FEATURES
    assert all(r[0] == 0.0 for r in readings["map"] + readings["pooled"])
