"""Rank2Reward's expert-vs-agent discriminator: a term of the RL reward that the agent cannot exploit by
reaching states no demonstration showed (`v2r rl --reward-mode progress+discriminator`).

The progress model was trained on expert frames only, so on a state no video showed its progress is a guess,
and agents find the states it over-rates. A small classifier D on the reward model's own frame features z
(the encoder's output, no new pixels read) is trained online, as the GAN discriminator of the seed notes:

    L_D = - E_{z ~ demos} [log D(z)] - E_{z ~ agent} [log (1 - D(z))]          (binary cross-entropy)
    r_t = progress reward_t + lambda * max(log D(z_t), log_floor)

D(z) is the probability that z comes from a demonstration. On expert-like states log D is near 0 and the reward
is the progress reward; on states the agent reached that no demonstration looks like, log D is negative and
the agent pays for them. The demonstrations' features are computed once; the agent's are the features the
reward was scored from (`Scorer.features`), kept in a ring buffer. `update(steps)` runs a few optimizer steps
on balanced batches; `log_d(z)` reads the current D. The optimizer lives here, outside the module.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.rl.checkpoint import load_optimizer, optimizer_tensors


@dataclass
class DiscriminatorConfig:
    weight: float = 0.1  # lambda: the weight of log D in the reward
    hidden: int = 128  # width of D's two hidden layers
    lr: float = 3e-4  # AdamW learning rate
    buffer: int = 20_000  # the agent's latest features kept (D floats each)
    batch: int = 256  # demonstration and agent features per optimizer step (each)
    log_floor: float = -10.0  # log D is read no lower than this (D -> 0 would give -inf)


class FrameDiscriminator(nn.Module):
    """(B, D) frame features -> (B,) logit of "this frame is from a demonstration"."""

    def __init__(self, dim: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)  # (B,)


class DiscriminatorReward:
    """D, its optimizer, the demonstrations' features (M, D) and a ring buffer of the agent's (see the module
    docstring)."""

    def __init__(self, demo_features: torch.Tensor, config: DiscriminatorConfig | None = None, seed: int = 0):
        if len(demo_features) < 2:
            raise ValueError("the discriminator needs features of at least 2 demonstration frames")
        self.config = config or DiscriminatorConfig()
        self.demos = demo_features.detach().float().cpu()  # (M, D)
        dim = self.demos.shape[1]
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.net = FrameDiscriminator(dim, self.config.hidden)
        self.optimizer = torch.optim.AdamW(self.net.parameters(), lr=self.config.lr)
        self.agent = torch.zeros(self.config.buffer, dim)  # (capacity, D) ring buffer of agent features
        self.kept, self.position, self.updates = 0, 0, 0

    def add(self, z: torch.Tensor) -> None:
        """Keep the agent's features (N, D) (the oldest go first when the buffer is full)."""
        z = z.detach().float().cpu()[-len(self.agent):]
        ends = self.position + len(z)
        first = min(len(z), len(self.agent) - self.position)
        self.agent[self.position : self.position + first] = z[:first]
        self.agent[: ends - self.position - first] = z[first:]
        self.position = ends % len(self.agent)
        self.kept = min(self.kept + len(z), len(self.agent))

    @torch.no_grad()
    def log_d(self, z: torch.Tensor) -> np.ndarray:
        """(N, D) features -> (N,) max(log D(z), log_floor): 0 for frames like the demonstrations, negative else."""
        logit = self.net(z.detach().float().cpu())
        return F.logsigmoid(logit).clamp(min=self.config.log_floor).numpy()

    def update(self, steps: int) -> dict[str, Any] | None:
        """`steps` optimizer steps on balanced batches (demonstrations labelled 1, agent frames 0); the loss and
        D's accuracy on the last batch. None while fewer than 2 agent frames are kept."""
        if self.kept < 2:
            return None
        t0, c = time.perf_counter(), self.config
        self.net.train()
        for _ in range(steps):
            demo = self.demos[torch.randint(len(self.demos), (c.batch,), generator=self.generator)]  # (B, D)
            agent = self.agent[torch.randint(self.kept, (c.batch,), generator=self.generator)]  # (B, D)
            logits = self.net(torch.cat([demo, agent]))  # (2B,)
            labels = torch.cat([torch.ones(c.batch), torch.zeros(c.batch)])
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        self.net.eval()
        self.updates += steps
        with torch.no_grad():
            d = torch.sigmoid(logits)
        return {"loss": float(loss.detach()), "d_demo": float(d[: c.batch].mean()), "d_agent": float(d[c.batch :].mean()),
                "accuracy": float(((d > 0.5).float() == labels).float().mean()), "agent_frames": self.kept,
                "seconds": time.perf_counter() - t0}

    # ---- checkpoints: tensors + JSON, never a pickle ----------------------------------------------------
    def state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        """(tensors, JSON-able facts) that `load_state` restores: D, its optimizer, the agent buffer."""
        tensors = {f"net.{k}": v.clone() for k, v in self.net.state_dict().items()}  # a snapshot, not live views
        optim, groups = optimizer_tensors(self.optimizer, "opt")
        tensors.update(optim)
        tensors["agent"] = self.agent[: self.kept].clone() if self.kept < len(self.agent) else self.agent.clone()
        facts = {"kept": self.kept, "position": self.position, "updates": self.updates,
                 "generator": self.generator.get_state().tolist(), "opt_groups": groups}
        return tensors, facts

    def load_state(self, tensors: dict[str, torch.Tensor], facts: dict[str, Any]) -> None:
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        load_optimizer(self.optimizer, tensors, "opt", facts["opt_groups"])
        self.agent[: len(tensors["agent"])] = tensors["agent"]
        self.kept, self.position, self.updates = facts["kept"], facts["position"], facts["updates"]
        self.generator.set_state(torch.tensor(facts["generator"], dtype=torch.uint8))
