"""What the learned reward costs an RL run: environment steps per second without rendering, with rendering
only, and with LearnedReward (render + resize to the model's frames as training videos were made + the
model), and the milliseconds per learned reward.

    python bench/rl_overhead.py                              # mountaincar and pendulum, untrained 64 px model
    python bench/rl_overhead.py --metaworld                  # + metaworld:reach-v3 (MuJoCo, EGL offscreen)
    python bench/rl_overhead.py --model models/pendulum      # + a trained model folder
    python bench/rl_overhead.py --quick                      # a smoke run: a few steps each
    python bench/rl_overhead.py --envs 1 2 4                 # + `v2r rl --envs N`'s vector path at each N

The vector rows time what `v2r rl --envs N` steps: N sub-envs (subprocesses when N > 1) that render and
resize where they run, and one batched learned-reward call per vector step (rl/vec.py); "env reward" is
the same vector env without rendering or the model. Env steps/s count the steps of all N envs.

Actions are random (the agent's own cost is not measured); episodes restart when they end. The untrained
model is `v2r train`'s default architecture (cnn encoder, 64 px frames, progress head, motion gap 2) with
random weights: its cost is the trained model's. ms/reward is LearnedReward's own timer (render + resize
+ model, per reset and step; the env's physics not included). Every figure is measured in this run, on this machine;
the machine's load average is printed with it, because other processes slow every column.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from video2reward.encoders import build_encoder
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rl import LearnedReward
from video2reward.rl.config import RLConfig
from video2reward.rl.envs import TaskInfo, env_spec, with_render
from video2reward.rl.render import resolve_render
from video2reward.rl.vec import VecLearnedReward, make_vec_env
from video2reward.training.config import TrainConfig

COLUMNS = ("task", "model", "steps/s plain", "steps/s render", "steps/s learned", "ms/reward")
VEC_COLUMNS = ("task", "model", "envs", "steps/s env reward", "steps/s learned", "learned / env time")


def default_model(seed: int = 0) -> RewardModel:
    """A progress model with `v2r train`'s settings, untrained: the default head's first member (the default
    progress+rank scores a second encoder per reward, so its learned-reward cost is about twice this)."""
    train = TrainConfig()
    torch.manual_seed(seed)
    encoder = build_encoder(train.encoder, train.image_size)
    head = ProgressHead(encoder, ProgressConfig())  # the progress head's own defaults, as `v2r train` uses them
    return RewardModel(head, {"head": "progress", "image_size": train.image_size, "frame_fit": train.frame_fit,
                              "encoder": {"name": train.encoder, "config": dataclasses.asdict(encoder.config)},
                              "head_config": dataclasses.asdict(head.config)})


def steps_per_second(env, steps: int, render: bool = False, seed: int = 0) -> float:
    """Random-action env steps per second (resets included); `render` also renders every step."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    if render:
        env.render()
    t0 = time.perf_counter()
    for i in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if render:
            env.render()
        if terminated or truncated:
            env.reset(seed=seed + i + 1)
            if render:
                env.render()
    return steps / (time.perf_counter() - t0)


def bench_task(task: str, models: dict[str, RewardModel], steps: int) -> list[dict]:
    spec = env_spec(task)
    plain_env, render_env = spec.make(None), spec.make("rgb_array")
    steps_per_second(render_env, min(steps, 20), render=True)  # warm-up: first renders build GL contexts
    plain = steps_per_second(plain_env, steps)
    render = steps_per_second(render_env, steps, render=True)
    plain_env.close()
    rows = []
    for name, model in models.items():
        env = LearnedReward(render_env, model)
        steps_per_second(env, min(steps, 10))  # warm-up: first calls allocate
        env.reward_seconds, env.reward_calls = 0.0, 0
        learned = steps_per_second(env, steps)
        rows.append({"task": task, "model": name, "steps/s plain": plain, "steps/s render": render,
                     "steps/s learned": learned, "ms/reward": 1000 * env.seconds_per_reward})
    render_env.close()
    return rows


