"""Model folders from other versions of v2r, and input of another size than the model was trained at.

Format: config.json carries `format_version`; a newer one asks to upgrade v2r, an older or missing one to
re-train, and neither is read half-way. Image size: a model scores frames of any resolution and aspect; each is
made square as in training (`frame_fit`) and resized to the model's `image_size`, the same way for files,
frame folders and arrays, so scoring already-resized frames gives the same rewards."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import video2reward
from video2reward.core.files import FORMAT_VERSION
from video2reward.encoders import build_encoder, encoder_config
from video2reward.errors import ModelFileError
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.testing.synthetic import moving_square
from video2reward.video.frame_fit import fit_square
from video2reward.video.io import write_video


def saved_model(folder: Path, size: int = 32) -> Path:
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", size, channels=(8, 16), dim=16), ProgressConfig(motion_gap=2))
    head.goal.normal_()
    enc = dataclasses.asdict(encoder_config("cnn", size, channels=(8, 16), dim=16))
    RewardModel(head, {"head": "progress", "image_size": size, "frame_fit": "pad",
                       "encoder": {"name": "cnn", "config": json.loads(json.dumps(enc))},
                       "head_config": {"hidden": head.config.hidden, "sigma_min": head.config.sigma_min,
                                       "motion_gap": 2}}).save(folder)
    return folder


def set_version(folder: Path, version) -> None:
    config = json.loads((folder / "config.json").read_text())
    if version is None:
        del config["format_version"]
    else:
        config["format_version"] = version
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("version, advice", [(FORMAT_VERSION + 1, "upgrade video2reward"),
                                             (FORMAT_VERSION - 1, "re-train the model with this v2r"),
                                             (None, "re-train the model with this v2r"),
                                             ("1.0-beta", "re-train the model with this v2r")])
def test_other_format_versions_are_refused_with_what_to_do(tmp_path: Path, version, advice: str) -> None:
    folder = saved_model(tmp_path / "m")
    set_version(folder, version)
    with pytest.raises(ModelFileError) as info:
        video2reward.load(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'config.json'}: model format version {version}, this v2r reads version "
                              f"{FORMAT_VERSION}; ") and advice in message and "\n" not in message


def test_the_current_version_loads(tmp_path: Path) -> None:
    assert video2reward.load(saved_model(tmp_path / "m")).image_size == 32


@pytest.mark.parametrize("h, w", [(480, 640), (17, 9), (32, 32), pytest.param(2160, 3840, marks=pytest.mark.slow)])
def test_any_input_size_is_resized_to_the_model_size(tmp_path: Path, h: int, w: int) -> None:
    model = video2reward.load(saved_model(tmp_path / "m", size=32))
    frames = moving_square(6, max(h, w))[:, :h, :w]  # a crop of the moving square, of the wanted size
    resized = np.stack([fit_square(f, 32, "pad") for f in frames])  # what the model sees
    direct = model.score(frames)
    assert len(direct.mu) == 6
    np.testing.assert_array_equal(direct.mu, model.score(resized).mu)
    if h * w <= 640 * 480:  # the same frames from a lossless frame folder
        write_video(tmp_path / "frames", frames, fps=5)
        np.testing.assert_allclose(model.score(tmp_path / "frames").mu, direct.mu, atol=1e-5)
