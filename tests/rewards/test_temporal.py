"""Temporal head: causal (frame t+1 never changes the reward at t), streaming equals batch scoring, the loss
against a hand-written reference, and on a square whose frames repeat but whose swing grows, the temporal head
orders time where a single-frame head cannot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.distributions import Normal, kl_divergence

from video2reward.encoders import build_encoder
from video2reward.errors import ConfigError
from video2reward.evaluation.metrics import value_order_correlation
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead, target_sigma
from video2reward.rewards.sequence_layers import SEQUENCES
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead
from video2reward.rewards.triplets import TripletSampler
from video2reward.rewards.windows import WindowBatch, WindowSampler
from video2reward.testing.synthetic import as_demonstration, swinging_square
from video2reward.training.heads import finish_head
from video2reward.training.loop import train_loop

SIZE = 16


class PixelEncoder(nn.Sequential):
    """Flatten -> Linear -> LayerNorm: a tiny encoder that learns a 16 px square's position in a few steps."""

    def __init__(self, size: int = SIZE, dim: int = 32):
        super().__init__(nn.Flatten(), nn.Linear(3 * size * size, dim), nn.LayerNorm(dim))
        self.dim = dim


def temporal_model(sequence: str = "transformer", context: int = 4, seed: int = 0) -> RewardModel:
    torch.manual_seed(seed)
    head = TemporalProgressHead(build_encoder("cnn", 32, channels=(8, 16), dim=16),
                                TemporalConfig(context=context, sequence=sequence, width=16, heads=2, state=4,
                                               hidden=32))
    head.goal.normal_()
    return RewardModel(head.eval(), {"head": "temporal", "image_size": 32})


def random_video(t: int = 23, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (t, 32, 32, 3), dtype=np.uint8)


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_changing_a_later_frame_never_changes_an_earlier_reward(sequence: str) -> None:
    model = temporal_model(sequence)
    video = random_video()
    before = model.score(video).mu
    for t in (0, 2, 9, 21):  # frames t+1 .. end replaced: rewards up to t stay, the later ones move
        changed = video.copy()
        changed[t + 1 :] = random_video(seed=t + 1)[t + 1 :]
        after = model.score(changed).mu
        np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
        assert np.abs(after[t + 1 :] - before[t + 1 :]).max() > 1e-4


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_the_reward_reads_exactly_the_last_k_frames(sequence: str) -> None:
    """Changing frame t-K+1 moves the reward at t; changing frame t-K (outside the window, not the first
    frame) does not."""
    model, k, t = temporal_model(sequence, context=4), 4, 12
    video = random_video()
    base = model.score(video).mu
    inside, outside = video.copy(), video.copy()
    inside[t - k + 1] = 255 - inside[t - k + 1]
    outside[t - k] = 255 - outside[t - k]
    assert model.score(inside).mu[t] != base[t]  # (an untrained SSM remembers its oldest frame faintly: ~1e-6)
    assert model.score(outside).mu[t] == base[t]


@pytest.mark.parametrize("sequence", SEQUENCES)
def test_streaming_chunks_equal_batch_scoring(sequence: str) -> None:
    model = temporal_model(sequence, context=5)
    video = random_video(31)
    whole = model.score(video)
    frames = np.stack([f for f in video])  # already at the model's size: the scorer takes it as is
    for chunk, batch in ((1, 64), (3, 2), (7, 4), (31, 5)):
        scorer = model.scorer(batch_size=batch)
        parts = [scorer.score(frames[i : i + chunk]) for i in range(0, len(frames), chunk)]
        np.testing.assert_allclose(np.concatenate([p.mu for p in parts]), whole.mu, atol=1e-6)
        np.testing.assert_allclose(np.concatenate([p.sigma for p in parts]), whole.sigma, atol=1e-6)
    assert len(whole) == len(video)  # one reward per frame, the first K-1 included
    assert model.score(video[:1]).mu.shape == (1,)


