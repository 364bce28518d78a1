"""`v2r rl`: train a stable-baselines3 agent (DQN for discrete actions, SAC for continuous) on a task whose
reward is the learned video reward (or, for the comparison runs, the env's own reward or the sparse success-only
reward: `--reward env` / `--reward sparse`), and measure what matters:
true task success.

    N x [env -> TaskInfo (env reward + true success into info) -> FrameInInfo (the model's frame)]
        -> VecLearnedReward (one batched reward call per step; + log D with the discriminator) -> VecMonitor
        -> SB3 DQN / SAC -> every `eval_every` steps: deterministic episodes (rl/evaluation.py) -> OUT/eval.csv
        -> OUT/policy.safetensors + config.json, OUT/learning_curve.png, OUT/eval_episode.mp4
        every `checkpoint_every` steps and on Ctrl-C / SIGTERM: OUT/checkpoint (rl/checkpoint.py; --resume)

With `--refine` (progress models), the frames env 0 shows are kept, and every `refine_every` steps a callback
runs rl/refine.RewardRefiner on them (push-back of the agent's frames, the demonstrations held); the refined
model is saved to OUT/reward_model, its losses logged to OUT/refine.csv. With `--reward-mode
progress+discriminator`, every `disc_every` steps the discriminator (rl/discriminator.py) is trained on the
demonstrations' features vs the agent's (OUT/discriminator.csv). With tensorboard installed, SB3's own training
scalars and the evaluation (and refinement) scalars also go to OUT/tb (`tensorboard --logdir OUT/tb`).

With N envs, SAC takes N gradient steps per vector step and DQN trains every dqn_train_freq / N vector steps,
so updates per environment step stay those of one env: N envs change the wall time, not the learning.
DQN keeps the seed paper's parts: a replay buffer, an epsilon-greedy schedule, a target network updated
every `target_update_interval` steps. The agent's weights are saved as safetensors (SB3's own .zip pickles).
"""

from __future__ import annotations

import csv
import importlib
import time
from dataclasses import asdict
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import VecMonitor

from video2reward.core.preflight import check_output_folder
from video2reward.core.progress import progress_bar, write
from video2reward.core.stop import StopRequest
from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.rl.checkpoint import find_checkpoint, load_checkpoint, save_checkpoint
from video2reward.rl.config import RLConfig
from video2reward.rl.discriminator import DiscriminatorConfig, DiscriminatorReward
from video2reward.rl.envs import EnvSpec, SuccessReward, TaskInfo, env_spec, with_render
from video2reward.rl.evaluation import (
    EVAL_FIELDS,
    EvalRow,
    check_view,
    evaluate,
    save_agent,
)
from video2reward.rl.jax_agents import ALGOS as JAX_ALGOS
from video2reward.rl.jax_agents import (
    INSTALL,
    jax_algorithm,
    jax_available,
    limit_threads,
)
from video2reward.rl.refine import (
    AgentFrameBuffer,
    RewardRefiner,
    check_refinable,
    refinement_videos,
)
from video2reward.rl.render import resolve_render
from video2reward.rl.report import plot_learning_curves, write_episode_video
from video2reward.rl.vec import VecLearnedReward, make_vec_env
from video2reward.rl.wrapper import LearnedReward

REFINE_FIELDS = ("step", "loss", "expert_mae", "agent_mu_before", "agent_mu", "pushback", "agent_frames",
                 "agent_episodes", "seconds")
DISC_FIELDS = ("step", "loss", "d_demo", "d_agent", "accuracy", "agent_frames", "seconds")
TENSORBOARD_HINT = "TensorBoard logs are off: `pip install tensorboard` to get them in OUT/tb"


def reward_options(config: RLConfig) -> dict:
    """LearnedReward / VecLearnedReward options of the run's reward mode."""
    mode = "progress" if config.reward_mode == "progress+discriminator" else config.reward_mode
    return {"reward": mode, "k": config.k, "offset": -1.0 if mode != "shaping" else 0.0}


def make_env(spec: EnvSpec, reward_model, config: RLConfig, sparse: bool = False) -> gym.Env:
    """The evaluation env: true success and env reward in info, the learned reward (without the
    discriminator's term: evaluation episodes must not train it) as reward."""
    env = TaskInfo(spec.make("rgb_array"), spec)  # frames are rendered only when asked for
    if sparse:  # --reward sparse: 1 where the task is achieved, else 0
        env = SuccessReward(env)
    if reward_model is not None:
        env = LearnedReward(env, reward_model, **reward_options(config))
    return Monitor(env)


