"""`v2r rl` end to end on a few hundred steps: DQN on the learned reward and on the env reward, SAC on a
continuous task; the run folder holds the log, the safetensors policy, the plot and the episode video; and
`v2r rl-report` reads the runs back."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from tests.helpers.tiny_model import tiny_model
from video2reward.cli import main
from video2reward.core.files import load_tensors
from video2reward.rl.envs import TaskInfo, env_spec
from video2reward.rl.jax_agents import jax_available
from video2reward.video.io import write_video

FAST = ["--steps", "300", "--eval-every", "150", "--eval-episodes", "1", "--dqn-learning-starts", "50",
        "--sac-learning-starts", "50", "--quiet"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "m"
    tiny_model().save(path)
    return path


def run(task: str, reward: str, out: Path, *extra: str) -> dict:
    assert main(["rl", task, "--reward", reward, "--out", str(out), *FAST, *extra]) == 0
    assert {"eval.csv", "policy.safetensors", "config.json", "learning_curve.png", "eval_episode.mp4"} <= {
        p.name for p in out.iterdir()}
    rows = list(csv.DictReader((out / "eval.csv").open()))
    assert [int(r["step"]) for r in rows] == [150, 300]
    config = json.loads((out / "config.json").read_text())
    weights = load_tensors(out / "policy.safetensors")
    assert weights and all(torch.isfinite(w).all() for w in weights.values())
    return {"rows": rows, "config": config}


@pytest.mark.slow
def test_dqn_on_the_learned_reward_and_on_the_env_reward(model_dir: Path, tmp_path: Path, capsys) -> None:
    learned = run("mountaincar", str(model_dir), tmp_path / "v2r")
    assert learned["config"]["algo"] == "dqn"
    assert all(r["learned_return"] not in ("", "None") for r in learned["rows"])
    env = run("mountaincar", "env", tmp_path / "env")
    assert float(env["rows"][-1]["env_return"]) == -200.0  # 300 steps of DQN never reach the flag
    assert env["rows"][-1]["learned_return"] in ("", "None")
    capsys.readouterr()
    assert main(["rl-report", str(tmp_path / "v2r"), str(tmp_path / "env"), "--plot", str(tmp_path / "r.png")]) == 0
    table = capsys.readouterr().out
    assert "mountaincar dqn env reward" in table and "mountaincar dqn learned (m)" in table
    assert (tmp_path / "r.png").stat().st_size > 0


@pytest.mark.slow
def test_sac_on_a_continuous_task(model_dir: Path, tmp_path: Path) -> None:
    result = run("pendulum", str(model_dir), tmp_path / "sac", "--reward-mode", "shaping")
    assert result["config"]["algo"] == ("sbx-sac" if jax_available() else "sac")  # --algo auto
    assert (tmp_path / "sac" / "policy.safetensors").stat().st_size > 0


def test_sb3_sac_still_runs_when_asked_for(model_dir: Path, tmp_path: Path) -> None:
    result = run("pendulum", "env", tmp_path / "sb3", "--algo", "sac")
    assert result["config"]["algo"] == "sac"


def test_wrong_algorithm_and_unknown_task_are_clear_errors(model_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["rl", "pendulum", "--reward", "env", "--algo", "dqn", "--out", str(tmp_path / "x"), *FAST]) == 2
    assert "continuous (use sac)" in capsys.readouterr().err
    assert main(["rl", "NoSuchEnv-v9", "--reward", "env", "--out", str(tmp_path / "y"), *FAST]) == 2
    assert "unknown environment 'NoSuchEnv-v9'" in capsys.readouterr().err


def test_task_info_reports_true_success_only_after_the_hold() -> None:
    spec = env_spec("pendulum")
    env = TaskInfo(spec.make(None), spec)
    env.reset(seed=0)
    env.unwrapped.state = [0.0, 0.0]  # balanced upright and still: at the goal
    flags = [env.step([0.0])[4]["is_success"] for _ in range(spec.hold_steps)]
    assert flags[:-1] == [False] * (spec.hold_steps - 1) and flags[-1] is True


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


@pytest.mark.slow
def test_refine_end_to_end_writes_the_refined_model(model_dir: Path, tmp_path: Path) -> None:
    import video2reward
    from video2reward.rl.agents import tensorboard_available
    from video2reward.testing.synthetic import moving_square
    from video2reward.video.io import write_video

    for i in range(2):
        write_video(tmp_path / "demos" / f"d{i}.mp4", moving_square(12 + i, 32), fps=10)
    out = tmp_path / "refined"
    run("mountaincar", str(model_dir), out, "--refine", "--refine-every", "100", "--refine-steps", "2",
        "--refine-lr", "1e-3", "--refine-buffer", "150", "--refine-videos", str(tmp_path / "demos"))
    rows = list(csv.DictReader((out / "refine.csv").open()))
    assert [int(r["step"]) for r in rows] == [100, 200, 300]
    assert all(0 < int(r["agent_frames"]) <= 150 and float(r["loss"]) == float(r["loss"]) for r in rows)
    refined, original = video2reward.load(out / "reward_model"), video2reward.load(model_dir)
    assert refined.config["refinement"]["gradient_steps"] == 6 and refined.config["refinement"]["task"] == "mountaincar"
    assert refined.config["refinement"]["agent_frames_seen"] >= 300
    changed = [k for k, v in original.head.state_dict().items() if not torch.equal(v, refined.head.state_dict()[k])]
    assert any(k.startswith("encoder.") for k in changed) and any(k.startswith("mlp.") for k in changed)
    assert json.loads((out / "config.json").read_text())["config"]["refine"] is True
    if tensorboard_available():  # evaluation and refinement scalars, and SB3's own run beside them
        scalars = tensorboard_scalars(out / "tb")
        assert [s for s, _ in scalars["eval/success_rate"]] == [150, 300]
        assert {"eval/env_return", "eval/learned_return", "refine/loss", "refine/agent_mu"} <= set(scalars)
        assert (out / "tb" / "DQN_1").is_dir()


def test_refine_needs_a_learned_reward(tmp_path: Path, capsys) -> None:
    assert main(["rl", "mountaincar", "--reward", "env", "--refine", "--out", str(tmp_path / "x"), *FAST]) == 2
    assert "--refine needs a learned reward" in capsys.readouterr().err


@pytest.mark.slow
def test_without_tensorboard_one_line_says_how_to_get_it(tmp_path: Path, capsys, monkeypatch) -> None:
    import video2reward.rl.agents as agents

    monkeypatch.setattr(agents, "tensorboard_available", lambda: False)
    assert main(["rl", "mountaincar", "--reward", "env", "--out", str(tmp_path / "e"), "--steps", "100",
                 "--eval-every", "100", "--eval-episodes", "1", "--dqn-learning-starts", "50", "--quiet"]) == 0
    assert capsys.readouterr().out.count("pip install tensorboard") == 1
    assert not (tmp_path / "e" / "tb").exists()


@pytest.mark.slow
def test_two_envs_the_discriminator_and_seeds_into_one_run_folder(model_dir: Path, tmp_path: Path, capsys) -> None:
    env = gym.make("Pendulum-v1", render_mode="rgb_array")
    env.reset(seed=0)
    frames = [env.render()] + [(env.step(np.array([1.0], np.float32)), env.render())[1] for _ in range(30)]
    write_video(tmp_path / "demos" / "d.mp4", frames, fps=30)
    out = tmp_path / "runs"
    assert main(["rl", "pendulum", "--reward", str(model_dir), "--out", str(out), *FAST, "--envs", "2",
                 "--reward-mode", "progress+discriminator", "--disc-every", "100", "--disc-steps", "5",
                 "--disc-videos", str(tmp_path / "demos"), "--seeds", "0", "1"]) == 0
    for seed in (0, 1):
        run_dir = out / f"seed{seed}"
        assert [int(r["step"]) for r in csv.DictReader((run_dir / "eval.csv").open())] == [150, 300]
        disc = list(csv.DictReader((run_dir / "discriminator.csv").open()))
        assert [int(r["step"]) for r in disc] == [100, 200, 300] and int(disc[-1]["agent_frames"]) == 300
        config = json.loads((run_dir / "config.json").read_text())
        assert config["config"]["seed"] == seed and config["config"]["envs"] == 2
        assert (run_dir / "checkpoint" / "extra.safetensors").exists()  # the discriminator is checkpointed
    capsys.readouterr()
    assert main(["rl-report", str(out), "--plot", str(tmp_path / "r.png")]) == 0
    algo = "sbx-sac" if jax_available() else "sac"  # --algo auto
    assert f"| pendulum {algo} learned (m) + discriminator | 2 |" in capsys.readouterr().out


@pytest.mark.slow
def test_the_sparse_success_only_reward(tmp_path: Path, capsys) -> None:
    result = run("mountaincar", "sparse", tmp_path / "sparse")
    assert result["config"]["reward"] == "sparse"
    capsys.readouterr()
    assert main(["rl-report", str(tmp_path / "sparse"), "--plot", str(tmp_path / "r.png")]) == 0
    assert "mountaincar dqn sparse success" in capsys.readouterr().out