def test_loss_matches_a_hand_written_reference() -> None:
    """KL(N(p, sigma_target) || N(mu, sigma)) on demonstration windows + beta push-back on failed ones."""
    torch.manual_seed(0)
    head = TemporalProgressHead(PixelEncoder(), TemporalConfig(context=3, width=8, heads=2, hidden=8, pushback=0.8,
                                                               negative_weight=0.5))
    frames = torch.rand(6, 3, SIZE, SIZE)
    batch = WindowBatch(frames, torch.tensor([[0, 0, 1], [0, 1, 2], [3, 4, 4]]), torch.tensor([0, 0, 3]),
                        torch.tensor([5, 5, 5]), torch.tensor([0.25, 0.5, 0.0]), torch.tensor([4.0, 4.0, 1.0]),
                        torch.tensor([False, False, True]))
    loss, metrics = head(batch)
    with torch.no_grad():
        z = head.embed(frames)
        reference = [head.predict(z[w[-1:]], z[i], z[g], z[w[:-1]][None]) for w, i, g in
                     zip(batch.window, batch.initial, batch.goal)]
    mu = torch.cat([m for m, _ in reference])
    sigma = torch.cat([s for _, s in reference])
    expert = kl_divergence(Normal(batch.progress[:2], target_sigma(batch.gap[:2], 0.02)), Normal(mu[:2], sigma[:2]))
    push = kl_divergence(Normal(0.8 * mu[2], sigma[2]), Normal(mu[2], sigma[2]))
    torch.testing.assert_close(loss.detach(), expert.mean() + 0.5 * push, rtol=1e-5, atol=1e-6)
    assert metrics["failed_mu"] == pytest.approx(mu[2].item(), rel=1e-5)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ConfigError, match="--temporal-sequence"):
        TemporalProgressHead(PixelEncoder(), TemporalConfig(sequence="lstm"))
    with pytest.raises(ConfigError, match="--temporal-context 1"):
        TemporalProgressHead(PixelEncoder(), TemporalConfig(context=1))


def _swing_demos() -> list:
    rng = np.random.default_rng(0)
    return [as_demonstration(swinging_square(36 + 2 * i, SIZE, y=int(rng.integers(1, SIZE - SIZE // 4 - 1)), phase=i),
                             f"d{i}") for i in range(6)]


def _fit(head: nn.Module, sampler, demos: list, steps: int = 200) -> RewardModel:
    def sample(gen):
        batch = sampler.sample(gen)
        batch.frames = batch.frames.float() / 255
        return batch

    opt = torch.optim.AdamW(head.parameters(), lr=5e-3)
    train_loop(head, sample, opt, steps=steps, generator=torch.Generator().manual_seed(0), warmup=10, progress=False)
    finish_head(head, demos, torch.device("cpu"))
    return RewardModel(head, {"head": "test", "image_size": SIZE})


@pytest.mark.slow
def test_growing_swing_is_ordered_by_the_temporal_head_and_not_by_a_single_frame_head() -> None:
    """Every other frame of the swinging square is the same image (the square at the centre), early and late:
    a single-frame head must give those frames one reward; a window of 4 frames sees the swing's amplitude."""
    demos = _swing_demos()
    held_out = [swinging_square(42, SIZE, y=y, phase=p) for y, p in ((2, 1), (6, 2), (10, 3))]  # unseen length
    assert (held_out[0][1] == held_out[0][-1]).all()  # a frame repeats from the start to the end
    torch.manual_seed(0)
    temporal = _fit(TemporalProgressHead(PixelEncoder(), TemporalConfig(context=4, width=16, layers=1, heads=2,
                                                                        hidden=32)),
                    WindowSampler(demos, context=4, windows_per_clip=6, videos_per_batch=4, speed_min=1.0,
                                  speed_max=1.0, p_first=1.0, p_last=1.0, p_other_goal=0.0), demos)
    torch.manual_seed(0)
    single = _fit(ProgressHead(PixelEncoder(), ProgressConfig(hidden=32, motion_gap=0)),  # one frame alone
                  TripletSampler(demos, frames_per_video=8, videos_per_batch=4, triplets_per_video=32), demos)
    voc_temporal = value_order_correlation([temporal.score(v).mu for v in held_out])
    voc_single = value_order_correlation([single.score(v).mu for v in held_out])
    assert voc_temporal > 0.9, voc_temporal
    assert voc_single < 0.75, voc_single
    rewards = single.score(held_out[0]).mu
    assert np.ptp(rewards[1::2]) < 1e-6  # the repeated centre frames: one reward, early or late


def test_an_ensemble_of_temporal_heads_scores_the_mean_of_its_members() -> None:
    """`--ensemble K --head temporal`: HeadEnsemble splits the (B, K-1, D) context by member like any feature."""
    from video2reward.rewards.ensemble import HeadEnsemble

    members = [temporal_model(sequence, context=3, seed=k).head for k, sequence in enumerate(("stack", "ssm"))]
    ensemble = RewardModel(HeadEnsemble(members), {"head": "temporal", "ensemble": 2, "image_size": 32})
    video = random_video(17)
    rewards = ensemble.score(video)
    single = [RewardModel(m, {"head": "temporal", "image_size": 32}).score(video).mu for m in members]
    assert ensemble.context == 3 and len(rewards) == len(video)
    np.testing.assert_allclose(rewards.mu, np.mean(single, axis=0), atol=1e-6)
    assert rewards.epistemic is not None and rewards.epistemic.max() > 0