def vec_steps_per_second(spec, model, n: int, steps: int, seed: int = 0) -> float:
    """Env steps/s (all N envs) of `v2r rl --envs N`'s training env with random actions; model None: the env
    reward (no rendering)."""
    one = (lambda: TaskInfo(spec.make("rgb_array"), spec)) if model is not None else (lambda: TaskInfo(spec.make(None), spec))
    venv = make_vec_env(one, n, model)
    if model is not None:
        venv = VecLearnedReward(venv, model, offset=-1.0)
    venv.seed(seed)
    venv.action_space.seed(seed)
    venv.reset()
    for _ in range(3):  # warm-up: GL contexts, first allocations
        venv.step(np.stack([venv.action_space.sample() for _ in range(n)]))
    vec_steps = max(1, steps // n)
    t0 = time.perf_counter()
    for _ in range(vec_steps):
        venv.step(np.stack([venv.action_space.sample() for _ in range(n)]))
    rate = vec_steps * n / (time.perf_counter() - t0)
    venv.close()
    return rate


def bench_vec(task: str, models: dict[str, RewardModel], steps: int, envs: list[int]) -> list[dict]:
    spec, rows = env_spec(task), []
    for n in envs:
        plain = vec_steps_per_second(spec, None, n, steps)
        for name, model in models.items():  # rendered as the model's training videos were (v2r rl's default)
            render, _ = resolve_render("", "", "auto", model.config.get("render"), spec.make_scene is not None)
            learned = vec_steps_per_second(with_render(spec, render), model, n, steps)
            rows.append({"task": task, "model": name, "envs": n, "steps/s env reward": plain,
                         "steps/s learned": learned, "learned / env time": plain / learned})
        print(f"  {task}, {n} env(s): done", flush=True)
    return rows


def format_table(rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> str:
    cells = [[str(r[c]) if not isinstance(r[c], float) else (f"{r[c]:.0f}" if r[c] >= 10 else f"{r[c]:.2f}")
              for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(columns, widths)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |" for row in cells]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["mountaincar", "pendulum"],
                        help="task names as `v2r rl` takes them (default: mountaincar pendulum)")
    parser.add_argument("--metaworld", action="store_true", help="also metaworld:reach-v3")
    parser.add_argument("--model", metavar="DIR", help="also a trained model folder from `v2r train`")
    parser.add_argument("--steps", type=int, default=1000, help="env steps per measurement (default: 1000)")
    parser.add_argument("--threads", type=int, default=RLConfig.threads,
                        help=f"torch CPU threads, as `v2r rl --threads` (default: {RLConfig.threads})")
    parser.add_argument("--quick", action="store_true", help="smoke run: 30 steps per measurement")
    parser.add_argument("--envs", type=int, nargs="*", default=[], metavar="N",
                        help="also time `v2r rl --envs N`'s vector env at each N (e.g. --envs 1 2 4)")
    args = parser.parse_args()

    torch.set_num_threads(max(1, args.threads))
    steps = 30 if args.quick else args.steps
    tasks = list(args.tasks) + (["metaworld:reach-v3"] if args.metaworld else [])
    models = {"untrained 64px cnn": default_model()}
    if args.model:
        import video2reward

        trained = video2reward.load(args.model)
        models[f"{Path(args.model).name} ({trained.describe()})"] = trained
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, load average {load}; "
          f"torch {torch.__version__} with {torch.get_num_threads()} thread(s); {steps} random-action steps "
          f"per measurement")
    rows = []
    for task in tasks:
        rows += bench_task(task, models, steps)
        print(f"  {task}: done", flush=True)
    print(format_table(rows))
    if args.envs:
        vec_rows = []
        for task in tasks:
            vec_rows += bench_vec(task, models, steps, args.envs)
        print(format_table(vec_rows, VEC_COLUMNS))
    slow = [r for r in rows if r["steps/s learned"] < r["steps/s render"]]
    if slow:
        share = np.mean([1 - r["steps/s learned"] / r["steps/s render"] for r in slow])
        print(f"resizing + scoring take {share:.0%} of a LearnedReward step's time on average "
              f"(load average now {', '.join(f'{x:.2f}' for x in os.getloadavg())})")


if __name__ == "__main__":
    main()
