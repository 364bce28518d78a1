"""The view check of `v2r rl`: silent on frames like the demonstrations, a warning naming the flags on frames of
another scene, and recorded in the run's config."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from video2reward.rl.view_check import WARN_RATIO, mismatch_warning, view_check
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model
from video2reward.video.io import read_frames


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp("view")
    data = write_square_dataset(work / "data", n_train=4, n_test=1, t=20)
    config = replace(TrainConfig(), head="progress", steps=60, batch_size=32, frames_per_video=8, warmup_steps=5,
                     pretrain="none", image_size=32, threads=1)
    model = train_reward_model([data / "train"], work / "model", config, progress=False).model
    demos = [read_frames(p, 32, "pad") for p in sorted((data / "train").glob("*.mp4"))]
    return model, demos, work / "model"


def test_frames_like_the_demonstrations_pass_and_another_scene_is_flagged(trained):
    model, demos, _ = trained
    right = moving_square(20, 32, y=12)  # a height no demonstration has, the same scene
    other = right.copy()
    background = (other == np.array([30, 30, 60])).all(-1)
    other[background] = (160, 120, 40)  # the camera sees another wall
    ok, wrong = view_check(model, right, demos), view_check(model, other, demos)
    assert not ok.mismatch and ok.ratio < 1.5
    assert wrong.mismatch and wrong.ratio > WARN_RATIO
    message = mismatch_warning(wrong, "corner2", (112, 112), "none")
    assert "--camera, --render-size and --flip" in message and "camera corner2, size 112x112" in message


@pytest.mark.slow
def test_v2r_rl_warns_before_training_on_frames_it_was_not_trained_on(trained, tmp_path, capsys):
    from video2reward.rl.agents import train_agent
    from video2reward.rl.config import RLConfig

    _, _, model_dir = trained
    config = RLConfig(steps=64, eval_every=64, eval_episodes=1, dqn_learning_starts=32)
    train_agent("CartPole-v1", str(model_dir), tmp_path / "run", config, progress=False)
    assert "do not look like the demonstrations" in capsys.readouterr().err
    check = json.loads(Path(tmp_path / "run" / "config.json").read_text())["render"]["view_check"]
    assert check["mismatch"] is True and check["ratio"] > WARN_RATIO
