"""`v2r rl`: train a stable-baselines3 agent (DQN for discrete actions, SAC for continuous) on a task whose
reward is the learned video reward (or the env's own, for the comparison run), and measure what matters:
true task success.

    env -> TaskInfo (env reward + true success into info) -> LearnedReward (reward = video model) -> Monitor
        -> SB3 DQN / SAC -> every `eval_every` steps: deterministic episodes -> OUT/eval.csv
        -> OUT/policy.safetensors + config.json, OUT/learning_curve.png, OUT/eval_episode.mp4

With `--refine` (progress models), an AgentFrames wrapper keeps the frames LearnedReward scored, and every
`refine_every` steps a callback runs rl/refine.RewardRefiner on them (push-back of the agent's frames, the
demonstrations held); the refined model is saved to OUT/reward_model, its losses logged to OUT/refine.csv.
With tensorboard installed, SB3's own training scalars and the evaluation (and refinement) scalars also go
to OUT/tb (`tensorboard --logdir OUT/tb`).

DQN keeps the seed paper's parts: a replay buffer, an epsilon-greedy schedule, a target network updated
every `target_update_interval` steps. The agent's weights are saved as safetensors (SB3's own .zip pickles).
"""

from __future__ import annotations

import csv
import importlib
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor

from video2reward.core.files import save_tensors, write_json
from video2reward.core.preflight import check_output_folder
from video2reward.core.progress import progress_bar, write
from video2reward.core.stop import StopRequest
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rl.config import RLConfig
from video2reward.rl.envs import EnvSpec, TaskInfo, env_spec, with_render
from video2reward.rl.refine import (
    AgentFrameBuffer,
    AgentFrames,
    RewardRefiner,
    check_refinable,
    refinement_videos,
)
from video2reward.rl.render import RenderOptions, resolve_render
from video2reward.rl.report import plot_learning_curves, write_episode_video
from video2reward.rl.view_check import check_env_view, mismatch_warning
from video2reward.rl.wrapper import LearnedReward

EVAL_FIELDS = ("step", "success_rate", "env_return", "learned_return", "episode_length", "wall_s")
REFINE_FIELDS = ("step", "loss", "expert_mae", "agent_mu_before", "agent_mu", "pushback", "agent_frames",
                 "agent_episodes", "seconds")
TENSORBOARD_HINT = "TensorBoard logs are off: `pip install tensorboard` to get them in OUT/tb"


@dataclass
class EvalRow:
    step: int
    success_rate: float
    env_return: float
    learned_return: float | None
    episode_length: float
    wall_s: float


def make_env(spec: EnvSpec, reward_model, config: RLConfig, frames=None) -> gym.Env:
    """The training/evaluation env: true success and env reward in info, the learned reward as reward;
    with `frames` (an rl.refine.AgentFrameBuffer), the frames the reward was scored on are kept there."""
    env = TaskInfo(spec.make("rgb_array"), spec)  # frames are rendered only when asked for
    if reward_model is not None:
        env = learned = LearnedReward(env, reward_model, reward=config.reward_mode, k=config.k,
                                      offset=-1.0 if config.reward_mode != "shaping" else 0.0)
        if frames is not None:
            env = AgentFrames(learned, learned, frames)
    return Monitor(env)


def learned_reward_of(env: gym.Env):
    """The LearnedReward inside a wrapper chain (None if there is none)."""
    while env is not None:
        if isinstance(env, LearnedReward):
            return env
        env = getattr(env, "env", None)
    return None


def tensorboard_available() -> bool:
    """Whether torch.utils.tensorboard works here (it needs the `tensorboard` package)."""
    try:
        importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        return False
    return True


def build_agent(algo: str, env: gym.Env, config: RLConfig, tensorboard_log: str | None = None):
    if algo == "dqn":
        return DQN("MlpPolicy", env, learning_rate=config.dqn_lr, buffer_size=config.dqn_buffer,
                   batch_size=config.dqn_batch, learning_starts=config.dqn_learning_starts, gamma=config.dqn_gamma,
                   target_update_interval=config.dqn_target_update, train_freq=config.dqn_train_freq,
                   gradient_steps=config.dqn_gradient_steps, exploration_fraction=config.dqn_exploration_fraction,
                   exploration_final_eps=config.dqn_exploration_final, policy_kwargs={"net_arch": [256, 256]},
                   seed=config.seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log)
    return SAC("MlpPolicy", env, learning_rate=config.sac_lr, learning_starts=config.sac_learning_starts,
               gamma=config.sac_gamma, seed=config.seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log)


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


