"""The demo-data generator: folder layout, labels.json, frame counts and determinism, on tiny datasets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from video2reward.demo import DEMO_TASKS, generate_demo_data
from video2reward.errors import ConfigError
from video2reward.evaluation.metrics import load_labels
from video2reward.tasks import TASKS, make_env
from video2reward.tasks.policies import PARTIAL_FRACTION
from video2reward.tasks.rollout import episode_seeds, make_episode, rollout
from video2reward.video.io import read_frames

TINY = dict(n_train=2, n_test_expert=1, n_test_fail=2, short_side=48, progress=False)
FRAME_SIZE = {"pendulum": (48, 48), "mountaincar": (48, 72)}  # (H, W): 500x500 and 600x400 renders
EXPECTED_VIDEOS = [
    "train/ep_000.mp4",
    "train/ep_001.mp4",
    "test_expert/ep_000.mp4",
    "test_fail/ep_000.mp4",
    "test_fail/ep_001.mp4",
    "test_partial/ep_000.mp4",  # as many near misses as failures by default
    "test_partial/ep_001.mp4",
]
CAM_VIDEOS = ["test_cam/test_expert/ep_000.mp4", "test_cam/test_fail/ep_000.mp4", "test_cam/test_fail/ep_001.mp4"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Both tasks twice with seed 0, and pendulum's expert videos once with seed 1."""
    first = tmp_path_factory.mktemp("seed0_a")
    second = tmp_path_factory.mktemp("seed0_b")
    other = tmp_path_factory.mktemp("seed1")
    return {
        "first": (first, generate_demo_data(first, seed=0, **TINY)),
        "second": (second, generate_demo_data(second, seed=0, **TINY)),
        "other": (other, generate_demo_data(other, tasks=["pendulum"], seed=1, **{**TINY, "n_test_fail": 0})),
    }


