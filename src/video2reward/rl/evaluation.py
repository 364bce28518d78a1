"""What a `v2r rl` run measures and keeps: deterministic evaluation episodes (true task success, env return,
learned return), the check that rendered frames look like the demonstrations, and the agent saved as
safetensors + JSON (never a pickle)."""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from video2reward.core.files import save_tensors, write_json
from video2reward.core.progress import write
from video2reward.rl.config import RLConfig
from video2reward.rl.envs import EnvSpec
from video2reward.rl.jax_agents import is_jax_agent, jax_tensors
from video2reward.rl.refine import refinement_videos
from video2reward.rl.render import RenderOptions
from video2reward.rl.view_check import check_env_view, mismatch_warning

EVAL_FIELDS = ("step", "success_rate", "env_return", "learned_return", "episode_length", "wall_s")


@dataclass
class EvalRow:
    step: int
    success_rate: float
    env_return: float
    learned_return: float | None
    episode_length: float
    wall_s: float


def evaluate(agent, env: gym.Env, episodes: int, seed: int, record: bool = False) -> tuple[dict, list]:
    """Deterministic episodes: success rate (true task success), mean env return, mean learned return."""
    successes, env_returns, learned_returns, lengths, frames = [], [], [], [], []
    said = False  # did the env ever say anything of success (info mode may never)?
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        done, success, env_ret, learned_ret, n = False, False, 0.0, 0.0, 0
        while not done:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, truncated, info = env.step(action)
            done = terminated or truncated
            said = said or info.get("is_success") is not None
            success = success or bool(info.get("is_success"))
            env_ret += float(info.get("env_reward", reward))
            learned_ret += float(reward)
            n += 1
            if record and i == 0:
                frames.append((env.render(), float(info.get("mu", reward))))
        successes.append(success)
        env_returns.append(env_ret)
        learned_returns.append(learned_ret)
        lengths.append(n)
    rate = float(np.mean(successes)) if said else float("nan")  # never a 0% the env cannot back
    return {"success_rate": rate, "env_return": float(np.mean(env_returns)),
            "learned_return": float(np.mean(learned_returns)), "episode_length": float(np.mean(lengths))}, frames


def check_view(model, env: gym.Env, render: RenderOptions, seed: int, progress: bool) -> dict | None:
    """Compare a few rendered frames with the model's demonstrations (rl/view_check.py); warn on a mismatch.
    None when there is no model, or its training videos are not here to compare with (said in the log)."""
    if model is None:
        return None
    recorded = (model.config.get("training") or {}).get("videos") or []
    if sum(Path(v).exists() for v in recorded) < 2:
        if progress:
            write("(view check skipped: the model's training videos are not on this machine to compare with)")
        return None
    check = check_env_view(model, env, refinement_videos(model), seed=seed)
    if check.mismatch:
        write(mismatch_warning(check, render.camera, render.size, render.flip), file=sys.stderr)
    return {"ratio": round(check.ratio, 3), "distance": round(check.distance, 4), "spread": round(check.spread, 4),
            "mismatch": check.mismatch}


def save_agent(agent, out: Path, task: str, reward: str, algo: str, config: RLConfig, interrupted: bool,
               spec: EnvSpec, render: RenderOptions, view: dict | None = None) -> None:
    """Policy weights as safetensors + everything needed to rebuild it as JSON (never a pickle)."""
    if is_jax_agent(agent):  # sbx: the actor's params (its TrainState's optimizer moments stay in checkpoints)
        state = {k: v for k, v in jax_tensors(agent, ("policy.actor_state",)).items() if ".params" in k}
    else:
        state = {k: v.detach().cpu().contiguous() for k, v in agent.policy.state_dict().items()}
    save_tensors(out / "policy.safetensors", state)
    write_json(out / "config.json", {
        "kind": "agent", "task": task, "reward": reward, "algo": algo, "config": asdict(config),
        "success": {"mode": spec.success_mode, "why": spec.success_why},
        "render": {"camera": render.camera, "size": list(render.size) if render.size else None, "flip": render.flip,
                   "view_check": view},
        "timesteps": int(agent.num_timesteps), "interrupted": interrupted,
        "observation_space": repr(agent.observation_space), "action_space": repr(agent.action_space),
    })
