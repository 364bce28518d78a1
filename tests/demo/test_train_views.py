"""`v2r demo-data --train-views`: train/'s Meta-World episodes seen from other cameras, in step frame for frame
(what multi-view TCN pairs), while train/ itself stays byte-identical."""

from __future__ import annotations

import json

import numpy as np
import pytest

from video2reward.cli import main
from video2reward.demo.generate import generate_demo_data
from video2reward.demo.train_views import TRAIN_VIEWS, check_cameras
from video2reward.errors import ConfigError
from video2reward.video.io import read_frames

SMALL = dict(n_train=2, n_test_expert=0, n_test_fail=0, n_test_partial=0, camera_shift=False, short_side=64,
             progress=False)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("views")
    plain = generate_demo_data(out / "plain", tasks=["reach", "pendulum"], **SMALL)
    viewed = generate_demo_data(out / "viewed", tasks=["reach", "pendulum"], train_views=["topview"], **SMALL)
    return plain, viewed


@pytest.mark.slow
def test_views_are_the_same_episodes_from_another_camera(data):
    plain, viewed = data
    labels = json.loads((viewed["reach"] / "labels.json").read_text())["videos"]
    for name in ("ep_000.mp4", "ep_001.mp4"):
        train = viewed["reach"] / "train" / name
        other = viewed["reach"] / TRAIN_VIEWS / "topview" / name
        assert train.read_bytes() == (plain["reach"] / "train" / name).read_bytes()  # train/ unchanged
        a, b = read_frames(train), read_frames(other)
        assert len(a) == len(b) == labels[f"train/{name}"]["num_frames"]  # one frame per moment in both
        assert np.abs(a.astype(int) - b.astype(int)).mean() > 10  # another picture of it
        # the same motion: how much each view changes from one frame to the next rises and falls together
        motion_a = np.abs(np.diff(a.astype(float), axis=0)).mean(axis=(1, 2, 3))
        motion_b = np.abs(np.diff(b.astype(float), axis=0)).mean(axis=(1, 2, 3))
        assert np.corrcoef(motion_a, motion_b)[0, 1] > 0.5
    assert not (viewed["pendulum"] / TRAIN_VIEWS).exists()  # classic control: one 2-D view, no other camera


def test_camera_names_are_checked():
    assert check_cameras(["topview", "gripperPOV", "topview"]) == ["topview", "gripperPOV"]
    with pytest.raises(ConfigError, match="no camera 'top'"):
        check_cameras(["top"])
    with pytest.raises(ConfigError, match="camera of train/ itself"):
        check_cameras(["corner"])


def test_cli_names_a_bad_camera(tmp_path, capsys):
    assert main(["demo-data", str(tmp_path / "d"), "--tasks", "reach", "--train-views", "sideways", "--quiet"]) == 2
    assert "no camera 'sideways'" in capsys.readouterr().err
