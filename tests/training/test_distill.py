"""`v2r distill`: the losses against references, zero loss for a student that is a copy of its teacher (so the
student sees exactly the inputs the teacher's scoring uses), a tiny student that agrees with its teacher on
held-out videos, the student folder loading and scoring, and the command."""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Bernoulli, Categorical, kl_divergence

import video2reward
from tests.helpers.tiny_heads import HELD_OUT, fit
from video2reward.cli import main
from video2reward.encoders import build_encoder
from video2reward.evaluation.metrics import spearman, value_order_correlation
from video2reward.inference.model import RewardModel
from video2reward.rewards.clips import ClipSampler, VIPSampler
from video2reward.rewards.goal_distance import GoalDistanceConfig, GoalDistanceHead
from video2reward.rewards.pixel_ridge import PixelRidge
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.rank import RankConfig, RankHead
from video2reward.rewards.registry import distill_kind, head_config_dict
from video2reward.rewards.success import SuccessConfig, SuccessHead
from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead
from video2reward.rewards.temporal_distance import (
    TemporalDistanceConfig,
    TemporalDistanceHead,
)
from video2reward.rewards.triplets import TripletSampler
from video2reward.rewards.video_likelihood import (
    VideoLikelihoodConfig,
    VideoLikelihoodHead,
)
from video2reward.rewards.windows import WindowSampler
from video2reward.testing.synthetic import moving_square, square_demonstrations
from video2reward.training.config import DistillConfig
from video2reward.training.distill import (
    DistillLoss,
    DistillSampler,
    binary_kl_logits,
    distill,
)
from video2reward.video.io import write_video

HEADS = {  # kind -> (head on an encoder, its training sampler), as in tests/rewards/
    "progress": (lambda enc: ProgressHead(enc, ProgressConfig(hidden=64, motion_gap=2)),
                 lambda d: TripletSampler(d, frames_per_video=8, videos_per_batch=4, triplets_per_video=32,
                                          motion_gap=2)),
    "rank": (lambda enc: RankHead(enc, RankConfig(hidden=64)),
             lambda d: ClipSampler(d, [], frames_per_video=8, videos_per_batch=4)),
    "goal-distance": (lambda enc: GoalDistanceHead(enc, GoalDistanceConfig()),
                      lambda d: VIPSampler(d, frames_per_video=8, videos_per_batch=2, quadruples_per_video=48)),
    "temporal-distance": (lambda enc: TemporalDistanceHead(enc, TemporalDistanceConfig(hidden=64)),
                          lambda d: ClipSampler(d, frames_per_video=8, videos_per_batch=4)),
    "success": (lambda enc: SuccessHead(enc, SuccessConfig(hidden=64)),
                lambda d: ClipSampler(d, [], frames_per_video=8, videos_per_batch=4)),
    "temporal": (lambda enc: TemporalProgressHead(enc, TemporalConfig(context=4, width=16, heads=2, hidden=64)),
                 lambda d: WindowSampler(d, context=4, windows_per_clip=4, videos_per_batch=4)),
}
FAST = dict(batch_size=32, frames_per_video=8, warmup_steps=10, threads=1, checkpoint_every=1000)


def tiny_teacher(kind: str, steps: int = 150) -> RewardModel:
    """A tiny model of head `kind` trained on the moving-square demonstrations, with a full model config."""
    make_head, make_sampler = HEADS[kind]
    model = fit(make_head, make_sampler, steps=steps)
    encoder = model.head.encoder
    model.config = {"head": kind, "image_size": 32, "frame_fit": "pad", "head_config": head_config_dict(model.head),
                    "encoder": {"name": "cnn", "config": asdict(encoder.config)}}
    return model


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """The teacher's demonstrations (video2reward.testing.synthetic square_demonstrations) as mp4 files."""
    root = tmp_path_factory.mktemp("distill") / "videos"
    for d in square_demonstrations():
        write_video(root / f"{d.name}.mp4", d.frames.permute(0, 2, 3, 1).numpy(), fps=10)
    return root


@pytest.fixture(scope="module")
def progress_teacher(tmp_path_factory, videos: Path) -> Path:
    folder = tmp_path_factory.mktemp("teacher") / "progress"
    model = tiny_teacher("progress")
    model.config["training"] = {"videos": [str(p) for p in sorted(videos.glob("*.mp4"))]}
    model.save(folder)
    return folder


