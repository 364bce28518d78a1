"""Probe maths against hand computations: kNN, ridge, feature spread; and that a probe reads time off
features that contain it (and not off features that do not)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from video2reward.evaluation.probe import (
    feature_std,
    knn_predict,
    ridge_fit,
    ridge_predict,
)


def test_knn_predicts_the_mean_target_of_the_nearest_rows() -> None:
    train = F.normalize(torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]), dim=1)
    y = torch.tensor([0.0, 0.2, 1.0, 0.8])
    pred = knn_predict(train, y, F.normalize(torch.tensor([[1.0, 0.05], [0.05, 1.0]]), dim=1), k=2)
    assert torch.allclose(pred, torch.tensor([0.1, 0.9]))


def test_ridge_recovers_a_linear_map_and_matches_the_normal_equations() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g)
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    w = ridge_fit(x, y, alpha=1e-6)
    assert torch.allclose(w, torch.tensor([1.0, -2.0, 0.5, 0.3]), atol=1e-4)
    assert torch.allclose(ridge_predict(w, x), y, atol=1e-4)
    a = torch.cat([x, torch.ones(50, 1)], 1).double()  # w = (A^T A + alpha I)^-1 A^T y by hand
    ref = torch.linalg.inv(a.T @ a + 2.0 * torch.eye(4, dtype=a.dtype)) @ a.T @ y.double()
    assert torch.allclose(ridge_fit(x, y, alpha=2.0).double(), ref, atol=1e-4)


def test_feature_std_is_zero_for_collapsed_and_near_one_for_spread_features() -> None:
    same = F.normalize(torch.ones(100, 16), dim=1)
    assert feature_std(same) == 0.0
    spread = F.normalize(torch.randn(5000, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    assert math.isclose(feature_std(spread), 1.0, abs_tol=0.05)
