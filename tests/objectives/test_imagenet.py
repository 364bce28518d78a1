"""ImageNet distillation: the teacher stays frozen, the loss is 1 - cosine to its normalised features, the student
learns to match it, and `v2r pretrain --method imagenet` writes an encoder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from video2reward.encoders.cnn import CNNConfig, CNNEncoder
from video2reward.objectives import build_objective
from video2reward.objectives.imagenet import ImageNetDistill, ImageNetDistillConfig
from video2reward.video.frame_sampler import FrameBatch

pytest.importorskip("efficientnet_lite_pytorch")
torch.set_num_threads(1)

TINY = CNNConfig(image_size=32, stem_channels=8, channels=(8, 16, 32), dim=32)


def frame_batch(n: int, seed: int = 0) -> FrameBatch:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return FrameBatch(frames, torch.zeros(n, dtype=torch.long), torch.linspace(0, 1, n), torch.arange(n))


def test_teacher_is_frozen_and_the_loss_is_one_minus_cosine_to_its_normalised_features() -> None:
    obj = ImageNetDistill(CNNEncoder(TINY), ImageNetDistillConfig(student_view_p=0.0)).train()
    assert not any(p.requires_grad for p in obj.teacher.parameters())
    assert not obj.teacher.training  # train() keeps the teacher in eval mode (BatchNorm statistics fixed)
    batch = obj.make_batch(frame_batch(6), torch.Generator().manual_seed(0))
    assert torch.equal(batch["student"], batch["teacher"])  # no view: both read the frame itself
    loss, metrics = obj(batch)
    loss.backward()
    assert all(p.grad is None for p in obj.teacher.parameters())
    assert any(p.grad is not None for p in obj.encoder.parameters())
    with torch.no_grad():  # the docstring's equation, by hand
        t = obj.teacher(batch["teacher"])
        t = (t - t.mean(-1, keepdim=True)) / (t.var(-1, unbiased=False, keepdim=True) + 1e-5).sqrt()
        s = obj.projector(obj.encoder(batch["student"]))
        expected = 1 - (s * t).sum(-1) / (s.norm(dim=-1) * t.norm(dim=-1))
    assert loss.item() == pytest.approx(expected.mean().item(), rel=1e-4)
    assert metrics["cos"] == pytest.approx(1 - loss.item(), abs=1e-5)


def test_student_views_differ_from_the_teachers_frame_and_the_teacher_reads_its_own_size() -> None:
    obj = ImageNetDistill(CNNEncoder(TINY), ImageNetDistillConfig(student_view_p=1.0, teacher_size=48))
    batch = obj.make_batch(frame_batch(4), torch.Generator().manual_seed(1))
    assert batch["teacher"].shape == (4, 3, 48, 48) and batch["student"].shape == (4, 3, 32, 32)
    plain = F.interpolate(batch["teacher"], size=(32, 32), mode="bilinear", antialias=True)
    assert (batch["student"] - plain).abs().mean() > 0.05  # the student reads a moved camera's view
    with pytest.raises(ValueError):
        ImageNetDistillConfig(teacher_size=8)


def test_student_learns_to_match_the_teacher() -> None:
    torch.manual_seed(0)
    obj = build_objective("imagenet", CNNEncoder(TINY), student_view_p=0.0)
    batch = obj.make_batch(frame_batch(16), torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW([p for p in obj.parameters() if p.requires_grad], lr=3e-3)
    first, _ = obj(batch)
    for _ in range(60):
        loss, _ = obj(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first.item()
