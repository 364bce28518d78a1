"""MoCo: InfoNCE against a slow reference, the key queue (ring buffer, unfilled slots), the momentum update,
what a forward without an optimizer step may not change, checkpointing, and learning."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.objectives.moco import MoCo, MoCoConfig, info_nce
from video2reward.objectives.momentum import cosine_momentum
from video2reward.video.frame_sampler import FrameBatch

TINY_CNN = {"stem_channels": 8, "channels": (8, 16), "dim": 16}
TINY = {"proj_hidden": 16, "proj_dim": 8, "queue_size": 10}


def tiny_moco(**overrides) -> MoCo:
    torch.manual_seed(0)
    return MoCo(build_encoder("cnn", 32, **TINY_CNN), MoCoConfig(**{**TINY, **overrides}))


def tiny_batch(objective: MoCo, n: int = 3, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    fb = FrameBatch(frames, torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.arange(n))
    return objective.make_batch(fb, g)


def queries_and_keys(objective: MoCo, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """What forward computes, by hand: (2N, P) queries and the (2N, P) keys of both views."""
    views = torch.cat([batch["view1"], batch["view2"]])
    with torch.no_grad():
        q = F.normalize(objective.head(objective.encoder(views)), dim=1)
        k = F.normalize(objective.key_head(objective.key_encoder(views)), dim=1)
    return q, k


def reference_info_nce(q: torch.Tensor, k: torch.Tensor, neg: torch.Tensor, tau: float) -> float:
    """-log exp(q.k+/tau) / (exp(q.k+/tau) + sum_n exp(q.n/tau)), one query at a time, in float64."""
    q, k, neg = (F.normalize(t.double(), dim=1) for t in (q, k, neg))
    total = 0.0
    for i in range(q.shape[0]):
        pos = math.exp(float(q[i] @ k[i]) / tau)
        denom = pos + sum(math.exp(float(q[i] @ neg[j]) / tau) for j in range(neg.shape[0]))
        total += -math.log(pos / denom)
    return total / q.shape[0]


@pytest.mark.parametrize("tau", [0.1, 0.2, 1.0])
def test_info_nce_matches_reference(tau: float) -> None:
    g = torch.Generator().manual_seed(int(tau * 100))
    q, k, neg = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g), torch.randn(5, 6, generator=g)
    assert info_nce(q, k, neg, tau).item() == pytest.approx(reference_info_nce(q, k, neg, tau), abs=1e-5)
    assert info_nce(q, k, neg[:0], tau).item() == pytest.approx(0.0, abs=1e-7)  # no negatives: nothing to learn


def test_forward_is_infonce_over_the_filled_queue_only() -> None:
    moco = tiny_moco()
    batch = tiny_batch(moco)
    loss, metrics = moco(batch)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)  # empty queue: the zero slots are not negatives
    assert metrics["queue"] == 0.0 and set(metrics) >= {"loss", "pos_sim", "std"}
    moco.after_step(0, 10)  # 6 keys in
    assert moco.negatives().shape == (6, 8)
    q, k = queries_and_keys(moco, batch)
    k_pos = torch.cat([k[3:], k[:3]])  # each view's positive is the other view's key
    expected = reference_info_nce(q, k_pos, moco.queue[:6], moco.config.temperature)
    with torch.no_grad():
        moco.queue[6:] = q[:4]  # garbage in the unfilled slots, right on the queries: must change nothing
    loss, metrics = moco(batch)
    assert loss.item() == pytest.approx(expected, abs=1e-5) and metrics["queue"] == pytest.approx(0.6)


def test_queue_is_a_ring_buffer_of_the_newest_keys() -> None:
    moco = tiny_moco()
    first = tiny_batch(moco, seed=1)
    moco(first)
    _, k1 = queries_and_keys(moco, first)
    moco.after_step(0, 10)
    assert torch.allclose(moco.queue[:6], k1, atol=1e-6)
    assert int(moco.queue_ptr) == 6 and int(moco.queue_filled) == 6
    second = tiny_batch(moco, seed=2)
    moco(second)
    _, k2 = queries_and_keys(moco, second)  # the key encoder of this forward (before the momentum update)
    moco.after_step(1, 10)
    assert int(moco.queue_ptr) == 2 and int(moco.queue_filled) == 10  # 6 + 6 wraps around a queue of 10
    assert torch.allclose(moco.queue[6:], k2[:4], atol=1e-6) and torch.allclose(moco.queue[:2], k2[4:], atol=1e-6)
    assert torch.allclose(moco.queue[2:6], k1[2:], atol=1e-6)  # the rest of the first keys is still there
    many = torch.randn(25, 8)
    moco.enqueue(many)  # more keys than slots: only the newest 10 are kept, the oldest of them at the pointer
    assert int(moco.queue_ptr) == 2 and int(moco.queue_filled) == 10
    assert torch.allclose(moco.queue[2], F.normalize(many[15], dim=0), atol=1e-6)
    assert torch.allclose(moco.queue[1], F.normalize(many[24], dim=0), atol=1e-6)
    assert torch.allclose(moco.queue.norm(dim=1), torch.ones(10), atol=1e-5)


def test_momentum_update_follows_the_formula() -> None:
    moco = tiny_moco(momentum=0.9, momentum_end=1.0)
    with torch.no_grad():
        for p in list(moco.encoder.parameters()) + list(moco.head.parameters()):
            p.add_(0.1 * torch.randn_like(p))  # the query side moved (as after an optimizer step)
    key_before = [p.clone() for p in list(moco.key_encoder.parameters()) + list(moco.key_head.parameters())]
    online = [p.clone() for p in list(moco.encoder.parameters()) + list(moco.head.parameters())]
    moco.after_step(3, 10)
    m = 1 - (1 - 0.9) * (math.cos(math.pi * 0.3) + 1) / 2
    assert moco.momentum == pytest.approx(m) == pytest.approx(cosine_momentum(3, 10, 0.9, 1.0))
    key_after = list(moco.key_encoder.parameters()) + list(moco.key_head.parameters())
    for before, after, q in zip(key_before, key_after, online):
        assert torch.allclose(after, m * before + (1 - m) * q, atol=1e-6)  # theta_k <- m theta_k + (1-m) theta_q
    assert any(not torch.equal(b, a) for b, a in zip(key_before, key_after))


def test_forward_without_a_step_changes_neither_queue_nor_keys() -> None:
    moco = tiny_moco()
    moco.enqueue(torch.randn(4, 8))
    before = {k: v.clone() for k, v in moco.state_dict().items()}
    batch = tiny_batch(moco)
    moco(batch)
    moco(batch)
    for name, value in moco.state_dict().items():
        assert torch.equal(value, before[name]), name
    with torch.no_grad():  # an evaluation forward: its keys are never enqueued, not even by a later step
        moco(tiny_batch(moco, seed=3))
    moco._pending = None
    moco.after_step(0, 10)
    assert torch.equal(moco.queue, before["queue"]) and int(moco.queue_ptr) == 4


def test_gradients_reach_only_the_query_side() -> None:
    moco = tiny_moco()
    moco.enqueue(torch.randn(10, 8))
    loss, _ = moco(tiny_batch(moco))
    loss.backward()
    trained = {id(p) for p in moco.parameters() if p.requires_grad}
    assert trained == {id(p) for p in list(moco.encoder.parameters()) + list(moco.head.parameters())}
    assert all(p.grad is None for p in list(moco.key_encoder.parameters()) + list(moco.key_head.parameters()))
    assert moco.encoder.stem[0].weight.grad is not None


def test_state_dict_holds_the_queue_for_resume() -> None:
    moco = tiny_moco()
    batch = tiny_batch(moco)
    moco(batch)
    moco.after_step(0, 10)
    state = moco.state_dict()
    assert {"queue", "queue_ptr", "queue_filled"} <= set(state)
    assert any(k.startswith("key_encoder.") for k in state)
    fresh = tiny_moco()
    fresh.load_state_dict(state)
    assert torch.equal(fresh.queue, moco.queue) and int(fresh.queue_ptr) == 6 and int(fresh.queue_filled) == 6
    assert fresh(batch)[0].item() == pytest.approx(moco(batch)[0].item(), abs=1e-6)


def test_loss_goes_down_with_adamw() -> None:
    """With the queue and keys held fixed (no after_step), the loss is a fixed function of the query side."""
    moco = tiny_moco(queue_size=32)
    moco.enqueue(torch.randn(32, 8, generator=torch.Generator().manual_seed(0)))
    batch = tiny_batch(moco, n=8)
    optimizer = torch.optim.AdamW([p for p in moco.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(6):
        loss, _ = moco(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


def test_config_defaults_and_validation() -> None:
    cfg = MoCoConfig()
    assert (cfg.temperature, cfg.queue_size, cfg.momentum, cfg.momentum_end) == (0.2, 4096, 0.99, 1.0)
    assert all(f.metadata.get("help") for f in dataclasses.fields(MoCoConfig))
    assert MoCoConfig(**dataclasses.asdict(cfg)) == cfg
    for bad in ({"temperature": -1.0}, {"queue_size": 0}, {"momentum": 1.5}, {"proj_hidden": 0}):
        with pytest.raises(ConfigError):
            MoCoConfig(**bad)
