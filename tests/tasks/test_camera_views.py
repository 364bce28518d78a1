"""The camera-shift split (test_cam/): deterministic, labelled like the other splits, seen through views the other
splits never use, and leaving every byte of the other splits as it was."""

from __future__ import annotations

import json

import numpy as np
import pytest

from video2reward.demo.generate import generate_demo_data
from video2reward.evaluation.metrics import load_labels
from video2reward.tasks import TASKS
from video2reward.tasks.views import (
    BACKGROUND,
    CLASSIC_VIEWS,
    METAWORLD_VIEWS,
    crop_window,
    low_resolution,
    swap_colors,
    tint_background,
    view_of,
    views_for,
)
from video2reward.video.io import read_frames

SMALL = dict(tasks=["pendulum"], n_train=1, n_test_expert=1, n_test_fail=2, n_test_partial=0, short_side=32,
             progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """pendulum twice with the camera shift (seed 0) and once without it."""
    out = {}
    for name, shift in (("a", True), ("b", True), ("without", False)):
        folder = tmp_path_factory.mktemp(name)
        out[name] = generate_demo_data(folder, camera_shift=shift, **SMALL)["pendulum"]
    return out


def _files(folder, under=""):
    root = folder / under if under else folder
    return sorted(p.relative_to(folder).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.slow
def test_layout_and_labels(runs):
    cam = runs["a"] / "test_cam"
    labels = json.loads((cam / "labels.json").read_text(encoding="utf-8"))
    assert sorted(labels["videos"]) == ["test_expert/ep_000.mp4", "test_fail/ep_000.mp4", "test_fail/ep_001.mp4"]
    names = [v.name for v in CLASSIC_VIEWS]
    assert sorted(labels["views"]) == sorted(names) and sorted(labels["goal_images"]) == sorted(names)
    for view, image in labels["goal_images"].items():
        assert (cam / image).is_file()
    for key, video in labels["videos"].items():
        split, name = key.split("/")
        index = int(name[3:6])
        assert video["view"] == CLASSIC_VIEWS[index % len(CLASSIC_VIEWS)].name  # views in turn
        assert video["success"] is (split == "test_expert")
        assert video["policy"] == ("expert" if split == "test_expert" else ("random", "stalled")[index % 2])
        assert len(video["dense"]) == video["num_frames"] == len(read_frames(cam / key))
    assert load_labels(cam) == labels  # evaluation reads it as any data folder's labels


@pytest.mark.slow
def test_generated_deterministically(runs):
    """Same seed: the same labels, the same video bytes and the same goal images."""
    a, b = runs["a"] / "test_cam", runs["b"] / "test_cam"
    assert _files(a) == _files(b)
    for relative in _files(a):
        assert (a / relative).read_bytes() == (b / relative).read_bytes(), relative


@pytest.mark.slow
def test_other_splits_are_byte_identical(runs):
    """Adding test_cam/ changes no byte of train/, test_expert/, test_fail/ or labels.json."""
    with_cam, without = runs["a"], runs["without"]
    assert not (without / "test_cam").exists()
    assert [f for f in _files(with_cam) if not f.startswith("test_cam/")] == _files(without)
    for relative in _files(without):
        assert (with_cam / relative).read_bytes() == (without / relative).read_bytes(), relative


@pytest.mark.slow
def test_views_are_new_episodes_seen_differently(runs):
    """test_cam episodes are not copies of test_expert's, and their frames show the view shift (the crop view:
    another frame size than the training camera's)."""
    main, cam = runs["a"], runs["a"] / "test_cam"
    main_dense = [v["dense"] for v in load_labels(main)["videos"].values()]
    assert all(v["dense"] not in main_dense for v in load_labels(cam)["videos"].values())
    crop = read_frames(cam / "test_expert/ep_000.mp4")  # view 0: crop
    assert crop.shape[1:3] != read_frames(main / "test_expert/ep_000.mp4").shape[1:3]


def test_frame_shifts():
    rng = np.random.default_rng(0)
    frame = np.full((40, 60, 3), 255, np.uint8)
    frame[10:20, 10:20] = (200, 40, 40)  # a red patch on white
    assert crop_window(frame).shape == (32, 53, 3)
    swapped = swap_colors(frame)
    assert tuple(swapped[15, 15]) == (40, 200, 40) and tuple(swapped[0, 0]) == (255, 255, 255)  # red -> green
    tinted = tint_background(frame)
    assert tuple(tinted[0, 0]) == tuple(BACKGROUND) and tuple(tinted[15, 15]) == (200, 40, 40)
    noisy = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    soft = low_resolution(noisy)
    assert soft.shape == noisy.shape and soft.std() < 0.5 * noisy.std()  # fine detail is gone


def test_views_by_task():
    assert views_for(TASKS["pendulum"]) == CLASSIC_VIEWS
    assert views_for(TASKS["reach"]) == METAWORLD_VIEWS
    assert all(v.name != "corner" for v in METAWORLD_VIEWS)  # never the training camera as it stands
    assert [view_of(i, CLASSIC_VIEWS).name for i in range(5)] == [v.name for v in CLASSIC_VIEWS] + ["crop"]


@pytest.mark.slow
def test_moved_metaworld_camera_sees_another_picture():
    """A moved training camera renders the same state differently; an unmoved one exactly as before."""
    task = TASKS["reach"]
    moved = next(v for v in METAWORLD_VIEWS if v.camera == "corner" and v.offset != (0.0, 0.0, 0.0))
    frames = []
    for view_env in (task.make_env(render_mode="rgb_array", max_episode_steps=5), moved.make_env(task)):
        try:
            view_env.reset(seed=3)
            frames.append(view_env.render().astype(int))
        finally:
            view_env.close()
    assert frames[0].shape == frames[1].shape
    assert np.abs(frames[0] - frames[1]).mean() > 10  # a different picture of the same state