def test_binary_kl_matches_torch() -> None:
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(20, generator=g) * 3, torch.randn(20, generator=g) * 3
    expected = kl_divergence(Bernoulli(logits=t), Bernoulli(logits=s))
    torch.testing.assert_close(binary_kl_logits(t, s), expected, rtol=1e-4, atol=1e-5)


def test_temporal_distance_loss_is_tempered_categorical_kl() -> None:
    torch.manual_seed(0)
    head = HEADS["temporal-distance"][0](build_encoder("cnn", 32, channels=(8,), dim=8))
    module = DistillLoss(head, distill_kind("temporal-distance"), temperature=3.0)
    sampler_batch = _batch_for(head, "temporal-distance")
    loss, _ = module(sampler_batch)
    with torch.no_grad():
        z = head.embed(sampler_batch.frames)
        logits = head.logits(z[sampler_batch.initial], z[sampler_batch.current])
    expected = kl_divergence(Categorical(logits=sampler_batch.target / 3), Categorical(logits=logits / 3)).mean() * 9
    torch.testing.assert_close(loss.detach(), expected, rtol=1e-4, atol=1e-6)


def _batch_for(teacher_head, kind: str):
    model = RewardModel(teacher_head, {"head": kind, "image_size": 32}, precision="fp32")
    demos = square_demonstrations(3)
    sampler = DistillSampler(model, demos, torch.stack([d.frames[-1] for d in demos]),
                             DistillConfig(batch_size=16, frames_per_video=8, augment_fraction=0.5), 32)
    return sampler.sample(torch.Generator().manual_seed(0))


@pytest.mark.parametrize("kind", list(HEADS))
def test_a_copy_of_the_teacher_has_zero_loss(kind: str) -> None:
    """Teacher and student see the same frames, initial frame, motion partner and goal (the student's goal is
    its embedding of the same last frames the teacher's stored goal came from): a copy matches exactly."""
    torch.manual_seed(0)
    head = HEADS[kind][0](build_encoder("cnn", 32, channels=(8, 16), dim=16)).eval()
    demos = square_demonstrations(3)
    with torch.no_grad():
        for name, buffer in head.named_buffers():  # calibration constants a fresh head would not have
            if name in ("scale", "shift", "d_start", "residual_std"):
                buffer.add_(torch.rand(()) + 0.5)
        if hasattr(head, "set_goal"):
            head.set_goal(torch.stack([d.frames[-1] for d in demos]).float() / 255)
    batch = _batch_for(head, kind)
    loss, metrics = DistillLoss(copy.deepcopy(head), distill_kind(kind), temperature=2.0)(batch)
    # the teacher runs as in inference (eval, no grad: the folded stem, cnn.py), the student as in training: the
    # same arithmetic in another order, ~1e-6 apart in features
    assert abs(loss.item()) < 1e-5 and metrics["mae"] < 1e-4, (loss.item(), metrics)


@pytest.mark.slow
def test_distilled_student_agrees_with_its_teacher(progress_teacher: Path, videos: Path, tmp_path: Path) -> None:
    result = distill(progress_teacher, tmp_path / "student", DistillConfig(steps=150, lr=3e-3, **FAST),
                     progress=False)
    teacher, student = video2reward.load(progress_teacher), video2reward.load(tmp_path / "student")
    held_out = [moving_square(25, 32, y=y) for y in HELD_OUT]  # lengths and heights no demonstration has
    t_mu = [teacher.score(v).mu for v in held_out]
    s_mu = [student.score(v).mu for v in held_out]
    rho = [spearman(a, b) for a, b in zip(t_mu, s_mu)]
    assert min(rho) > 0.9, rho
    voc_t, voc_s = value_order_correlation(t_mu), value_order_correlation(s_mu)
    assert voc_s >= 0.98 * voc_t, (voc_s, voc_t)
    assert result.agreement["teacher_spearman"] > 0.9
    # an ordinary model folder: the same head and options on the tiny preset
    config = json.loads((tmp_path / "student" / "config.json").read_text())
    assert config["head"] == "progress" and config["head_config"] == teacher.config["head_config"]
    assert config["encoder"]["config"]["channels"] == [16, 32, 64] and student.motion_gap == 2
    assert config["training"]["distilled_from"] == str(progress_teacher)
    assert config["training"]["videos"] == teacher.config["training"]["videos"]
    default_cnn = sum(p.numel() for p in build_encoder("cnn", 32).parameters())
    assert sum(p.numel() for p in student.head.encoder.parameters()) < default_cnn / 10
    rewards = student.score(videos / "d0.mp4")
    assert len(rewards.mu) == 20 and rewards.fps == pytest.approx(10)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rank", "temporal-distance", "success", "goal-distance", "temporal"])