def make_train_env(spec: EnvSpec, model, config: RLConfig, refiner=None, discriminator=None, sparse: bool = False):
    """The training envs: `config.envs` of them, rewarded together by VecLearnedReward (rl/vec.py)."""
    def one() -> gym.Env:
        env = TaskInfo(spec.make("rgb_array" if model is not None else None), spec)
        return SuccessReward(env) if sparse else env

    venv = make_vec_env(one, config.envs, model)
    if model is None:
        return VecMonitor(venv)
    on_frames = None
    if refiner is not None:  # env 0's frames are the agent's frames for refinement (one stream of episodes)
        def on_frames(frames: np.ndarray, starts: np.ndarray) -> None:
            if not len(starts):
                refiner.buffer.add(frames[0])
            elif 0 in starts:
                refiner.buffer.start_episode(frames[list(starts).index(0)])

    return VecMonitor(VecLearnedReward(venv, model, **reward_options(config), discriminator=discriminator,
                                       on_frames=on_frames))


def tensorboard_available() -> bool:
    """Whether torch.utils.tensorboard works here (it needs the `tensorboard` package)."""
    try:
        importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        return False
    return True


def build_agent(algo: str, env, config: RLConfig, tensorboard_log: str | None = None):
    n = env.num_envs
    if algo == "dqn":
        return DQN("MlpPolicy", env, learning_rate=config.dqn_lr, buffer_size=config.dqn_buffer,
                   batch_size=config.dqn_batch, learning_starts=config.dqn_learning_starts, gamma=config.dqn_gamma,
                   target_update_interval=config.dqn_target_update, train_freq=max(1, config.dqn_train_freq // n),
                   gradient_steps=config.dqn_gradient_steps, exploration_fraction=config.dqn_exploration_fraction,
                   exploration_final_eps=config.dqn_exploration_final, policy_kwargs={"net_arch": [256, 256]},
                   seed=config.seed, device="cpu", verbose=0, tensorboard_log=tensorboard_log)
    if algo in JAX_ALGOS:  # same options; CrossQ keeps its own learning rate, critics and policy delay
        lr = {} if algo == "sbx-crossq" else {"learning_rate": config.sac_lr}
        return jax_algorithm(algo)("MlpPolicy", env, **lr, learning_starts=config.sac_learning_starts,
                                   gamma=config.sac_gamma, gradient_steps=-1 if n > 1 else 1, seed=config.seed,
                                   verbose=0, tensorboard_log=tensorboard_log)
    return SAC("MlpPolicy", env, learning_rate=config.sac_lr, learning_starts=config.sac_learning_starts,
               gamma=config.sac_gamma, gradient_steps=-1 if n > 1 else 1, seed=config.seed, device="cpu",
               verbose=0, tensorboard_log=tensorboard_log)


def make_discriminator(model: RewardModel, config: RLConfig) -> DiscriminatorReward:
    """D on the model's features of its demonstration frames (rl/discriminator.py)."""
    demos = refinement_videos(model, config.disc_videos or None)
    features = torch.cat([model.embed_frames(d.frames.permute(0, 2, 3, 1).numpy()) for d in demos])  # (M, D)
    return DiscriminatorReward(features, DiscriminatorConfig(weight=config.disc_weight), seed=config.seed)


def crossed(step: int, n_envs: int, every: int) -> bool:
    """Whether the last vector step (n_envs env steps, ending at `step`) crossed a multiple of `every`."""
    return every > 0 and step // every != (step - n_envs) // every


def append_csv(path: Path, row) -> None:
    with path.open("a", newline="") as f:
        csv.writer(f).writerow(row)


def train_agent(task: str, reward: str, out: str | Path, config: RLConfig | None = None,
                progress: bool = True) -> list[EvalRow]:
    """Train on `task` with the learned reward model at `reward` (or 'env'); log evaluations to OUT."""
    config = config or RLConfig()
    out = Path(out)
    check_output_folder(out, "the run")  # before the first environment step, not after hours of them
    checkpoint = find_checkpoint(out) if config.resume else None
    if config.resume and checkpoint is None:
        raise ConfigError(f"--resume: {out} has no checkpoint to continue from (OUT/checkpoint/state.json)")
    torch.set_num_threads(max(1, config.threads))
    spec = env_spec(task, config.success)
    discrete = spec.discrete()
    algo = config.algo if config.algo != "auto" else ("dqn" if discrete else "sbx-sac" if jax_available() else "sac")
    if (algo == "dqn") != discrete:
        raise ConfigError(f"--algo {algo} does not fit {task}: its actions are "
                          f"{'discrete (use dqn)' if discrete else 'continuous (use sac)'}")
    if algo in JAX_ALGOS:
        limit_threads(config.threads)
        jax_algorithm(algo)  # not installed: say so now, before any rendering
    if progress:
        write(f"success of {task}: {spec.success_mode} ({spec.success_why})")
        if config.algo == "auto" and algo == "sac":
            write(f"agent: SB3 SAC (PyTorch); with sbx installed ({INSTALL}) --algo auto takes its JAX SAC, about "
                  f"twice the env steps/s on a CPU (docs/results/rl.md)")
    model = None if reward in ("env", "sparse") else RewardModel.load(reward)
    if model is None and (config.refine or config.reward_mode == "progress+discriminator"):
        raise ConfigError(f"--{'refine' if config.refine else 'reward-mode progress+discriminator'} needs a learned "
                          f"reward: give a model folder as --reward, not 'env'")
    render, said = resolve_render(config.camera, config.render_size, config.flip,
                                  model.config.get("render") if model is not None else None,
                                  spec.make_scene is not None)
    spec = with_render(spec, render)
    if said and progress:
        write(said)
    refiner = None
    if config.refine:
        if config.refine_every < 1 or config.refine_steps < 1:
            raise ConfigError("--refine-every and --refine-steps must be at least 1")
        check_refinable(model)
        if checkpoint is not None and (checkpoint / "reward_model").exists():  # the refined weights so far
            model.head.load_state_dict(RewardModel.load(checkpoint / "reward_model").head.state_dict())
        refiner = RewardRefiner(model, refinement_videos(model, config.refine_videos or None),
                                AgentFrameBuffer(config.refine_buffer), lr=config.refine_lr, seed=config.seed)
    disc = make_discriminator(model, config) if config.reward_mode == "progress+discriminator" else None
    env = make_train_env(spec, model, config, refiner, disc, sparse=reward == "sparse")
    eval_env = make_env(spec, model, config, sparse=reward == "sparse")
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
    wall0 = 0.0
    if checkpoint is not None:
        state = load_checkpoint(checkpoint, agent, disc)
        if (state.get("task"), state.get("reward")) != (task, str(reward)):
            raise ConfigError(f"--resume: {out} is a run of {state.get('task')} with reward {state.get('reward')}, "
                              f"not {task} with {reward}")
        rows = [EvalRow(**row) for row in state["rows"]]
        wall0 = state.get("wall_s", 0.0)
        if progress:
            write(f"resuming from step {agent.num_timesteps} ({checkpoint}): {agent.replay_buffer.size()} "
                  f"transitions in the replay buffer, {len(rows)} evaluations so far")
    t0 = time.perf_counter() - wall0
    with csv_path.open("w", newline="") as f:  # on --resume: the evaluations up to the checkpoint
        csv.writer(f).writerows([EVAL_FIELDS, *([getattr(r, k) for k in EVAL_FIELDS] for r in rows)])
    for name, fields, on in (("refine.csv", REFINE_FIELDS, refiner), ("discriminator.csv", DISC_FIELDS, disc)):
        if on is not None and not (checkpoint is not None and (out / name).exists()):
            with (out / name).open("w", newline="") as f:
                csv.writer(f).writerow(fields)

    def run_eval(step: int) -> None:
        stats, _ = evaluate(agent, eval_env, config.eval_episodes, seed=10_000 + config.seed * 1000)
        row = EvalRow(step, stats["success_rate"], stats["env_return"],
                      stats["learned_return"] if model is not None else None, stats["episode_length"],
                      round(time.perf_counter() - t0, 1))
        rows.append(row)
        append_csv(csv_path, [getattr(row, k) for k in EVAL_FIELDS])
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
        env.venv.refresh()  # the running episodes' cached features came from the old weights
        append_csv(out / "refine.csv", [step, *(v if isinstance(v := stats[k], int) else round(float(v), 6)
                                                for k in REFINE_FIELDS[1:])])
        if writer is not None:
            for key in ("loss", "expert_mae", "agent_mu", "pushback"):
                writer.add_scalar(f"refine/{key}", stats[key], step)
        if progress:
            write(f"step {step}: refined the reward ({config.refine_steps} steps, {stats['agent_frames']} "
                  f"agent frames): agent mu {stats['agent_mu_before']:.3f} -> {stats['agent_mu']:.3f}, demo "
                  f"|mu - t| {stats['expert_mae']:.3f} ({stats['seconds']:.1f} s)")

    def run_disc(step: int) -> None:
        stats = disc.update(config.disc_steps)
        if stats is None:
            return
        append_csv(out / "discriminator.csv", [step, *(v if isinstance(v := stats[k], int) else round(float(v), 6)
                                                       for k in DISC_FIELDS[1:])])
        if writer is not None:
            for key in ("loss", "d_demo", "d_agent", "accuracy"):
                writer.add_scalar(f"discriminator/{key}", stats[key], step)

    def run_checkpoint() -> None:
        save_checkpoint(out, agent, [asdict(r) for r in rows],
                        {"task": task, "reward": str(reward), "wall_s": round(time.perf_counter() - t0, 1)},
                        discriminator=disc, reward_model=model if refiner is not None else None)

    class Every(BaseCallback):
        """Every vector step: evaluation, refinement, discriminator training and checkpoints when their step
        counts come round; False (SB3 stops) after the first Ctrl-C or SIGTERM."""

        checkpoint_due = False

        def _on_step(self) -> bool:
            step, n = self.num_timesteps, env.num_envs
            if refiner is not None and crossed(step, n, config.refine_every):
                run_refine(step)
            if disc is not None and crossed(step, n, config.disc_every):
                run_disc(step)
            if crossed(step, n, config.eval_every):
                run_eval(step)
            self.checkpoint_due = self.checkpoint_due or crossed(step, n, config.checkpoint_every)
            return not stop.requested

        def _on_rollout_end(self) -> None:  # after SB3 stored the step's transitions: buffer and count agree
            if self.checkpoint_due:
                run_checkpoint()
                self.checkpoint_due = False

    class ProgressBar(BaseCallback):
        """A bar over environment steps on a terminal, its end line in a log file (`--quiet` turns it off)."""

        def _on_training_start(self) -> None:
            self.bar = progress_bar(total=config.steps, desc=f"rl {algo} on {task}", unit="step",
                                    initial=min(self.num_timesteps, config.steps))

        def _on_step(self) -> bool:
            self.bar.update(min(self.num_timesteps, config.steps) - self.bar.n)  # SB3 may overshoot by a few
            if rows and rows[-1].step == self.num_timesteps:  # an evaluation just ran: its success on the bar
                rate = rows[-1].success_rate
                self.bar.set_postfix_str(f"last eval success {'unknown' if np.isnan(rate) else f'{rate:.0%}'}")
            return True

        def _on_training_end(self) -> None:
            self.bar.close()

    callbacks = [Every()] + ([ProgressBar()] if progress else [])  # the bar shows the evaluation Every ran
    interrupted = False
    with StopRequest() as stop:
        try:
            agent.learn(total_timesteps=max(config.steps - agent.num_timesteps, 0), callback=CallbackList(callbacks),
                        tb_log_name=algo.upper().replace('-', '_'), reset_num_timesteps=checkpoint is None)
        except KeyboardInterrupt:  # a second signal: keep what was learned all the same
            interrupted = True
        interrupted = interrupted or stop.requested
        if interrupted:
            write(f"stopping at step {agent.num_timesteps} ({stop.signal_name or 'interrupted'}): the checkpoint and "
                  f"policy are written first (continue with --resume), then the last evaluation and the plots "
                  f"(another signal ends it at once)")
        run_checkpoint()  # also at the end: `--resume --steps MORE` trains a finished run further
    save_agent(agent, out, task, reward, algo, config, interrupted, spec, render, view)  # first: nothing after can lose it
    env.close()
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
    eval_env.close()  # now, while the GL context can still be freed (at exit, MuJoCo's EGL would complain)
    return rows