def train_agent(task: str, reward: str, out: str | Path, config: RLConfig | None = None,
                progress: bool = True) -> list[EvalRow]:
    """Train on `task` with the learned reward model at `reward` (or 'env'); log evaluations to OUT."""
    config = config or RLConfig()
    out = Path(out)
    check_output_folder(out, "the run")  # before the first environment step, not after hours of them
    torch.set_num_threads(max(1, config.threads))
    spec = env_spec(task, config.success)
    discrete = spec.discrete()
    algo = config.algo if config.algo != "auto" else ("dqn" if discrete else "sac")
    if (algo == "dqn") != discrete:
        raise ConfigError(f"--algo {algo} does not fit {task}: its actions are "
                          f"{'discrete (use dqn)' if discrete else 'continuous (use sac)'}")
    if progress:
        write(f"success of {task}: {spec.success_mode} ({spec.success_why})")
    model = None if reward == "env" else RewardModel.load(reward)
    render, said = resolve_render(config.camera, config.render_size, config.flip,
                                  model.config.get("render") if model is not None else None,
                                  spec.make_scene is not None)
    spec = with_render(spec, render)
    if said and progress:
        write(said)
    refiner = None
    if config.refine:
        if model is None:
            raise ConfigError("--refine refines a learned reward: give a model folder as --reward, not 'env'")
        if config.refine_every < 1 or config.refine_steps < 1:
            raise ConfigError("--refine-every and --refine-steps must be at least 1")
        check_refinable(model)
        refiner = RewardRefiner(model, refinement_videos(model, config.refine_videos or None),
                                AgentFrameBuffer(config.refine_buffer), lr=config.refine_lr, seed=config.seed)
    env = make_env(spec, model, config, frames=refiner.buffer if refiner is not None else None)
    eval_env = make_env(spec, model, config)
    view = check_view(model, eval_env, render, config.seed, progress)
    writer = None
    if tensorboard_available():
        from torch.utils.tensorboard import (
            SummaryWriter,  # here: tensorboard is optional (tensorboard_available)
        )

        writer = SummaryWriter(str(out / "tb"))  # eval/* and refine/*; SB3 writes its own run beside it
    else:
        print(TENSORBOARD_HINT, flush=True)
    agent = build_agent(algo, env, config, tensorboard_log=str(out / "tb") if writer is not None else None)
    rows: list[EvalRow] = []
    csv_path = out / "eval.csv"
    t0 = time.perf_counter()
    with csv_path.open("w", newline="") as f:
        csv.writer(f).writerow(EVAL_FIELDS)
    if refiner is not None:
        with (out / "refine.csv").open("w", newline="") as f:
            csv.writer(f).writerow(REFINE_FIELDS)

    def run_eval(step: int) -> None:
        stats, _ = evaluate(agent, eval_env, config.eval_episodes, seed=10_000 + config.seed * 1000)
        row = EvalRow(step, stats["success_rate"], stats["env_return"],
                      stats["learned_return"] if model is not None else None, stats["episode_length"],
                      round(time.perf_counter() - t0, 1))
        rows.append(row)
        with csv_path.open("a", newline="") as f:
            csv.writer(f).writerow([getattr(row, k) for k in EVAL_FIELDS])
        if writer is not None:
            for key in ("success_rate", "env_return", "learned_return", "episode_length"):
                if getattr(row, key) is not None:
                    writer.add_scalar(f"eval/{key}", getattr(row, key), step)
            writer.flush()
        if progress:
            learned = "" if row.learned_return is None else f", learned return {row.learned_return:.1f}"
            rate = "unknown (the env gives no success signal)" if np.isnan(row.success_rate) else \
                f"{row.success_rate:.0%}"
            write(f"step {step}: success {rate}, env return {row.env_return:.1f}{learned}, "
                       f"length {row.episode_length:.0f} ({row.wall_s:.0f} s)")  # above the progress bar

    def run_refine(step: int) -> None:
        stats = refiner.refine(config.refine_steps)
        if stats is None:  # no agent episode of 2+ frames yet
            return
        learned = learned_reward_of(env)
        if learned is not None:  # the running episode's cached features came from the old weights
            learned.refresh()
        with (out / "refine.csv").open("a", newline="") as f:
            csv.writer(f).writerow([step, *(v if isinstance(v := stats[k], int) else round(float(v), 6)
                                            for k in REFINE_FIELDS[1:])])
        if writer is not None:
            for key in ("loss", "expert_mae", "agent_mu", "pushback"):
                writer.add_scalar(f"refine/{key}", stats[key], step)
        if progress:
            write(f"step {step}: refined the reward ({config.refine_steps} steps, {stats['agent_frames']} "
                       f"agent frames): agent mu {stats['agent_mu_before']:.3f} -> {stats['agent_mu']:.3f}, demo "
                       f"|mu - t| {stats['expert_mae']:.3f} ({stats['seconds']:.1f} s)")

    class EvalCallback(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % config.eval_every == 0:
                run_eval(self.num_timesteps)
            return True

    class RefineCallback(BaseCallback):
        """Every `refine_every` env steps: push back the agent's frames (rl/refine.py)."""

        def _on_step(self) -> bool:
            if self.num_timesteps % config.refine_every == 0:
                run_refine(self.num_timesteps)
            return True

    class ProgressBar(BaseCallback):
        """A bar over environment steps on a terminal, its end line in a log file (`--quiet` turns it off)."""

        def _on_training_start(self) -> None:
            self.bar = progress_bar(total=config.steps, desc=f"rl {algo} on {task}", unit="step")

        def _on_step(self) -> bool:
            self.bar.update(min(self.num_timesteps, config.steps) - self.bar.n)  # SB3 may overshoot by a few
            if rows and rows[-1].step == self.num_timesteps:  # an evaluation just ran: its success on the bar
                rate = rows[-1].success_rate
                self.bar.set_postfix_str(f"last eval success {'unknown' if np.isnan(rate) else f'{rate:.0%}'}")
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    class StopOnSignal(BaseCallback):
        """The first Ctrl-C or SIGTERM ends training after the current step (SB3 stops when a callback says
        False); the policy, log and plot are written as at the end of a run. A second one interrupts at once."""

        def _on_step(self) -> bool:
            return not stop.requested

    callbacks = ([RefineCallback()] if refiner is not None else []) + [EvalCallback(), StopOnSignal()]
    callbacks += [ProgressBar()] if progress else []  # after EvalCallback: the bar shows the evaluation it ran
    interrupted = False
    with StopRequest() as stop:
        try:
            agent.learn(total_timesteps=config.steps, callback=CallbackList(callbacks), tb_log_name=algo.upper())
        except KeyboardInterrupt:  # a second signal: keep what was learned all the same
            interrupted = True
        interrupted = interrupted or stop.requested
        if interrupted:
            write(f"stopping at step {agent.num_timesteps} ({stop.signal_name or 'interrupted'}): the policy is "
                  f"written first, then the last evaluation and the plots (another signal ends it at once)")
    save_agent(agent, out, task, reward, algo, config, interrupted, spec, render, view)  # first: nothing after can lose it
    if refiner is not None:
        refined = {**model.config, "refinement": {**refiner.summary(), "from": str(reward), "task": task,
                                                  "algo": algo, "timesteps": int(agent.num_timesteps)}}
        RewardModel(model.head, refined, model.device).save(out / "reward_model")
    if not rows or agent.num_timesteps - rows[-1].step >= max(1, config.eval_every // 2):
        run_eval(agent.num_timesteps)  # the final policy (SB3 may overshoot `steps` by < train_freq)
    if writer is not None:
        writer.close()
    _, frames = evaluate(agent, eval_env, 1, seed=20_000, record=True)
    plot_learning_curves([out], out / "learning_curve.png")
    write_episode_video(frames, out / "eval_episode.mp4")
    return rows


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
