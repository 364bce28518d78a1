"""I-JEPA / V-JEPA: multi-block masks, tube masks over a clip, the predictor's shapes, the EMA target, and a
regression that learns when the target is held fixed."""

import pytest
import torch

from video2reward.encoders import build_encoder
from video2reward.encoders.vit import ViTConfig, ViTEncoder
from video2reward.errors import ConfigError
from video2reward.objectives import build_objective
from video2reward.objectives.jepa import IJEPA, VJEPA, JEPAConfig, sample_masks
from video2reward.video.frame_sampler import FrameBatch

torch.set_num_threads(1)


def tiny_vit() -> ViTEncoder:
    torch.manual_seed(0)
    return ViTEncoder(ViTConfig(image_size=16, patch_size=4, dim=32, depth=1, heads=2))


def frame_batch(n: int, seed: int = 0) -> FrameBatch:
    g = torch.Generator().manual_seed(seed)
    frames = torch.randint(0, 256, (n, 3, 16, 16), dtype=torch.uint8, generator=g)
    time = torch.linspace(0, 1, n)
    neighbour = torch.roll(torch.arange(n), 1)  # frame i's neighbour is frame i - 1 (earlier), frame 0's the last
    return FrameBatch(frames, torch.zeros(n, dtype=torch.long), time, neighbour)


def test_masks_hide_the_targets_from_the_context_and_stack_across_the_batch():
    config = JEPAConfig()
    context, targets = sample_masks(6, 8, 8, config, torch.Generator().manual_seed(1))
    assert context.shape[0] == 6 and targets.shape[:2] == (6, config.targets)
    area = targets.shape[2]
    assert 0.1 * 64 <= area <= 0.3 * 64  # one block size per batch, about target_scale of the grid
    for b in range(6):
        hidden = set(targets[b].flatten().tolist())
        assert not hidden & set(context[b].tolist())  # no target patch is seen
        assert len(set(context[b].tolist())) == context.shape[1]  # no repeats
        for block in targets[b]:  # each target is a rectangle of the grid
            rows, cols = block // 8, block % 8
            assert len(block) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    again = sample_masks(6, 8, 8, config, torch.Generator().manual_seed(1))
    assert torch.equal(again[0], context) and torch.equal(again[1], targets)  # same seed, same masks


def test_ijepa_step_trains_the_class_token_and_leaves_the_target_to_the_ema():
    objective = IJEPA(tiny_vit(), JEPAConfig(predictor_dim=16, predictor_depth=1, predictor_heads=2))
    batch = objective.make_batch(frame_batch(4), torch.Generator().manual_seed(0))
    assert batch["clips"].shape == (4, 1, 3, 16, 16)
    loss, metrics = objective(batch)
    loss.backward()
    assert torch.isfinite(loss) and metrics["loss"] > 0
    assert objective.encoder.cls_token.grad.abs().sum() > 0  # the vector `v2r train` keeps is trained
    assert all(p.grad is None for p in objective.target_encoder.parameters())  # no gradient reaches the target
    before = [p.clone() for p in objective.target_encoder.parameters()]
    with torch.no_grad():
        for p in objective.encoder.parameters():
            p.add_(1.0)
    objective.after_step(0, 10)  # m = 0.996: the target moves 0.4% of the way
    moved = [(t - b).abs().max().item() for t, b in zip(objective.target_encoder.parameters(), before)]
    assert max(moved) == pytest.approx(0.004, rel=1e-3)


def test_vjepa_clips_are_in_time_order_and_masks_are_tubes():
    objective = VJEPA(tiny_vit(), JEPAConfig(predictor_dim=16, predictor_depth=1, predictor_heads=2,
                                             min_crop_scale=1.0))
    assert objective.neighbour_window == 4  # the frame sampler draws the clips' second frames
    fb = frame_batch(4)
    clips = objective.clips(fb)
    for i in range(4):  # neighbour i - 1 is earlier, except frame 0 whose neighbour (frame 3) is later
        j = (i - 1) % 4
        first, second = (j, i) if fb.time[j] <= fb.time[i] else (i, j)
        assert torch.equal(clips[i, 0], fb.frames[first]) and torch.equal(clips[i, 1], fb.frames[second])
    batch = objective.make_batch(fb, torch.Generator().manual_seed(0))
    loss, _ = objective(batch)
    assert torch.isfinite(loss)
    grid = objective.encoder.grid_size(16, 16)
    pos = objective.predictor.positions(grid)  # (2 frames, N, d): one spatial grid, two frame embeddings
    assert pos.shape[:2] == (2, grid[0] * grid[1])
    assert torch.allclose(pos[0] - pos[1], (objective.predictor.frame_embed[0, 0] - objective.predictor.frame_embed[0, 1]).expand_as(pos[0]))


def test_feature_regression_learns_when_the_target_is_fixed():
    """With momentum 1 the target encoder never moves: predicting its features is plain regression, which a
    few steps on one batch must fit far better than at the start."""
    torch.manual_seed(0)
    objective = IJEPA(tiny_vit(), JEPAConfig(predictor_dim=32, predictor_depth=1, predictor_heads=2,
                                             momentum_start=1.0, momentum_end=1.0, min_crop_scale=1.0))
    batch = objective.make_batch(frame_batch(8), torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW([p for p in objective.parameters() if p.requires_grad], lr=3e-3)
    first = objective(batch)[0].item()
    for step in range(60):
        loss, _ = objective(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        objective.after_step(step, 60)
    assert objective(batch)[0].item() < 0.5 * first


def test_cnn_encoders_are_refused_with_the_fix():
    with pytest.raises(ConfigError, match="--encoder vit"):
        build_objective("ijepa", build_encoder("cnn", 16))
    with pytest.raises(ConfigError, match="target_scale"):
        JEPAConfig(target_scale=(0.3, 0.2))
