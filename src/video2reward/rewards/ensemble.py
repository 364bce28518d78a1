"""Ensembles of reward heads: K members trained alike from different seeds (`v2r train --ensemble K`), or
heads of different kinds reading the same videos differently (`--head progress+rank`, COMBINED_HEADS).

Deep ensembles (Lakshminarayanan et al., 2017) give an *epistemic* uncertainty that one network's sigma
cannot: where the demonstrations pinned the reward down, the K members agree; on frames no video showed
(an agent's odd states in RL) they disagree. Per frame, with member predictions (mu_k, sigma_k):

    mu         = (1/K) sum_k mu_k                                  the reward
    epistemic  = sqrt((1/K) sum_k (mu_k - mu)^2)                   the members' disagreement
    sigma      = sqrt((1/K) sum_k sigma_k^2 + epistemic^2)         total std (law of total variance)

`HeadEnsemble` looks like any single head to `RewardModel` and the RL wrapper: `embed` concatenates the
members' features (each member has its own encoder), `predict` splits them again. A member's goal
embedding is its own buffer; a goal passed at scoring time (features from `embed`) is split the same way.

A combined head (`progress+rank`) is the same mean over members of different kinds: the progress head reads a
frame in context (initial frame, goal, motion) and follows time closely; the rank head reads the frame alone
and follows what the scene looks like; each is trained on its own encoder for half of `--steps`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

# Combined heads: name -> the member heads, each trained on its own encoder for --steps / len(members).
# The first member sets the frames a scorer keeps per reward (progress: its motion gap; temporal: its context);
# the others read the same window or ignore it (rank reads one frame).
COMBINED_HEADS: dict[str, tuple[str, ...]] = {"progress+rank": ("progress", "rank"), "temporal+rank": ("temporal", "rank")}


def combine(mus: torch.Tensor, sigmas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Member predictions (K, B) -> (mu, sigma, epistemic), each (B,), as in the module docstring."""
    mu = mus.mean(dim=0)
    epistemic = (mus - mu).pow(2).mean(dim=0).sqrt()
    sigma = (sigmas.pow(2).mean(dim=0) + epistemic.pow(2)).sqrt()
    return mu, sigma, epistemic


class HeadEnsemble(nn.Module):
    """K reward heads behind the single-head interface (embed / predict / predict_success)."""

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = nn.ModuleList(members)
        # the first member's config: seeds ensembles share it; a combined head puts progress (motion_gap) first
        self.config = members[0].config
        self.dims = [int(m.encoder.dim) for m in members]
        if all(hasattr(m, "predict_success") for m in members):
            self.predict_success = self._predict_success  # only then: RewardModel looks for the attribute

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder (what a model file records as the architecture; all members share it)."""
        return self.members[0].encoder

    @property
    def goal(self) -> torch.Tensor | None:
        """The members' stored goal embeddings side by side (sum_k D_k,), as `embed` lays features out, with
        zeros in the slots of members that keep no goal (rank, success: they ignore it); None when no member
        keeps one. Passing it to `predict` is the same as passing no goal."""
        goals = [getattr(member, "goal", None) for member in self.members]
        if all(g is None for g in goals):
            return None
        reference = next(g for g in goals if g is not None)
        return torch.cat([reference.new_zeros(d) if g is None else g for g, d in zip(goals, self.dims)])

    def _split(self, features: torch.Tensor | None) -> list[torch.Tensor | None]:
        if features is None:
            return [None] * len(self.members)
        return list(features.split(self.dims, dim=-1))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, sum_k D_k): the members' features side by side."""
        return torch.cat([m.embed(frames) for m in self.members], dim=-1)

    def member_predictions(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Concatenated features as from `embed` -> every member's (mu, sigma), each (K, B)."""
        outputs = [
            member.predict(c, i, g, p)
            for member, c, i, g, p in zip(self.members, self._split(current), self._split(initial),
                                          self._split(goal), self._split(previous))
        ]
        return torch.stack([mu for mu, _ in outputs]), torch.stack([sigma for _, sigma in outputs])

    def predict_with_epistemic(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> mu (B,), total sigma (B,), epistemic std (B,)."""
        return combine(*self.member_predictions(current, initial, goal, previous))

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mu, sigma, _ = self.predict_with_epistemic(current, initial, goal, previous)
        return mu, sigma

    def distill_output(self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
                       previous: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """What a distilled student matches: the Normal (mu, sigma) of the members' mean."""
        return self.predict(current, initial, goal, previous)

    def _predict_success(
        self, current: torch.Tensor, initial: torch.Tensor | None = None, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean of the members' success probabilities, (B,)."""
        probs = [
            member.predict_success(c, i, g, p)
            for member, c, i, g, p in zip(self.members, self._split(current), self._split(initial),
                                          self._split(goal), self._split(previous))
        ]
        return torch.stack(probs).mean(dim=0)
