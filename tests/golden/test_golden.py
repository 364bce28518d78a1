"""Golden numbers: fixed tiny models (tests/golden/models) score fixed videos (tests/golden/videos, and the same
frames as arrays) to the rewards stored in expected.json, through every way a user scores: `v2r score`,
`video2reward.load(...).score`, the gymnasium wrapper `LearnedReward` and the exported TorchScript module.

The numbers were written once by make_golden.py, before the package was reorganised; they hold the scoring
rules (first frame, goal, motion partner, temporal context, resizing) still. They are float32 numbers: each path
scores with `--precision fp32` here; `auto` (bf16 on a CPU with native bf16) is held to a looser tolerance.
"""

from __future__ import annotations

import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import video2reward
from tests.golden.make_golden import MODELS, videos
from video2reward.cli import main as cli_main
from video2reward.inference.export import export_model
from video2reward.rl.wrapper import LearnedReward
from video2reward.video.frame_fit import fit_square

HERE = Path(__file__).resolve().parent
EXPECTED = json.loads((HERE / "expected.json").read_text())
TOL = 1e-6
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


def model_dir(name: str) -> Path:
    return HERE / "models" / name.replace("+", "_")


def assert_close(got, want) -> None:
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("name", list(MODELS))
def test_load_score_gives_the_golden_numbers(name: str) -> None:
    model = video2reward.load(model_dir(name), precision="fp32")
    for key, want in EXPECTED[name].items():
        source, video = key.split(":")
        rewards = model.score(HERE / "videos" / f"{video}.mp4" if source == "file" else videos()[video])
        for field in ("mu", "sigma", "success_prob", "epistemic"):
            got = getattr(rewards, field)
            assert (got is None) == (want[field] is None), f"{name} {key}: {field}"
            if got is not None:
                assert_close(got, want[field])


@pytest.mark.parametrize("name", list(MODELS))
def test_default_precision_stays_near_the_golden_numbers(name: str) -> None:
    """`auto` scores in bf16 on a CPU with native bf16 instructions: rewards move by bf16's rounding, no more."""
    model = video2reward.load(model_dir(name))
    for key, want in EXPECTED[name].items():
        source, video = key.split(":")
        rewards = model.score(HERE / "videos" / f"{video}.mp4" if source == "file" else videos()[video])
        np.testing.assert_allclose(rewards.mu, want["mu"], atol=0.03, rtol=0.03)


@pytest.mark.parametrize("name", list(MODELS))
def test_v2r_score_writes_the_golden_numbers(name: str, tmp_path: Path) -> None:
    out = tmp_path / "rewards.jsonl"
    assert cli_main(["score", str(model_dir(name)), str(HERE / "videos"), "--out", str(out), "--quiet",
                    "--precision", "fp32"]) == 0
    records = {Path(r["video"]).stem: r for r in map(json.loads, out.read_text().splitlines())}
    assert sorted(records) == sorted(videos())
    for video, record in records.items():
        want = EXPECTED[name][f"file:{video}"]
        assert_close(record["rewards"], want["mu"])
        assert_close(record["sigma"], want["sigma"])
        if want["success_prob"] is not None:
            assert_close(record["success_prob"], want["success_prob"])
        if want["epistemic"] is not None:
            assert_close(record["epistemic"], want["epistemic"])


class Replay(gym.Env):
    """An env whose renders are the frames of one fixed video, one per reset/step."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, frames: np.ndarray):
        self.frames, self.t, self.render_mode = frames, 0, "rgb_array"
        self.observation_space = gym.spaces.Box(0, 1, (1,), np.float32)
        self.action_space = gym.spaces.Discrete(1)

    def reset(self, *, seed=None, options=None):
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.t += 1
        return np.zeros(1, np.float32), 0.0, False, False, {}

    def render(self) -> np.ndarray:
        return self.frames[self.t]


@pytest.mark.parametrize("name", list(MODELS))
def test_learned_reward_gives_the_golden_numbers(name: str) -> None:
    """preprocess='array': renders are resized exactly as `model.score(array)` resizes them."""
    for video, frames in videos().items():
        env = LearnedReward(Replay(frames), video2reward.load(model_dir(name), precision="fp32"),
                            preprocess="array")
        _, info = env.reset(seed=0)
        mus, sigmas, probs = [info["mu"]], [info["sigma"]], [info["success_prob"]]
        for _ in range(len(frames) - 1):
            *_, info = env.step(0)
            mus.append(info["mu"])
            sigmas.append(info["sigma"])
            probs.append(info["success_prob"])
        want = EXPECTED[name][f"array:{video}"]
        assert_close(mus, want["mu"])
        assert_close(sigmas, want["sigma"])
        if want["success_prob"] is not None:
            assert_close(probs, want["success_prob"])


def score_exported(path: Path, frames: np.ndarray) -> np.ndarray:
    """Drive the exported module as its metadata documents: initial = frame 0's z, goal = the stored goal,
    previous = z of frame max(t - motion_gap, 0), or the K-1 frames before t (clamped at frame 0)."""
    extra = {"v2r.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    meta = json.loads(extra["v2r.json"])
    size = meta["image_size"]
    square = np.stack([fit_square(f, size, meta["frame_fit"]) for f in frames])
    x = torch.from_numpy(square).permute(0, 3, 1, 2).float() / 255  # (T, 3, S, S)
    with torch.inference_mode():
        z = module.embed(x)  # (T, D)
        t = torch.arange(len(z))
        if meta["context"] > 1:
            previous = z[(t[:, None] + torch.arange(1 - meta["context"], 0)).clamp(min=0)]  # (T, K-1, D)
        else:
            previous = z[(t - meta["motion_gap"]).clamp(min=0)]  # (T, D)
        mu, _, _ = module(x, z[0], module.goal, previous)
    return mu.numpy()


@pytest.mark.parametrize("name", [n for n in MODELS if n != "success"])  # export is of the reward, mu
def test_exported_torchscript_gives_the_golden_numbers(name: str, tmp_path: Path) -> None:
    export_model(video2reward.load(model_dir(name)), tmp_path / "m.pt")
    for video, frames in videos().items():
        assert_close(score_exported(tmp_path / "m.pt", frames), EXPECTED[name][f"array:{video}"]["mu"])
