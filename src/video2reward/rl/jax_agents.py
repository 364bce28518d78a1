"""JAX agents from sbx (stable-baselines3's JAX port, same API): `--algo sbx-sac` and `--algo sbx-crossq`.

sbx keeps SB3's loop, replay buffer and callbacks and moves the networks into JAX, where each gradient step is
one compiled (XLA) call: on a 2-core CPU SAC's update runs about twice as fast as SB3's PyTorch one (measured
by bench/rl_backends.py). Its state lives in flax pytrees (TrainState: params, optimizer state, step; the
critics' target params), not in torch modules, so checkpoints and policy files read and write it here as
named arrays:

    "policy.actor_state.params['params']['Dense_0']['kernel']" -> (obs_dim, 256) float32, ...

Names are the pytree paths (jax.tree_util.keystr), so loading into an agent built with the same options puts
every array back where it came from, and a mismatch names the array and both shapes. No pickles.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np
import torch

from video2reward.errors import ConfigError

ALGOS = ("sbx-sac", "sbx-crossq")
# every piece of an sbx agent's state: networks + optimizers (TrainStates), entropy coefficient, PRNG keys
PARTS = ("policy.actor_state", "policy.qf_state", "ent_coef_state", "key", "policy.key", "policy.noise_key")
INSTALL = "pip install sbx-rl, or pip install -e '.[rl-jax]'"


def is_jax_agent(agent) -> bool:
    return hasattr(agent.policy, "actor_state")


def jax_available() -> bool:
    """Whether sbx is installed (then `--algo auto` trains continuous-action tasks with its SAC)."""
    return importlib.util.find_spec("sbx") is not None


def limit_threads(threads: int) -> None:
    """XLA's CPU thread pools, set before jax is first imported (later it has no effect): with --threads 1 the
    compiled update shares the cores with the environment processes instead of fighting them."""
    if threads == 1 and "jax" not in sys.modules:
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1".strip()


def jax_algorithm(algo: str):
    """The sbx class of `algo`, or a ConfigError that says how to install it."""
    try:
        import sbx  # here, not at the top: sbx (and JAX) are optional
    except ImportError as error:
        raise ConfigError(f"--algo {algo} needs sbx, SB3's JAX port: {INSTALL} (or use --algo sac)") from error
    return {"sbx-sac": sbx.SAC, "sbx-crossq": sbx.CrossQ}[algo]


def _get(agent, dotted: str):
    obj = agent
    for name in dotted.split("."):
        obj = getattr(obj, name, None)
    return obj


def _set(agent, dotted: str, value) -> None:
    owner, _, name = dotted.rpartition(".")
    setattr(_get(agent, owner) if owner else agent, name, value)


def jax_tensors(agent, parts: tuple[str, ...] = PARTS) -> dict[str, torch.Tensor]:
    """The agent's state as named CPU tensors (copies). PRNG keys (uint32) are stored as int64."""
    import jax  # here, not at the top: only sbx agents get here

    tensors = {}
    for part in parts:
        tree = _get(agent, part)
        if tree is None:
            continue
        for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
            value = np.array(leaf)
            tensors[part + jax.tree_util.keystr(path)] = torch.from_numpy(
                value.astype(np.int64) if value.dtype == np.uint32 else value)
    return tensors


def load_jax_tensors(agent, tensors: dict[str, torch.Tensor], parts: tuple[str, ...] = PARTS,
                     source: str = "the checkpoint") -> None:
    """Put `tensors` (from jax_tensors) back into an agent built with the same options."""
    import jax  # here, not at the top: only sbx agents get here
    import jax.numpy as jnp  # here, not at the top: only sbx agents get here

    for part in parts:
        tree = _get(agent, part)
        if tree is None:
            continue
        leaves, treedef = jax.tree_util.tree_flatten_with_path(tree)
        values = []
        for path, leaf in leaves:
            name = part + jax.tree_util.keystr(path)
            if name not in tensors:
                raise ConfigError(f"{source} has no {name}: it was written by an agent of other options (--algo)")
            value = tensors[name].numpy()
            if value.shape != np.shape(leaf):
                raise ConfigError(f"{source}: {name} is {value.shape}, this agent's {np.shape(leaf)}: resume "
                                  f"with the options of the interrupted run")
            values.append(jnp.asarray(value.astype(np.asarray(leaf).dtype)))
        _set(agent, part, jax.tree_util.tree_unflatten(treedef, values))
