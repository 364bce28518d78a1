"""True success for plain gymnasium ids (`v2r rl --success`): scripted policies that reach, or miss, the goal
of Acrobot, MountainCar and CartPole give the success rate they should; an env with no success signal logs an
unknown rate, not 0%; and SIGTERM stops a running `v2r rl`, writing the policy."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from video2reward.errors import ConfigError
from video2reward.rl.agents import evaluate
from video2reward.rl.envs import TaskInfo, env_spec, parse_success
from video2reward.rl.report import report_table


class Scripted:
    """An SB3-like agent: predict(obs, deterministic) -> (action, None)."""

    def __init__(self, policy):
        self.policy = policy

    def predict(self, obs, deterministic=True):
        return self.policy(obs), None


def rate(task: str, policy, episodes: int = 3, success: str = "auto") -> float:
    spec = env_spec(task, success)
    env = TaskInfo(spec.make(None), spec)
    try:
        return evaluate(Scripted(policy), env, episodes, seed=0)[0]["success_rate"]
    finally:
        env.close()


def acrobot_pump(obs):  # torque with the second link's swing: pumps energy until the tip crosses the line
    return 2 if obs[5] > 0 else 0


def mountaincar_pump(obs):  # push the way the car already moves
    return 2 if obs[1] > 0 else 0


def cartpole_balance(obs):  # lean the cart under the pole
    return 1 if obs[2] + 0.5 * obs[3] > 0 else 0


def test_known_ids_choose_their_success_test_and_say_why():
    assert env_spec("Acrobot-v1").success_mode == "terminated"
    assert env_spec("CartPole-v1").success_mode == "return>=475"
    assert "built in" in env_spec("MountainCar-v0").success_why
    assert env_spec("pendulum").success_mode == "task"  # a demo task keeps its own test
    assert parse_success("return>=-100") == ("return", -100.0)
    with pytest.raises(ConfigError, match="return>=NUMBER"):
        parse_success("sometimes")
    with pytest.raises(ConfigError, match="not a demo task"):
        env_spec("CartPole-v1", "task")


@pytest.mark.parametrize("task, reaches, misses", [
    ("Acrobot-v1", acrobot_pump, lambda obs: 1),  # no torque: hangs until the time limit
    ("MountainCar-v0", mountaincar_pump, lambda obs: 1),  # no push: never leaves the valley
    ("CartPole-v1", cartpole_balance, lambda obs: 0),  # always left: falls within a few dozen steps
])
def test_scripted_policies_log_the_true_success_rate(task, reaches, misses):
    assert rate(task, reaches) == 1.0
    assert rate(task, misses) == 0.0


def test_cartpole_falling_is_not_success_even_though_it_terminates():
    assert rate("CartPole-v1", lambda obs: 0, success="terminated") == 1.0  # the wrong test says 100% ...
    assert rate("CartPole-v1", lambda obs: 0) == 0.0  # ... the built-in one does not


def test_an_env_without_a_success_signal_logs_unknown_not_zero(tmp_path: Path):
    spec = env_spec("Pendulum-v1")
    assert spec.success_mode == "info"
    value = rate("Pendulum-v1", lambda obs: np.zeros(1, np.float32), episodes=1)
    assert math.isnan(value)
    run = tmp_path / "run"
    run.mkdir()
    (run / "eval.csv").write_text(f"step,success_rate,env_return,learned_return,episode_length,wall_s\n"
                                  f"100,{value},-1200.0,,200,1.0\n")
    (run / "config.json").write_text(json.dumps({"task": "Pendulum-v1", "reward": "env", "algo": "sac",
                                                 "config": {"seed": 0}, "timesteps": 100}))
    assert "unknown: the env gives no success signal" in report_table([run])


def test_sigterm_stops_a_running_rl_and_writes_the_policy(tmp_path: Path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "video2reward.cli", "rl", "CartPole-v1", "--reward", "env", "--steps",
               "1000000", "--eval-every", "500000", "--eval-episodes", "1", "--out", str(out), "--quiet"]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (out / "eval.csv").exists():  # training has started (the header is written before step 1)
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "v2r rl did not start training within 60 s"
            time.sleep(0.2)
        time.sleep(2.0)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stderr[-2000:]
    config = json.loads((out / "config.json").read_text())
    assert config["interrupted"] is True and 0 < config["timesteps"] < 1_000_000
    assert config["success"]["mode"] == "return>=475"
    assert (out / "policy.safetensors").exists()
