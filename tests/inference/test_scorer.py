"""The streaming scorer: one stream or N, a frame at a time or in batches, the same reward per frame; refresh
after the weights change in place equals scoring with the new weights from the start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import video2reward
from video2reward.inference.scorer import Scorer, earlier_frames
from video2reward.testing.synthetic import moving_square
from video2reward.video.frame_fit import fit_frames

MODELS = Path(__file__).resolve().parents[1] / "golden" / "models"
NAMES = ["progress_rank", "temporal", "success"]  # motion gap 3 + ensemble; context 4; a success detector


def frames(t: int, y: int, size: int = 32) -> np.ndarray:
    return fit_frames(moving_square(t, 40, y=y), size)


def test_earlier_frames_is_the_rule_scoring_reads() -> None:
    t = torch.arange(6)
    assert earlier_frames(t, 2, 1).tolist() == [-2, -1, 0, 1, 2, 3]
    assert earlier_frames(t, 0, 3).tolist() == [[-2, -1], [-1, 0], [0, 1], [1, 2], [2, 3], [3, 4]]
    assert earlier_frames(t, 0, 1) is None


@pytest.mark.parametrize("name", NAMES)
def test_one_frame_at_a_time_equals_batches(name: str) -> None:
    model = video2reward.load(MODELS / name)
    video = frames(21, 10)
    whole = model.scorer(batch_size=5).score(video)
    scorer = model.scorer()
    single = [scorer.step(f[None]) for f in video]
    np.testing.assert_allclose([r.mu[0] for r in single], whole.mu, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose([r.sigma[0] for r in single], whole.sigma, rtol=1e-6, atol=1e-6)
    if whole.success_prob is not None:
        np.testing.assert_allclose([r.success_prob[0] for r in single], whole.success_prob, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_parallel_streams_equal_each_stream_alone(name: str) -> None:
    model = video2reward.load(MODELS / name)
    videos = [frames(15, y) for y in (2, 9, 17)]
    alone = [model.scorer().score(v) for v in videos]
    scorer = model.scorer()
    scorer.reset(n_streams=3)
    steps = [scorer.step(np.stack([v[t] for v in videos])) for t in range(15)]
    for i, reference in enumerate(alone):
        np.testing.assert_allclose([s.mu[i] for s in steps], reference.mu, rtol=1e-5, atol=1e-6)
        if reference.epistemic is not None:
            np.testing.assert_allclose([s.epistemic[i] for s in steps], reference.epistemic, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one frame per stream"):
        scorer.step(videos[0][:2])


@pytest.mark.parametrize("name", ["progress_rank", "temporal"])
def test_refresh_after_new_weights_equals_scoring_with_them_from_the_start(name: str) -> None:
    model = video2reward.load(MODELS / name)
    video = frames(18, 6)
    scorer = model.scorer(keep_frames=True)
    for f in video[:11]:
        scorer.step(f[None])
    with torch.no_grad():  # the weights change in place, as online refinement changes them
        for p in model.head.parameters():
            p.add_(0.05 * torch.randn_like(p))
    latest = scorer.refresh()
    later = [scorer.step(f[None]).mu[0] for f in video[11:]]
    fresh = model.scorer().score(video).mu
    np.testing.assert_allclose(latest.mu, fresh[10:11], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(later, fresh[11:], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="keep_frames"):
        Scorer(model).refresh()
