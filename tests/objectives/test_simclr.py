"""SimCLR / DCL: the NT-Xent loss against a slow reference, the projection head, views, and learning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.objectives.base import feature_std
from video2reward.objectives.projection import ProjectionHead
from video2reward.objectives.simclr import DCL, DCLConfig, SimCLR, SimCLRConfig, nt_xent
from video2reward.video.frame_sampler import FrameBatch

TINY_CNN = {"stem_channels": 8, "channels": (8, 16), "dim": 16}


def reference_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float, decoupled: bool) -> float:
    """l_{i,j} = -log exp(s_ij/tau) / sum_{k != i (, j)} exp(s_ik/tau), one view at a time, in float64."""
    z = torch.cat([z1, z2]).double()
    n2 = z.shape[0]
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        sim = [F.cosine_similarity(z[i], z[k], dim=0).item() / tau for k in range(n2)]
        denom = 0.0
        for k in range(n2):
            if k == i or (decoupled and k == j):
                continue
            denom += math.exp(sim[k])
        total += -sim[j] + math.log(denom)
    return total / n2


def tiny_frames(n: int, size: int = 32, seed: int = 0) -> FrameBatch:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)
    return FrameBatch(frames, torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.arange(n))


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("tau", [0.1, 0.5, 1.0])
def test_nt_xent_matches_double_loop_reference(tau: float, decoupled: bool) -> None:
    g = torch.Generator().manual_seed(1)
    z1, z2 = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    got = nt_xent(z1, z2, tau, decoupled=decoupled).item()
    assert got == pytest.approx(reference_nt_xent(z1, z2, tau, decoupled), abs=1e-5)


def test_nt_xent_ignores_scale_and_rewards_agreement() -> None:
    g = torch.Generator().manual_seed(2)
    z1, z2 = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g)
    assert nt_xent(3 * z1, 0.5 * z2, 0.2).item() == pytest.approx(nt_xent(z1, z2, 0.2).item(), abs=1e-5)
    assert nt_xent(z1, z1, 0.2) < nt_xent(z1, z2, 0.2)  # identical views: lower loss
    # DCL drops the positive from the denominator, so its loss is always the smaller one.
    assert nt_xent(z1, z2, 0.2, decoupled=True) < nt_xent(z1, z2, 0.2)


def test_nt_xent_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        nt_xent(torch.randn(3, 4), torch.randn(2, 4), 0.2)
    with pytest.raises(ValueError):
        nt_xent(torch.randn(1, 4), torch.randn(1, 4), 0.2, decoupled=True)  # no negatives left


def test_projection_head_shapes_and_norm() -> None:
    head = ProjectionHead(16, 32, 8)
    assert sum(isinstance(m, torch.nn.Linear) for m in head.modules()) == 2
    assert head(torch.randn(4, 16)).shape == (4, 8)
    assert sum(isinstance(m, torch.nn.Linear) for m in ProjectionHead(16, 32, 8, layers=3).modules()) == 3
    assert isinstance(ProjectionHead(16, 32, 8, layers=1).mlp[0], torch.nn.Linear)
    unit = ProjectionHead(16, 32, 8, norm_last=True)(torch.randn(4, 16))
    assert torch.allclose(unit.norm(dim=1), torch.ones(4), atol=1e-5)
    with pytest.raises(ValueError):
        ProjectionHead(16, 32, 8, layers=0)


def test_feature_std_detects_collapse() -> None:
    assert feature_std(torch.ones(8, 16)) == pytest.approx(0.0, abs=1e-6)
    healthy = feature_std(torch.randn(512, 16, generator=torch.Generator().manual_seed(0)))
    assert healthy == pytest.approx(1 / math.sqrt(16), rel=0.1)


def test_configs() -> None:
    assert SimCLRConfig().decoupled is False and DCLConfig().decoupled is True
    assert SimCLR.default_config is SimCLRConfig and DCL.default_config is DCLConfig
    cfg = SimCLRConfig(crop_scale=[0.3, 0.9])  # JSON gives lists back
    assert cfg.crop_scale == (0.3, 0.9)
    assert SimCLRConfig(**dataclasses.asdict(cfg)) == cfg
    assert all(f.metadata.get("help") for f in dataclasses.fields(DCLConfig))
    for bad in ({"temperature": 0.0}, {"crop_scale": (0.5, 0.2)}, {"gray_p": 1.5}, {"proj_dim": 0}):
        with pytest.raises(ConfigError):
            SimCLRConfig(**bad)


def test_make_batch_views_are_deterministic_and_sized() -> None:
    objective = SimCLR(build_encoder("cnn", 24, **TINY_CNN))
    frames = tiny_frames(3, size=32)
    a = objective.make_batch(frames, torch.Generator().manual_seed(5))
    b = objective.make_batch(frames, torch.Generator().manual_seed(5))
    assert a["view1"].shape == a["view2"].shape == (3, 3, 24, 24)  # at the encoder's image size
    assert a["view1"].dtype == torch.float32 and 0 <= a["view1"].min() and a["view1"].max() <= 1
    assert torch.equal(a["view1"], b["view1"]) and torch.equal(a["view2"], b["view2"])
    assert not torch.equal(a["view1"], a["view2"])  # two different views


def test_forward_one_encoder_call_and_metrics() -> None:
    torch.manual_seed(0)
    objective = DCL(build_encoder("cnn", 32, **TINY_CNN))
    calls: list[int] = []
    objective.encoder.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    batch = objective.make_batch(tiny_frames(4), torch.Generator().manual_seed(0))
    loss, metrics = objective(batch)
    assert calls == [8]  # both views of the 4 frames in one call
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"loss", "pos_sim", "std"} and all(isinstance(v, float) for v in metrics.values())
    assert metrics["loss"] == pytest.approx(loss.item()) and -1 <= metrics["pos_sim"] <= 1 and metrics["std"] > 0
    loss.backward()
    assert objective.encoder.stem[0].weight.grad is not None and objective.head.mlp[0].weight.grad is not None


@pytest.mark.parametrize("objective_cls", [SimCLR, DCL])
def test_loss_goes_down_with_adamw(objective_cls: type[SimCLR]) -> None:
    torch.manual_seed(0)
    objective = objective_cls(build_encoder("cnn", 32, **TINY_CNN))
    batch = objective.make_batch(tiny_frames(8), torch.Generator().manual_seed(0))  # fixed views: learnable
    optimizer = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss, _ = objective(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses
