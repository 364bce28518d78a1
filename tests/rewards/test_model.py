"""RewardModel: save/load round trip, one reward per frame, refusing pickles and damaged files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import video2reward
from video2reward.encoders import build_encoder, encoder_config
from video2reward.errors import ModelFileError
from video2reward.inference.model import RewardModel
from video2reward.rewards.pixel_ridge import PixelRidge
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.testing.synthetic import moving_square
from video2reward.video.frame_fit import fit_frames
from video2reward.video.io import write_video


def tiny_progress_model(motion_gap: int = 2) -> RewardModel:
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", 32, channels=(8, 16), dim=16), ProgressConfig(motion_gap=motion_gap))
    head.goal.normal_()
    config = {"head": "progress", "image_size": 32,
              "encoder": {"name": "cnn", "config": json.loads(json.dumps(
                  __import__("dataclasses").asdict(encoder_config("cnn", 32, channels=(8, 16), dim=16))))},
              "head_config": {"hidden": head.config.hidden, "sigma_min": head.config.sigma_min,
                              "motion_gap": motion_gap}}
    return RewardModel(head, config, precision="fp32")  # compared with float32 computations below


def test_save_load_round_trip_gives_identical_rewards(tmp_path: Path) -> None:
    model = tiny_progress_model()
    frames = moving_square(15, 48)
    before = model.score(frames)
    model.save(tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = video2reward.load(tmp_path / "m", precision="fp32")
    after = loaded.score(frames)
    np.testing.assert_array_equal(before.mu, after.mu)
    np.testing.assert_array_equal(before.sigma, after.sigma)


def test_one_reward_per_decoded_frame_for_files_and_arrays(tmp_path: Path) -> None:
    model = tiny_progress_model()
    for t in (1, 2, 37):
        path = tmp_path / f"v{t}.mp4"
        write_video(path, moving_square(t, 40), fps=12)
        rewards = model.score(path)
        assert len(rewards.mu) == len(rewards.sigma) == t and rewards.fps == pytest.approx(12)
    assert len(model.score(moving_square(9, 40)[..., 0])) == 9  # grayscale (T, H, W)
    assert len(model.score(moving_square(1, 40)[0])) == 1  # one (H, W, 3) image


@pytest.mark.parametrize("motion_gap", [0, 2, 5])
def test_streamed_scoring_equals_a_direct_computation(motion_gap: int) -> None:
    """Chunks and batches of any size give the rewards of: initial = frame 0, motion partner = frame
    max(t - gap, 0)."""
    model = tiny_progress_model(motion_gap)
    frames = moving_square(40, 32)
    with torch.no_grad():
        z = model.head.embed(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255)
        partner = torch.clamp(torch.arange(40) - motion_gap, min=0)
        expected, _ = model.head.predict(z, z[0], None, z[partner] if motion_gap else None)
    square = fit_frames(frames, 32)
    scorer = model.scorer(batch_size=3)
    chunked = np.concatenate([scorer.score(square[:7]).mu, scorer.score(square[7:]).mu])
    np.testing.assert_allclose(chunked, expected.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.score(frames).mu, expected.numpy(), rtol=1e-5, atol=1e-6)


def test_the_reward_at_t_never_depends_on_later_frames() -> None:
    model = tiny_progress_model(2)
    frames = moving_square(30, 32)
    changed = frames.copy()
    changed[20:] = 255 - changed[20:]
    np.testing.assert_array_equal(model.score(frames).mu[:20], model.score(changed).mu[:20])


def test_pickle_is_refused(tmp_path: Path) -> None:
    model = tiny_progress_model()
    model.save(tmp_path / "m")
    torch.save(model.head.state_dict(), tmp_path / "m" / "model.safetensors")  # a pickle in disguise
    with pytest.raises(ModelFileError, match="pickle"):
        video2reward.load(tmp_path / "m")
    (tmp_path / "p").mkdir()
    torch.save(model.head.state_dict(), tmp_path / "p" / "model.pt")
    with pytest.raises(ModelFileError, match="model.pt.*never"):
        video2reward.load(tmp_path / "p")


def test_damaged_wrong_and_missing_files_give_clear_errors(tmp_path: Path) -> None:
    model = tiny_progress_model()
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="model.safetensors.*do not match"):
        video2reward.load(tmp_path / "m")

    model.save(tmp_path / "v")
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    cfg["format_version"] = 99
    (tmp_path / "v" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFileError, match="version 99.*upgrade"):
        video2reward.load(tmp_path / "v")

    (tmp_path / "v" / "config.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="config.json.*not valid JSON"):
        video2reward.load(tmp_path / "v")
    with pytest.raises(ModelFileError, match="not a model folder"):
        video2reward.load(tmp_path / "nowhere")


def test_pixel_ridge_round_trip(tmp_path: Path) -> None:
    head = PixelRidge()
    frames = torch.from_numpy(moving_square(30, 32)).permute(0, 3, 1, 2).float() / 255
    head.fit(frames, torch.linspace(0, 1, 30))
    model = RewardModel(head, {"head": "pixel-ridge", "image_size": 32, "head_config": {
        "pixels": 16, "components": 32, "alpha": 1.0}})
    model.save(tmp_path / "r")
    mu = video2reward.load(tmp_path / "r").score(moving_square(30, 32)).mu
    np.testing.assert_array_equal(mu, model.score(moving_square(30, 32)).mu)
    assert np.corrcoef(mu, np.arange(30))[0, 1] > 0.95
