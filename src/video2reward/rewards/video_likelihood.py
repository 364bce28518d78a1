"""Video likelihood (VIPER, Escontrela et al. 2023; Diffusion Reward, Huang et al. 2024): a generative model of the
demonstrations' next frame given the ones before it, and a reward from how expected the observed transition is
(`v2r train --head video-likelihood`).

The model is a small conditional denoising diffusion model in the encoder's feature space. The encoder is frozen
(a model trained to predict its own features could make every feature the same and every transition certain); its
features are normalised per frame, x_t = LN(z_t) (zero mean, unit variance over the D dims). With the cosine
schedule abar(u) = cos^2(pi/2 (u + s)/(1 + s)), s = 0.008, and a context c_t = [x_{t-K+1}, ..., x_{t-1}]:

    x_t^u = sqrt(abar(u)) x_t + sqrt(1 - abar(u)) eps,   eps ~ N(0, I),  u ~ U(U_MIN, U_MAX)
    L = E || eps - eps_theta(x_t^u, u, c_t) ||^2                                   (DDPM's simple loss)

The reward of frame t is the negative denoising error of the observed transition c_t -> x_t, averaged over M fixed
(u_m, eps_m) pairs (fixed at construction, so a frame's reward is the same however the video is streamed):

    log p(x_t | c_t) >= const - sum_m w_m || eps_m - eps_theta(x_t^{u_m}, u_m, c_t) ||^2 / 2
    r_t = -(1/M) sum_m || eps_m - eps_theta(x_t^{u_m}, u_m, c_t) ||^2 / D

that is the ELBO's data term with equal weights (VIPER's log-likelihood reward, estimated by a diffusion model as
Diffusion Reward does; Diffusion Reward's conditional-entropy reward is the same error averaged over the model's own
samples instead of the observed one). After training the reward is standardised on the demonstrations'
transitions: mu_t = (r_t - mean) / std, so 0 is a typical demonstrated transition and -3 a very unlikely one; sigma
is the standard error of r_t's M-term mean on the same scale (how much the fixed probes leave it uncertain). The reward measures *how demonstration-like the motion is*;
nothing in it is trained to grow with progress (whether it does on a task is measured: docs/results).

Causal and streaming like the temporal head: `predict(current, initial, goal, previous)` reads `previous`
(B, K-1, D), the features of the K-1 frames before each one (frames before the first: the first frame's).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from video2reward.core.options import option
from video2reward.errors import ConfigError
from video2reward.rewards.base import BatchPlan, HeadEntry
from video2reward.rewards.windows import WindowBatch, WindowSampler

U_MIN, U_MAX = 0.02, 0.98  # diffusion times trained and probed (the schedule's ends carry no signal)
COSINE_OFFSET = 0.008  # s of the cosine schedule (Nichol and Dhariwal 2021)
PROBE_SEED = 1234  # the fixed (u_m, eps_m) pairs of the reward come from this seed


def alpha_bar(u: torch.Tensor) -> torch.Tensor:
    """The cosine schedule abar(u) = cos^2(pi/2 (u + s)/(1 + s)), u in [0, 1]: 1 = clean, ~0 = pure noise."""
    return torch.cos(0.5 * math.pi * (u + COSINE_OFFSET) / (1 + COSINE_OFFSET)) ** 2


def time_features(u: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """(B,) diffusion times -> (B, dim) sinusoidal features (the transformer's position code, for u * 1000)."""
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(dim // 2, device=u.device) / (dim // 2))
    angles = 1000.0 * u[:, None] * freqs[None, :]  # (B, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


@dataclass
class VideoLikelihoodConfig:
    """Options of the video-likelihood head (`v2r train --video-likelihood-FIELD`)."""

    context: int = option(4, "K: the model predicts frame t from frames t-K+1 .. t-1 (K-1 frames of context)")
    hidden: int = option(256, "width of the denoiser MLP")
    layers: int = option(3, "hidden layers of the denoiser MLP")
    probes: int = option(8, "M: fixed (noise level, noise) pairs the reward averages the denoising error over; the "
                         "scoring cost grows with it (one denoiser pass per pair and frame)")


class VideoLikelihoodHead(nn.Module):
    """Frozen encoder + conditional denoiser eps_theta(x_t^u, u, c_t) -> reward: the transition's likelihood."""

    def __init__(self, encoder: nn.Module, config: VideoLikelihoodConfig | None = None):
        super().__init__()
        self.config = config or VideoLikelihoodConfig()
        c = self.config
        if c.context < 2:
            raise ConfigError(f"--video-likelihood-context {c.context}: the model predicts a frame from the ones "
                              f"before it, so it needs at least 2")
        if c.probes < 1 or c.layers < 1:
            raise ConfigError("--video-likelihood-probes and --video-likelihood-layers must be >= 1")
        self.encoder = encoder.requires_grad_(False)  # frozen: see the module docstring
        d = encoder.dim
        width = [d + (c.context - 1) * d + 32] + [c.hidden] * c.layers
        blocks: list[nn.Module] = []
        for a, b in zip(width[:-1], width[1:]):
            blocks += [nn.Linear(a, b), nn.GELU()]
        self.denoiser = nn.Sequential(*blocks, nn.Linear(c.hidden, d))  # eps_theta
        probe = torch.Generator().manual_seed(PROBE_SEED)
        u = U_MIN + (U_MAX - U_MIN) * (torch.arange(c.probes) + 0.5) / c.probes  # (M,) evenly spread levels
        self.register_buffer("probe_u", u)
        self.register_buffer("probe_eps", torch.randn(c.probes, d, generator=probe))  # (M, D)
        self.register_buffer("shift", torch.zeros(()))  # mean of r on the demonstrations' transitions
        self.register_buffer("scale", torch.ones(()))  # their std

    @property
    def context(self) -> int:
        return self.config.context

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D)."""
        return self.encoder(frames)

    @staticmethod
    def normalise(z: torch.Tensor) -> torch.Tensor:
        """x = LN(z) without affine parameters: every frame's features at zero mean and unit variance."""
        return F.layer_norm(z, z.shape[-1:])

    def denoise(self, noisy: torch.Tensor, u: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """eps_theta: noisy (B, D), times (B,), context (B, K-1, D) normalised features -> (B, D) noise estimate."""
        return self.denoiser(torch.cat([noisy, context.flatten(1), time_features(u)], dim=-1))

    def errors(self, windows: torch.Tensor) -> torch.Tensor:
        """Features of windows (B, K, D), oldest first -> (B, M) the squared denoising error per dimension of the
        current frame under each fixed probe (u_m, eps_m)."""
        x = self.normalise(windows)
        target, context = x[:, -1], x[:, :-1]  # (B, D), (B, K-1, D)
        b, m = target.shape[0], self.probe_u.shape[0]
        abar = alpha_bar(self.probe_u)[None, :, None]  # (1, M, 1)
        noisy = abar.sqrt() * target[:, None] + (1 - abar).sqrt() * self.probe_eps[None]  # (B, M, D)
        eps = self.denoise(noisy.flatten(0, 1), self.probe_u.repeat(b),
                           context.repeat_interleave(m, dim=0)).view(b, m, -1)  # (B, M, D)
        return (eps - self.probe_eps[None]).pow(2).mean(dim=-1)  # (B, M)

    def predict(
        self, current: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor | None = None,
        previous: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Features (B, D) of current frames, `previous` (B, K-1, D) of the frames before each (None: the video was
        still before t: every one is `initial`); goal is accepted and ignored -> mu (B,) the standardised
        log-likelihood reward, sigma (B,) the standard error of its M-term estimate."""
        k = self.config.context
        if previous is None:
            previous = initial.expand(current.shape[0], k - 1, current.shape[-1])
        if previous.shape[-2] != k - 1:
            raise ValueError(f"previous must hold the {k - 1} frames before each frame, got {tuple(previous.shape)}")
        r = -self.errors(torch.cat([previous, current[:, None]], dim=1))  # (B, M): -||eps_m - eps_theta||^2 / D
        mu = (r.mean(dim=-1) - self.shift) / self.scale
        m = r.shape[-1]  # sigma: the standard error of the M-term mean, on the reward's scale
        sigma = r.std(dim=-1) / (m**0.5 * self.scale) if m > 1 else torch.zeros_like(mu)
        return mu, sigma.clamp(min=1e-3)

    def forward(self, batch: WindowBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """batch.frames must already be float in [0, 1] (augmented by the caller)."""
        with torch.no_grad():
            x = self.normalise(self.embed(batch.frames))  # (N, D): the frozen encoder's features
        windows = x[batch.window[~batch.failed]]  # (W, K, D): demonstrations' windows only
        target, context = windows[:, -1], windows[:, :-1]
        u = U_MIN + (U_MAX - U_MIN) * torch.rand(target.shape[0], device=target.device)  # (W,)
        eps = torch.randn_like(target)
        abar = alpha_bar(u)[:, None]
        noisy = abar.sqrt() * target + (1 - abar).sqrt() * eps  # x_t^u
        loss = (self.denoise(noisy, u, context) - eps).pow(2).mean()  # || eps - eps_theta(x_t^u, u, c_t) ||^2
        return loss, {"loss": loss.item()}

    @property
    def calibration_run(self) -> int:
        """Calibration reads runs of K consecutive frames (training/heads.py calibration_videos)."""
        return self.config.context

    @torch.no_grad()
    def calibrate(self, videos: Sequence[tuple[torch.Tensor, torch.Tensor]], batch_size: int = 256) -> None:
        """Standardise the reward on the demonstrations' transitions: `videos` holds, per demonstration, runs of K
        consecutive frames (A, K, 3, S, S) float in [0, 1], oldest first, and their times (A,)."""
        rewards = []
        for runs, _ in videos:
            a, k = runs.shape[:2]
            z = torch.cat([self.embed(c) for c in runs.flatten(0, 1).split(batch_size)]).view(a, k, -1)  # (A, K, D)
            rewards.append(-self.errors(z).mean(dim=-1))
        r = torch.cat(rewards)
        self.shift.fill_(float(r.mean()))
        self.scale.fill_(float(r.std().clamp(min=1e-6)) if len(r) > 1 else 1.0)


def sampler(options: VideoLikelihoodConfig, plan: BatchPlan, demos: Sequence, negatives: Sequence) -> WindowSampler:
    """Windows of `context` consecutive frames of the demonstrations at their own speed (the likelihood of a
    transition depends on the frame rate), each video's frames before its first being the first frame."""
    windows = WindowSampler(list(demos), [], context=options.context, clips_per_video=2,
                            windows_per_clip=max(1, plan.frames_per_video // 2), negative_videos_per_batch=0,
                            speed_min=1.0, speed_max=1.0, p_first=1.0)
    windows.videos_per_batch = max(1, plan.batch_size // windows.frames_per_video)
    return windows


ENTRY = HeadEntry("video-likelihood", VideoLikelihoodHead, VideoLikelihoodConfig, sampler, negatives=False,
                  distill=None, reward_range=None,
                  reward_meaning="how likely the motion into this frame is under the demonstrations "
                                 "(standardised log-likelihood, 0 = typical)",
                  summary="VIPER / Diffusion Reward: a diffusion model of the next frame's features given the "
                          "previous ones; reward = the observed transition's likelihood")
