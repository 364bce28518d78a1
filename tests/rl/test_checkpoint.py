"""Checkpoints of `v2r rl`: the agent, its optimizers and replay buffer come back exactly; a run killed with
kill -9 continues with --resume from its last checkpoint (step count, evaluations and replay buffer)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.logger import configure
from stable_baselines3.common.vec_env import DummyVecEnv

from video2reward.errors import ConfigError
from video2reward.rl.agents import build_agent
from video2reward.rl.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from video2reward.rl.config import RLConfig
from video2reward.rl.jax_agents import jax_tensors


@pytest.mark.parametrize("env_id, algo", [("Pendulum-v1", "sac"), ("CartPole-v1", "dqn")])
def test_a_checkpoint_restores_the_agent_and_its_replay_buffer(tmp_path: Path, env_id: str, algo: str) -> None:
    config = RLConfig(sac_learning_starts=50, dqn_learning_starts=50, dqn_buffer=500, seed=0)
    agent = build_agent(algo, DummyVecEnv([lambda: gym.make(env_id)]), config)
    agent.learn(300)
    save_checkpoint(tmp_path, agent, [{"step": 300}], {"task": env_id})
    fresh = build_agent(algo, DummyVecEnv([lambda: gym.make(env_id)]), RLConfig(seed=1, dqn_buffer=500))
    state = load_checkpoint(find_checkpoint(tmp_path), fresh)
    assert state["rows"] == [{"step": 300}] and state["task"] == env_id
    assert fresh.num_timesteps == agent.num_timesteps >= 300 and fresh._n_updates == agent._n_updates > 0
    for key, value in agent.policy.state_dict().items():
        torch.testing.assert_close(fresh.policy.state_dict()[key], value)
    for name in ("observations", "actions", "rewards", "dones"):
        np.testing.assert_array_equal(getattr(fresh.replay_buffer, name), getattr(agent.replay_buffer, name))
    assert fresh.replay_buffer.pos == agent.replay_buffer.pos
    # the optimizers' moments and the entropy coefficient came back too: one more update on the same batch
    # gives the same weights
    for a in (agent, fresh):
        a.set_logger(configure(str(tmp_path / "log"), []))
        np.random.seed(0)
        torch.manual_seed(0)
        a.train(gradient_steps=1, batch_size=32)
    for key, value in agent.policy.state_dict().items():
        torch.testing.assert_close(fresh.policy.state_dict()[key], value)


@pytest.mark.parametrize("algo", ["sbx-sac", "sbx-crossq"])
def test_a_checkpoint_restores_a_jax_agent_exactly(tmp_path: Path, algo: str) -> None:
    pytest.importorskip("sbx")
    config = RLConfig(sac_learning_starts=50, seed=0)
    agent = build_agent(algo, DummyVecEnv([lambda: gym.make("Pendulum-v1")]), config)
    agent.learn(120)
    save_checkpoint(tmp_path, agent, [], {"task": "Pendulum-v1"})
    fresh = build_agent(algo, DummyVecEnv([lambda: gym.make("Pendulum-v1")]), RLConfig(seed=1))
    before = jax_tensors(fresh)
    load_checkpoint(find_checkpoint(tmp_path), fresh)
    saved, loaded = jax_tensors(agent), jax_tensors(fresh)
    assert saved.keys() == loaded.keys() and any("target_params" in k or "batch_stats" in k for k in saved)
    assert any(not torch.equal(before[k], saved[k]) for k in saved)  # the seeds differ: loading changed weights
    for key, value in saved.items():
        torch.testing.assert_close(loaded[key], value, msg=key)
    np.testing.assert_array_equal(fresh.replay_buffer.observations, agent.replay_buffer.observations)
    for a in (agent, fresh):  # optimizer moments and PRNG keys came back: one more update gives the same weights
        a.set_logger(configure(str(tmp_path / "log"), []))
        np.random.seed(0)
        a.train(gradient_steps=1, batch_size=32)
    for key, value in jax_tensors(agent).items():
        torch.testing.assert_close(jax_tensors(fresh)[key], value, msg=key)


def test_a_jax_checkpoint_of_other_shapes_is_refused_with_the_array_named(tmp_path: Path) -> None:
    pytest.importorskip("sbx")
    agent = build_agent("sbx-sac", DummyVecEnv([lambda: gym.make("Pendulum-v1")]), RLConfig())
    save_checkpoint(tmp_path, agent, [], {})
    other = build_agent("sbx-sac", DummyVecEnv([lambda: gym.make("MountainCarContinuous-v0")]), RLConfig())
    with pytest.raises(ConfigError, match="Dense_0"):
        load_checkpoint(find_checkpoint(tmp_path), other)


def _eval_steps(out: Path) -> list[int]:
    with (out / "eval.csv").open() as f:
        return [int(float(row["step"])) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_resume_after_kill_9_continues_the_step_count_and_the_replay_buffer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    command = [sys.executable, "-m", "video2reward.cli", "rl", "Pendulum-v1", "--reward", "env", "--steps", "2400",
               "--eval-every", "400", "--eval-episodes", "1", "--checkpoint-every", "400", "--sac-learning-starts",
               "100", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # wait for the second checkpoint, then kill without warning
            state = out / "checkpoint" / "state.json"
            if state.exists() and json.loads(state.read_text())["counters"]["num_timesteps"] >= 800:
                break
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint at step 800 within 120 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    killed_at = json.loads((find_checkpoint(out) / "state.json").read_text())
    done = killed_at["counters"]["num_timesteps"]
    assert not (out / "config.json").exists()  # the run never finished
    result = subprocess.run([*command[:-1], "--resume"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    assert f"resuming from step {done}" in log and f"{done} transitions in the replay buffer" in log, log
    config = json.loads((out / "config.json").read_text())
    assert config["timesteps"] == 2400 and not config["interrupted"]
    steps = _eval_steps(out)
    assert steps == sorted(set(steps)) and steps[0] == 400 and steps[-1] == 2400  # no evaluation lost or repeated
    assert [s for s in steps if s <= done] == [r["step"] for r in killed_at["rows"]]
    resumed = json.loads((find_checkpoint(out) / "state.json").read_text())
    assert resumed["counters"]["num_timesteps"] == 2400 and resumed["buffer"]["pos"] == 2400
