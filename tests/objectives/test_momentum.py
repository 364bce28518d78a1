"""Momentum targets: frozen copies, the EMA update and the cosine schedule against their formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from video2reward.objectives.momentum import cosine_momentum, ema_update, frozen_copy

torch.set_num_threads(1)


def net() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def test_frozen_copy_is_independent_and_gets_no_gradients() -> None:
    torch.manual_seed(0)
    online = net()
    target = frozen_copy(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    for t, s in zip(target.parameters(), online.parameters()):
        assert torch.equal(t, s) and t.data_ptr() != s.data_ptr()
    assert not target(torch.randn(5, 3)).requires_grad


def test_ema_update_matches_the_formula() -> None:
    torch.manual_seed(0)
    online, target = net(), frozen_copy(net())
    online.train()(torch.randn(8, 3))  # moves the BatchNorm running statistics of the online net
    before = [p.clone() for p in target.parameters()]
    ema_update(target, online, 0.9)
    for t, b, s in zip(target.parameters(), before, online.parameters()):
        torch.testing.assert_close(t, 0.9 * b + 0.1 * s)
    for t, s in zip(target.buffers(), online.buffers()):
        assert torch.equal(t, s)  # buffers are copied, not averaged
    ema_update(target, online, 0.0)
    for t, s in zip(target.parameters(), online.parameters()):
        assert torch.equal(t, s)
    snapshot = [p.clone() for p in target.parameters()]
    with torch.no_grad():
        for p in online.parameters():
            p.add_(1.0)
    ema_update(target, online, 1.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), snapshot))


def test_cosine_momentum_matches_the_formula() -> None:
    start, end, total = 0.996, 1.0, 100
    assert cosine_momentum(0, total, start, end) == pytest.approx(start)
    assert cosine_momentum(total, total, start, end) == pytest.approx(end)
    assert cosine_momentum(total // 2, total, start, end) == pytest.approx((start + end) / 2)
    for step in (1, 17, 63, 99):
        expected = end - (end - start) * (math.cos(math.pi * step / total) + 1) / 2
        assert cosine_momentum(step, total, start, end) == pytest.approx(expected)
    values = [cosine_momentum(s, total, 0.9) for s in range(total + 1)]
    assert all(a <= b for a, b in zip(values, values[1:]))  # rises monotonically
    assert cosine_momentum(-5, total, 0.9) == pytest.approx(0.9)  # clamped outside [0, total]
    assert cosine_momentum(500, total, 0.9) == pytest.approx(1.0)
    assert cosine_momentum(0, 0, 0.9) == pytest.approx(0.9)  # total 0 does not divide by zero
