"""Checkpoints of a `v2r rl` run, so a run of hours survives a kill -9 (`--checkpoint-every`, `--resume`).

    OUT/checkpoint/agent.safetensors    the policy (SAC: actor, critics, target critics; DQN: Q and target nets),
                                        every optimizer's state, SAC's log entropy coefficient (sbx agents:
                                        their flax TrainStates and PRNG keys, rl/jax_agents.py)
    OUT/checkpoint/buffer.safetensors   the replay buffer's filled rows (observations, actions, rewards, ...)
    OUT/checkpoint/extra.safetensors    the discriminator (D, its optimizer, the agent's features), if any
    OUT/checkpoint/reward_model/        the refined reward model, with --refine
    OUT/checkpoint/state.json           step counts, the buffer's position, RNG states, the evaluations so far

Tensors in safetensors, everything else in JSON: nothing in a checkpoint can run code when read (SB3's own
.zip and replay-buffer .pkl files are pickles). A checkpoint is written into OUT/checkpoint.tmp and swapped
in with renames, so a kill at any moment leaves the previous checkpoint or the new one whole.

What a resumed run does not get back: the environments' own state in the middle of an episode (it starts new
episodes: the interrupted ones are not in the buffer's future, their past steps are), and the refinement
optimizer's moments (refinement restarts its AdamW from the refined weights).
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from video2reward.core.files import load_tensors, read_json, save_tensors, write_json
from video2reward.errors import ConfigError
from video2reward.rl.jax_agents import is_jax_agent, jax_tensors, load_jax_tensors

FOLDER = "checkpoint"
BUFFER_FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "_n_calls")


# ---- optimizers as tensors + JSON --------------------------------------------------------------------
def optimizer_tensors(optimizer: torch.optim.Optimizer, prefix: str) -> tuple[dict[str, torch.Tensor], list]:
    """An optimizer's per-parameter state as named tensors (copies), and its param groups (JSON-able)."""
    state = optimizer.state_dict()
    tensors = {f"{prefix}.{pid}.{name}": torch.as_tensor(value).clone()
               for pid, slot in state["state"].items() for name, value in slot.items()}
    return tensors, state["param_groups"]


def load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str,
                   groups: list) -> None:
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            pid, name = key[len(prefix) + 1 :].split(".", 1)
            state.setdefault(int(pid), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def _optimizers(agent) -> dict[str, torch.optim.Optimizer]:
    """The optimizers of an SB3 DQN or SAC agent, by name."""
    found = {}
    for name in ("actor", "critic"):  # SAC
        part = getattr(agent, name, None)
        if part is not None and getattr(part, "optimizer", None) is not None:
            found[name] = part.optimizer
    if not found:  # DQN: one optimizer on the policy
        found["policy"] = agent.policy.optimizer
    if getattr(agent, "ent_coef_optimizer", None) is not None:
        found["ent_coef"] = agent.ent_coef_optimizer
    return found


# ---- RNG states as JSON ------------------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_py = random.getstate()
    return {"torch": torch.get_rng_state().tolist(), "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
            "python": [version, list(internal), gauss_py]}


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(torch.tensor(state["torch"], dtype=torch.uint8))
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_py = state["python"]
    random.setstate((version, tuple(internal), gauss_py))


# ---- the checkpoint ------------------------------------------------------------------------------------
def save_checkpoint(out: Path, agent, rows: list[dict[str, Any]], extras: dict[str, Any] | None = None,
                    discriminator=None, reward_model=None) -> Path:
    """Write OUT/checkpoint (see the module docstring); `rows`: the evaluations so far, `extras`: JSON facts."""
    out = Path(out)
    tmp, final, old = out / (FOLDER + ".tmp"), out / FOLDER, out / (FOLDER + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    groups: dict[str, list] = {}
    if is_jax_agent(agent):
        tensors = {f"jax.{k}": v for k, v in jax_tensors(agent).items()}
    else:
        tensors = {f"policy.{k}": v.detach().cpu().clone() for k, v in agent.policy.state_dict().items()}
        for name, optimizer in _optimizers(agent).items():
            part, groups[name] = optimizer_tensors(optimizer, f"optim.{name}")
            tensors.update(part)
    if getattr(agent, "log_ent_coef", None) is not None:
        tensors["log_ent_coef"] = agent.log_ent_coef.detach().cpu().clone()
    save_tensors(tmp / "agent.safetensors", tensors)
    buffer = agent.replay_buffer
    filled = buffer.buffer_size if buffer.full else buffer.pos
    save_tensors(tmp / "buffer.safetensors", {
        name: torch.from_numpy(np.ascontiguousarray(getattr(buffer, name)[:filled]))
        for name in BUFFER_FIELDS if getattr(buffer, name, None) is not None})
    disc = None
    if discriminator is not None:
        disc_tensors, disc = discriminator.state()
        save_tensors(tmp / "extra.safetensors", disc_tensors)
    if reward_model is not None:
        reward_model.save(tmp / "reward_model")
    write_json(tmp / "state.json", {
        "counters": {name: int(getattr(agent, name, 0)) for name in COUNTERS},
        "buffer": {"pos": int(buffer.pos), "full": bool(buffer.full), "size": int(buffer.buffer_size)},
        "optimizer_groups": groups, "rng": rng_state(), "rows": rows, "discriminator": disc, **(extras or {})})
    if final.exists():  # swap: at every moment one whole checkpoint exists under `final` or `old`
        shutil.rmtree(old, ignore_errors=True)
        final.rename(old)
    tmp.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def find_checkpoint(out: Path) -> Path | None:
    """The run's last whole checkpoint (a kill during the swap leaves it under checkpoint.old)."""
    for name in (FOLDER, FOLDER + ".old"):
        if (Path(out) / name / "state.json").exists():
            return Path(out) / name
    return None


def load_checkpoint(folder: Path, agent, discriminator=None) -> dict[str, Any]:
    """Restore `agent` (made as the checkpointed run made it) and the discriminator; returns state.json."""
    state = read_json(folder / "state.json")
    tensors = load_tensors(folder / "agent.safetensors")
    if is_jax_agent(agent):
        load_jax_tensors(agent, {k[4:]: v for k, v in tensors.items() if k.startswith("jax.")},
                         source=str(folder / "agent.safetensors"))
    else:
        agent.policy.load_state_dict({k[7:]: v for k, v in tensors.items() if k.startswith("policy.")})
        for name, optimizer in _optimizers(agent).items():
            load_optimizer(optimizer, tensors, f"optim.{name}", state["optimizer_groups"][name])
    if "log_ent_coef" in tensors:
        with torch.no_grad():
            agent.log_ent_coef.copy_(tensors["log_ent_coef"])
    buffer, facts = agent.replay_buffer, state["buffer"]
    if facts["size"] != buffer.buffer_size:
        raise ConfigError(f"{folder}: the checkpoint's replay buffer holds {facts['size']} rows, this run's "
                          f"{buffer.buffer_size}: resume with the options of the interrupted run")
    for name, value in load_tensors(folder / "buffer.safetensors").items():
        getattr(buffer, name)[: len(value)] = value.numpy()
    buffer.pos, buffer.full = facts["pos"], facts["full"]
    for name, value in state["counters"].items():
        if hasattr(agent, name):
            setattr(agent, name, value)
    if discriminator is not None and state.get("discriminator") is not None:
        discriminator.load_state(load_tensors(folder / "extra.safetensors"), state["discriminator"])
    set_rng_state(state["rng"])
    return state
