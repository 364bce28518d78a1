"""How `v2r rl` trains and evaluates an agent: RLConfig, every field with its help (the `v2r rl` options)."""

from __future__ import annotations

from dataclasses import dataclass

from video2reward.core.options import option as _help


@dataclass
class RLConfig:
    """How `v2r rl` trains and evaluates an agent."""

    algo: str = _help("auto", "dqn (discrete actions), sac (continuous; SB3, PyTorch), sbx-sac / sbx-crossq (SB3's "
                      "JAX port, pip install sbx-rl: the same SAC at about twice the updates/s on a CPU; CrossQ: "
                      "no target nets, batch norm, wide critics), or auto: dqn for discrete actions; for continuous ones "
                      "sbx-sac when sbx is installed, else sac",
                      choices=("auto", "dqn", "sac", "sbx-sac", "sbx-crossq"))
    steps: int = _help(100_000, "environment steps of training")
    reward_mode: str = _help("progress", "learned reward per step: 'progress' (mu - 1: at most 0, so reaching "
                             "the goal and ending the episode early pays), 'uncertainty' (mu - k*sigma - 1), "
                             "'shaping' (mu_t - mu_{t-1}, potential-based), or 'progress+discriminator' (mu - 1 + "
                             "disc_weight * log D: Rank2Reward's expert-vs-agent classifier on the model's frame "
                             "features, trained online, so states no demonstration showed cost; rl/discriminator.py)",
                             choices=("progress", "uncertainty", "shaping", "progress+discriminator"))
    k: float = _help(1.0, "weight of sigma in the 'uncertainty' reward")
    camera: str = _help("", "render from this camera of the scene, as the demonstrations were filmed (Meta-World: "
                        "corner, corner2, corner3, topview, behindGripper, ...); default: as the model's training "
                        "videos were rendered (render.json from v2r demo-data), else the env's own view")
    render_size: str = _help("", "render at N (square) or WxH pixels (Meta-World renders at that size; other envs' "
                             "frames are resized); default: as the model's training videos, else the env's own size")
    flip: str = _help("auto", "turn the rendered frames over: none, vertical, horizontal or both (Meta-World's "
                      "frames are already upright); auto: as the model's training videos, else none",
                      choices=("auto", "none", "vertical", "horizontal", "both"))
    success: str = _help("auto", "how true task success is told: 'info' (info['success'] / info['is_success']), "
                         "'terminated' (the episode ended by termination, not the time limit: Acrobot, "
                         "MountainCar), 'return>=X' (the episode's env return reached X: CartPole-v1 is "
                         "return>=475), 'task' (a demo task's own test), or 'auto': the demo task's test, info for "
                         "Meta-World, the built-in choice for known gymnasium ids, else the id's reward threshold, "
                         "else info (logged as unknown when the env never says). The choice is in the run's "
                         "config.json")
    envs: int = _help(1, "environments stepped together, each in its own process when more than 1 (they render in "
                      "parallel); the learned reward scores the frames of all of them in one call per step")
    checkpoint_every: int = _help(10_000, "write OUT/checkpoint (agent, optimizers, replay buffer, discriminator, "
                                  "refined reward model, RNG states) every this many steps; 0: only when stopped "
                                  "by Ctrl-C / SIGTERM")
    resume: bool = _help(False, "continue the run in OUT from its last checkpoint (after a crash, kill -9 or Ctrl-C); "
                         "give the interrupted run's options again")
    eval_every: int = _help(5000, "evaluate every this many training steps")
    eval_episodes: int = _help(10, "deterministic evaluation episodes per evaluation")
    seed: int = _help(0, "seed of the agent, the environments and the evaluation episodes")
    threads: int = _help(1, "torch CPU threads (RL nets are small: 1 is usually fastest)")
    # DQN (stable-baselines3; defaults from rl-baselines3-zoo's MountainCar-v0 setting)
    dqn_lr: float = _help(4e-3, "DQN learning rate")
    dqn_buffer: int = _help(10_000, "DQN replay buffer size")
    dqn_batch: int = _help(128, "DQN batch size")
    dqn_learning_starts: int = _help(1000, "DQN steps of random play before learning")
    dqn_gamma: float = _help(0.98, "DQN discount")
    dqn_target_update: int = _help(600, "DQN target network update interval (steps)")
    dqn_train_freq: int = _help(16, "DQN: train every this many steps ...")
    dqn_gradient_steps: int = _help(8, "... with this many gradient steps")
    dqn_exploration_fraction: float = _help(0.2, "DQN: fraction of training over which epsilon decays")
    dqn_exploration_final: float = _help(0.07, "DQN final epsilon")
    # SAC
    sac_lr: float = _help(1e-3, "SAC learning rate")
    sac_learning_starts: int = _help(1000, "SAC steps of random play before learning")
    sac_gamma: float = _help(0.99, "SAC discount")
    # Online refinement of the learned reward (rl/refine.py)
    refine: bool = _help(False, "refine the reward model online: the frames the agent visits become "
                         "PROGRESSOR push-back negatives (their progress is pushed below the model's prediction) "
                         "while batches of the demonstrations keep the expert ordering, so the agent cannot "
                         "exploit the reward on states no video showed; progress head only. The reward then "
                         "changes during training (see rl/refine.py); the refined model is saved to "
                         "OUT/reward_model")
    refine_every: int = _help(1000, "--refine: refine every this many environment steps")
    refine_steps: int = _help(10, "--refine: gradient steps per refinement")
    refine_buffer: int = _help(2000, "--refine: the agent's latest frames kept as negatives (whole recent "
                               "episodes; S*S*3 bytes each: 2000 frames of 64 px = 25 MB)")
    refine_lr: float = _help(1e-4, "--refine: AdamW learning rate of the reward model (constant; small, so the "
                             "reward drifts slowly compared with the replay buffer's turnover)")
    refine_videos: str = _help("", "--refine: demonstration videos (folder or file) that keep the expert "
                               "ordering; default: the model's own training videos (config.json "
                               "training.videos, paths as given to `v2r train`)")
    # Rank2Reward's discriminator (--reward-mode progress+discriminator; rl/discriminator.py)
    disc_weight: float = _help(0.1, "lambda: weight of log D in the reward")
    disc_every: int = _help(1000, "train the discriminator every this many environment steps ...")
    disc_steps: int = _help(50, "... for this many AdamW steps on batches of demonstration vs agent frame features")
    disc_videos: str = _help("", "demonstration videos (folder or file) the discriminator calls expert; default: the "
                             "model's own training videos")