def _labels(folder):
    return json.loads((folder / "labels.json").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_returns_one_folder_per_task(runs):
    out, folders = runs["first"]
    assert list(folders) == list(DEMO_TASKS)
    for task, folder in folders.items():
        assert folder == out / task
        assert (folder / "labels.json").is_file()


@pytest.mark.slow
def test_every_split_says_how_it_was_rendered(runs):
    _, folders = runs["first"]
    for task, folder in folders.items():
        for split in ("train", "test_expert", "test_fail", "test_partial"):
            facts = json.loads((folder / split / "render.json").read_text(encoding="utf-8"))
            assert facts["task"] == task and facts["flip"] == "none"


@pytest.mark.slow
def test_layout_holds_exactly_the_labelled_videos(runs):
    _, folders = runs["first"]
    for folder in folders.values():
        on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.mp4"))
        assert on_disk == sorted(EXPECTED_VIDEOS + CAM_VIDEOS)  # test_cam/: see test_camera_shift.py
        assert sorted(_labels(folder)["videos"]) == sorted(EXPECTED_VIDEOS)
        assert sorted("test_cam/" + key for key in _labels(folder / "test_cam")["videos"]) == CAM_VIDEOS


@pytest.mark.slow
def test_labels_fields(runs):
    _, folders = runs["first"]
    env_ids = {"pendulum": "Pendulum-v1", "mountaincar": "MountainCar-v0"}
    for task, folder in folders.items():
        labels = _labels(folder)
        assert labels["task"] == task
        assert labels["env_id"] == env_ids[task]
        assert labels["seed"] == 0
        assert isinstance(labels["dense_signal"], str) and len(labels["dense_signal"]) > 20
        for relative, video in labels["videos"].items():
            split = relative.split("/")[0]
            assert video["split"] == split
            assert isinstance(video["dense"], list)
            assert all(isinstance(value, float) for value in video["dense"])
            if split == "test_fail":
                assert video["success"] is False
                assert video["policy"] in ("random", "stalled")
            elif split == "test_partial":
                assert video["success"] is False
                assert video["policy"] == "partial"
                assert isinstance(video["stall_step"], int)
            else:
                assert video["success"] is True
                assert video["policy"] == "expert"
        failures = [v["policy"] for k, v in labels["videos"].items() if k.startswith("test_fail/")]
        assert sorted(failures) == ["random", "stalled"]  # half each
        assert all(("stall_step" in v) == (v["split"] == "test_partial") for v in labels["videos"].values())


@pytest.mark.slow
def test_near_misses_follow_the_expert_until_the_stall_step(runs):
    """A test_partial video is the expert's episode from the same start up to `stall_step`, then idles until
    the expert's length: it leaves the expert's trajectory after the stall and never succeeds."""
    _, folders = runs["first"]
    low, high = PARTIAL_FRACTION
    for task, folder in folders.items():
        spec = TASKS[task]
        env = make_env(spec, render=False)
        try:
            for index in range(2):
                video = _labels(folder)["videos"][f"test_partial/ep_{index:03d}.mp4"]
                start_seed, _ = episode_seeds(0, task, "test_partial", index, 0)  # first attempt: none succeeded
                expert = rollout(env, spec, spec.expert, np.random.default_rng(start_seed), spec.max_steps)
                stall, steps = video["stall_step"], video["num_frames"] - 1
                assert expert.success and steps == expert.steps  # as long as the expert's episode
                assert low * steps - 0.5 <= stall <= high * steps + 0.5
                rounded = [round(v, 6) + 0.0 for v in expert.dense]
                assert video["dense"][: stall + 1] == rounded[: stall + 1]  # the expert's own states until it stalls
                assert video["dense"] != rounded
        finally:
            env.close()


@pytest.mark.slow
def test_near_misses_leave_the_other_splits_unchanged(tmp_path):
    """The near-miss split draws from its own seeds: adding it changes no byte of the other splits' videos
    and no label of theirs (so results measured on data made before it stay valid)."""
    small = dict(tasks=["mountaincar"], n_train=1, n_test_expert=1, n_test_fail=1, short_side=16, progress=False)
    without = generate_demo_data(tmp_path / "without", n_test_partial=0, **small)["mountaincar"]
    with_partial = generate_demo_data(tmp_path / "with", n_test_partial=2, **small)["mountaincar"]
    old, new = _labels(without)["videos"], _labels(with_partial)["videos"]
    assert sorted(set(new) - set(old)) == ["test_partial/ep_000.mp4", "test_partial/ep_001.mp4"]
    for relative, video in old.items():
        assert new[relative] == video
        assert (with_partial / relative).read_bytes() == (without / relative).read_bytes(), relative


@pytest.mark.slow
def test_labels_load_in_evaluation(runs):
    _, folders = runs["first"]
    for folder in folders.values():
        assert load_labels(folder) == _labels(folder)


@pytest.mark.slow
def test_labels_json_is_compact_and_exact(runs):
    _, folders = runs["first"]
    text = (folders["pendulum"] / "labels.json").read_text(encoding="utf-8")
    assert len(text.splitlines()) < 20 + 10 * len(EXPECTED_VIDEOS)  # one line per dense list
    assert "-0.0," not in text and "-0.0]" not in text


@pytest.mark.slow
def test_dense_matches_frames_decoded(runs):
    _, folders = runs["first"]
    for task, folder in folders.items():
        for relative, video in _labels(folder)["videos"].items():
            frames = read_frames(folder / relative)
            assert len(video["dense"]) == video["num_frames"] == len(frames), relative
            assert frames.shape[1:] == (*FRAME_SIZE[task], 3)


@pytest.mark.slow
def test_dense_tracks_progress(runs):
    _, folders = runs["first"]
    for task, folder in folders.items():
        videos = _labels(folder)["videos"]
        for relative, video in videos.items():
            dense = video["dense"]
            if task == "pendulum":
                assert dense[0] < -8.0  # hanging near the bottom
                if video["success"]:
                    assert dense[-1] > -0.1  # balanced upright
            else:
                assert 0.0 <= dense[0] < 0.04  # resting in the start region
                if video["success"]:
                    assert dense[-1] >= 1.0  # at the flag
                else:
                    assert max(dense) < 1.3  # never had the energy to reach the flag


@pytest.mark.slow
def test_failures_are_as_long_as_experts(runs):
    _, folders = runs["first"]
    for folder in folders.values():
        videos = _labels(folder)["videos"].values()
        expert = [v["num_frames"] for v in videos if v["success"]]
        failed = [v["num_frames"] for v in videos if not v["success"]]
        assert min(failed) >= 0.5 * min(expert) and max(failed) <= 2 * max(expert)


@pytest.mark.slow
def test_same_seed_same_labels(runs):
    (_, first), (_, second) = runs["first"], runs["second"]
    for task in DEMO_TASKS:
        assert _labels(first[task]) == _labels(second[task])


@pytest.mark.parametrize("task", DEMO_TASKS)
def test_same_seed_same_frames_before_encoding(task):
    """The rendered frames handed to the encoder are identical run to run."""
    spec = TASKS[task]
    episodes = []
    for _ in range(2):
        env = make_env(spec)
        try:
            episodes.append(make_episode(env, spec, "stalled", seed=0, split="test_fail", index=1, short_side=48))
        finally:
            env.close()
    first, second = episodes
    assert first.dense == second.dense
    assert len(first.frames) == len(second.frames) == first.steps + 1
    assert all(np.array_equal(a, b) for a, b in zip(first.frames, second.frames))


@pytest.mark.slow
def test_same_seed_same_decoded_frames(runs):
    (_, first), (_, second) = runs["first"], runs["second"]
    for task in DEMO_TASKS:
        for relative in EXPECTED_VIDEOS:
            assert np.array_equal(read_frames(first[task] / relative), read_frames(second[task] / relative)), relative


@pytest.mark.slow
def test_other_seed_differs(runs):
    (_, first), (_, other) = runs["first"], runs["other"]
    assert list(other) == ["pendulum"]
    labels_0, labels_1 = _labels(first["pendulum"]), _labels(other["pendulum"])
    assert labels_1["seed"] == 1
    for relative in ("train/ep_000.mp4", "train/ep_001.mp4", "test_expert/ep_000.mp4"):
        assert labels_0["videos"][relative]["dense"] != labels_1["videos"][relative]["dense"]
    assert not np.array_equal(
        read_frames(first["pendulum"] / "train/ep_000.mp4")[:1], read_frames(other["pendulum"] / "train/ep_000.mp4")[:1]
    )


def test_rerun_removes_stale_videos(tmp_path):
    stale = [tmp_path / "mountaincar" / split / "ep_007.mp4" for split in ("test_fail", "test_partial")]
    for path in stale:
        path.parent.mkdir(parents=True)
        path.write_bytes(b"old")
    generate_demo_data(tmp_path, tasks=["mountaincar"], n_train=1, n_test_expert=0, n_test_fail=0, short_side=16,
                       progress=False)
    assert not any(path.exists() for path in stale)
    assert sorted(_labels(tmp_path / "mountaincar")["videos"]) == ["train/ep_000.mp4"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(tasks=["cartpole"]), "unknown demo task"),
        (dict(tasks=[]), "no demo tasks"),
        (dict(n_train=-1), "n_train"),
        (dict(n_test_partial=-1), "n_test_partial"),
        (dict(short_side=4), "short_side"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        generate_demo_data(tmp_path, progress=False, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written
