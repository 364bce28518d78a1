"""`v2r rl --camera / --render-size / --flip`: the frames the learned reward reads are rendered as asked."""

import numpy as np
import pytest

from video2reward.errors import ConfigError
from video2reward.rl.envs import env_spec, with_render
from video2reward.rl.render import RenderOptions, flip_frame, parse_render_size


def frame(task: str, camera: str = "", size: str = "", flip: str = "none") -> np.ndarray:
    env = with_render(env_spec(task), RenderOptions.from_options(camera, size, flip)).make("rgb_array")
    try:
        env.reset(seed=0)
        return env.render()
    finally:
        env.close()


def test_sizes_and_flips_parse_and_bad_ones_name_the_fix():
    assert parse_render_size("") is None
    assert parse_render_size("112") == (112, 112) and parse_render_size("160x120") == (160, 120)
    with pytest.raises(ConfigError, match="N or WxH"):
        parse_render_size("big")
    with pytest.raises(ConfigError, match="--flip"):
        RenderOptions(flip="sideways")
    image = np.arange(2 * 3 * 3).reshape(2, 3, 3)
    assert np.array_equal(flip_frame(image, "both"), np.rot90(image, 2))


def test_any_env_is_resized_and_flipped_but_has_no_camera_to_choose():
    plain, turned = frame("CartPole-v1"), frame("CartPole-v1", flip="both")
    assert np.array_equal(turned, plain[::-1, ::-1])
    assert frame("CartPole-v1", size="96x64").shape == (64, 96, 3)
    with pytest.raises(ConfigError, match="one view"):
        with_render(env_spec("CartPole-v1"), RenderOptions(camera="topview"))


def test_metaworld_renders_from_the_camera_and_size_asked():
    default = frame("metaworld:reach-v3", size="64")
    assert default.shape == (64, 64, 3)
    top = frame("metaworld:reach-v3", camera="topview", size="64")
    assert top.shape == (64, 64, 3) and np.abs(top.astype(int) - default.astype(int)).mean() > 5  # another view
    assert np.array_equal(frame("metaworld:reach-v3", size="64", flip="vertical"), default[::-1])


def test_demo_data_records_how_it_rendered():
    from video2reward.demo.generate import render_facts
    from video2reward.tasks import TASKS

    assert render_facts(TASKS["reach"]) == {"task": "reach", "env_id": TASKS["reach"].env_id, "camera": "corner",
                                            "render_size": "128", "flip": "none"}
    assert render_facts(TASKS["pendulum"])["camera"] == ""  # one view: nothing to choose


def test_left_out_options_come_from_the_model_and_given_ones_win():
    from video2reward.rl.render import resolve_render

    recorded = {"camera": "corner2", "render_size": "112", "flip": "vertical"}
    options, said = resolve_render("", "", "auto", recorded, has_cameras=True)
    assert options == RenderOptions("corner2", (112, 112), "vertical") and "camera corner2" in said
    options, _ = resolve_render("topview", "64", "none", recorded, has_cameras=True)
    assert options == RenderOptions("topview", (64, 64), "none")
    options, _ = resolve_render("", "", "auto", recorded, has_cameras=False)  # a gymnasium env: no camera to take
    assert options.camera == "" and options.size == (112, 112)
    assert resolve_render("", "", "auto", None, has_cameras=True) == (RenderOptions(), "")


@pytest.mark.slow
def test_train_keeps_the_render_file_beside_its_videos(tmp_path):
    import json

    from video2reward.cli import main
    from video2reward.inference.model import RewardModel
    from video2reward.testing.synthetic import write_square_dataset

    data = write_square_dataset(tmp_path / "data", n_train=3, n_test=1, t=16)
    facts = {"task": "reach", "env_id": "reach-v3", "camera": "corner3", "render_size": "96", "flip": "horizontal"}
    (data / "train" / "render.json").write_text(json.dumps(facts))
    assert main(["train", str(data / "train"), "--out", str(tmp_path / "m"), "--head", "progress", "--steps", "20",
                 "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "5", "--pretrain", "none",
                 "--quiet"]) == 0
    assert RewardModel.load(tmp_path / "m").config["render"] == facts