def test_other_heads_distil(kind: str, videos: Path, tmp_path: Path) -> None:
    """A short run: the student reads its teacher's rewards on the same frames better than chance."""
    teacher = tiny_teacher(kind, steps=100)
    teacher.save(tmp_path / "teacher")
    distill(tmp_path / "teacher", tmp_path / "student", DistillConfig(videos=str(videos), steps=100, lr=3e-3,
                                                                       **FAST), progress=False)
    student = video2reward.load(tmp_path / "student")
    assert type(student.head) is type(teacher.head)
    frames = moving_square(25, 32, y=HELD_OUT[1])
    t, s = teacher.score(frames), student.score(frames)
    if kind == "success":  # flat ~0 then ~1: the detector's decisions, not the order of its tiny values
        assert np.mean((t.mu > 0.5) == (s.mu > 0.5)) >= 0.9, (t.mu, s.mu)
    else:
        assert spearman(t.mu, s.mu) > 0.8, (kind, t.mu, s.mu)
    assert (s.success_prob is None) == (kind != "success")
    for name in ("scale", "shift", "d_start", "d_end"):  # calibration is the teacher's
        if hasattr(teacher.head, name):
            assert getattr(student.head, name) == getattr(teacher.head, name)


@pytest.mark.slow
def test_distill_command(progress_teacher: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "small"
    args = ["distill", str(progress_teacher), "--out", str(out), "--steps", "3", "--batch-size", "16",
            "--frames-per-video", "8", "--warmup-steps", "1", "--threads", "1", "--quiet"]
    assert main(args) == 0
    assert "Spearman with the teacher" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"model.safetensors", "config.json", "README.md"}
    assert main(["score", str(out), str(Path(json.loads((out / "config.json").read_text())["training"]["videos"][0])),
                 "--out", str(tmp_path / "r.jsonl"), "--quiet"]) == 0


def test_missing_training_videos_ask_for_videos(tmp_path: Path, capsys) -> None:
    model = tiny_teacher("progress", steps=2)
    model.config["training"] = {"videos": ["nowhere/ep_0.mp4"]}
    model.save(tmp_path / "teacher")
    assert main(["distill", str(tmp_path / "teacher"), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "nowhere/ep_0.mp4" in err and "--videos" in err
    ridge = PixelRidge()
    ridge.fit(torch.from_numpy(moving_square(20, 32)).permute(0, 3, 1, 2).float() / 255, torch.linspace(0, 1, 20))
    RewardModel(ridge, {"head": "pixel-ridge", "image_size": 32, "head_config": asdict(ridge.config)}).save(
        tmp_path / "ridge")
    assert main(["distill", str(tmp_path / "ridge"), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    assert "pixel-ridge" in capsys.readouterr().err


def test_a_head_without_a_distillable_reward_is_refused_with_why(tmp_path: Path, capsys) -> None:
    head = VideoLikelihoodHead(build_encoder("cnn", 32, channels=(8, 16), dim=16), VideoLikelihoodConfig())
    config = {"head": "video-likelihood", "image_size": 32, "head_config": head_config_dict(head),
              "encoder": {"name": "cnn", "config": asdict(head.encoder.config)}}
    RewardModel(head, config).save(tmp_path / "vl")
    assert main(["distill", str(tmp_path / "vl"), "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "'video-likelihood' model cannot be distilled" in err and "not one a student can match" in err


@pytest.mark.slow
def test_resume_without_a_checkpoint_is_a_clear_error(progress_teacher: Path, tmp_path: Path, capsys) -> None:
    assert main(["distill", str(progress_teacher), "--out", str(tmp_path / "s"), "--resume", "--quiet"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
