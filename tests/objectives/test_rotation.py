"""Rotation prediction: rotations match their labels, the loss is plain cross-entropy, a tiny CNN learns it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from video2reward.encoders.cnn import CNNConfig, CNNEncoder
from video2reward.objectives.rotation import Rotation, RotationConfig, rotate_batch
from video2reward.video.frame_sampler import FrameBatch

torch.set_num_threads(1)

TINY = CNNConfig(image_size=32, stem_channels=8, channels=(8, 16, 32), dim=32)
NO_AUG = RotationConfig(shift_fraction=0.0, jitter_p=0.0)


def frame_batch(frames: torch.Tensor) -> FrameBatch:
    n = frames.shape[0]
    return FrameBatch(frames, torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.arange(n))


def asymmetric_frames(n: int, size: int = 32, seed: int = 0) -> torch.Tensor:
    """(n, 3, size, size) uint8: a red bar along the top, a green square at a random place below it and a
    dark-to-bright vertical ramp: no rotation maps one of these onto another."""
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(20, 120, size).view(1, 1, size, 1).expand(n, 3, size, size)
    frames = ramp.clone()
    frames[:, :, : size // 8] = torch.tensor([255.0, 0, 0]).view(1, 3, 1, 1)
    side = size // 4
    for i in range(n):
        x = int(torch.randint(0, size - side, (1,), generator=g))
        y = int(torch.randint(size // 4, size - side, (1,), generator=g))
        frames[i, :, y : y + side, x : x + side] = torch.tensor([0.0, 255, 0]).view(3, 1, 1)
    return frames.round().to(torch.uint8)


def test_rotate_batch_turns_counter_clockwise() -> None:
    frame = torch.zeros(1, 1, 4, 4)
    frame[0, 0, 0, 0] = 1  # top-left
    frame[0, 0, 0, 1] = 2  # its right neighbour: the image is not symmetric
    corners = {0: (0, 0), 1: (3, 0), 2: (3, 3), 3: (0, 3)}  # where the top-left pixel goes
    for k, (r, c) in corners.items():
        out = rotate_batch(frame, torch.tensor([k]))
        assert out[0, 0, r, c] == 1, k
    out = rotate_batch(frame.expand(4, 1, 4, 4), torch.arange(4))
    for k in range(4):
        assert torch.equal(out[k], torch.rot90(frame[0], k, dims=(1, 2)))
    with pytest.raises(ValueError):
        rotate_batch(torch.zeros(1, 3, 4, 5), torch.tensor([1]))


def test_labels_match_the_rotation_applied() -> None:
    obj = Rotation(CNNEncoder(TINY), NO_AUG)
    frames = asymmetric_frames(24)
    batch = obj.make_batch(frame_batch(frames), torch.Generator().manual_seed(0))
    labels = batch["labels"]
    assert labels.dtype == torch.long and set(labels.tolist()) == {0, 1, 2, 3}
    x = frames.float() / 255
    for i in range(24):
        torch.testing.assert_close(batch["frames"][i], torch.rot90(x[i], int(labels[i]), dims=(1, 2)))
        others = [k for k in range(4) if k != labels[i]]
        assert all(not torch.allclose(batch["frames"][i], torch.rot90(x[i], k, dims=(1, 2))) for k in others)
    again = obj.make_batch(frame_batch(frames), torch.Generator().manual_seed(0))
    assert torch.equal(again["labels"], labels) and torch.equal(again["frames"], batch["frames"])
    augmented = Rotation(CNNEncoder(TINY)).make_batch(frame_batch(frames), torch.Generator().manual_seed(0))
    assert augmented["frames"].shape == (24, 3, 32, 32)
    assert 0 <= augmented["frames"].min() and augmented["frames"].max() <= 1


def test_loss_is_cross_entropy() -> None:
    torch.manual_seed(0)
    obj = Rotation(CNNEncoder(TINY), RotationConfig())
    batch = obj.make_batch(frame_batch(asymmetric_frames(8)), torch.Generator().manual_seed(1))
    loss, metrics = obj(batch)
    logits = obj.classifier(obj.encoder(batch["frames"]))
    torch.testing.assert_close(loss, F.cross_entropy(logits, batch["labels"]))
    acc = (logits.argmax(1) == batch["labels"]).float().mean().item()
    assert metrics["acc"] == pytest.approx(acc) and metrics["loss"] == pytest.approx(loss.item())
    assert 0 < metrics["std"] < 1
    loss.backward()
    assert obj.encoder.stem[0].weight.grad.abs().sum() > 0 and obj.classifier.weight.grad is not None


def test_tiny_encoder_learns_rotations() -> None:
    torch.manual_seed(0)
    obj = Rotation(CNNEncoder(TINY), RotationConfig())
    test = obj.make_batch(frame_batch(asymmetric_frames(64, seed=1000)), torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert obj(test)[1]["acc"] < 0.5  # chance level before training
    opt = torch.optim.AdamW(obj.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for step in range(30):
        batch = obj.make_batch(frame_batch(asymmetric_frames(32, seed=step)), g)
        loss, _ = obj(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        _, metrics = obj(test)
    assert metrics["acc"] > 0.9, metrics
