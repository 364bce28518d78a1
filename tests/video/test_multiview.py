"""Multi-view TCN (`v2r pretrain --method tcn --views DIR1 DIR2`): positives are the same moment seen by another
camera; the episode's other moments, from any camera, and other episodes are negatives."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from video2reward.cli import main
from video2reward.errors import ConfigError
from video2reward.objectives.tcn import tcn_masks
from video2reward.video.dataset import Demonstration
from video2reward.video.io import write_video
from video2reward.video.multiview import MultiViewSampler, group_views


def view_demo(episode: int, view: int, t: int, stride: int = 1) -> Demonstration:
    """Frames that carry (time index in the original video, view, episode) in their first pixels."""
    frames = torch.zeros((t, 3, 8, 8), dtype=torch.uint8)
    frames[:, 0, 0, 0] = torch.arange(t, dtype=torch.uint8) * stride
    frames[:, 1, 0, 0] = view
    frames[:, 2, 0, 0] = episode
    return Demonstration(f"view{view}/ep_{episode}.mp4", frames, torch.arange(t).float() * stride,
                         (t - 1) * stride + 1)


def test_pairs_are_the_same_moment_from_another_view():
    episodes = [[view_demo(e, v, 20) for v in range(3)] for e in range(4)]
    sampler = MultiViewSampler(episodes, frames_per_video=5, videos_per_batch=6)
    batch = sampler.sample(torch.Generator().manual_seed(0))
    n = 5 * 6
    assert batch.frames.shape[0] == sampler.batch_frames == 2 * n
    time_index, view, episode = (batch.frames[:, c, 0, 0].long() for c in range(3))
    pair = batch.neighbour
    assert torch.equal(pair[pair], torch.arange(2 * n))  # i's positive has i as its positive
    assert torch.equal(time_index[pair], time_index)  # the same moment ...
    assert (view[pair] != view).all()  # ... seen by another camera
    assert torch.equal(episode[pair], episode) and torch.equal(batch.video, episode)
    torch.testing.assert_close(batch.time, time_index.float() / 19)
    assert len(set(view.tolist())) == 3  # every camera takes part


def test_views_with_other_frame_counts_match_by_normalised_time():
    """A camera at half the frame rate: the twin of moment t is its frame nearest to the same normalised time."""
    episodes = [[view_demo(e, 0, 21), view_demo(e, 1, 11, stride=2)] for e in range(2)]
    batch = MultiViewSampler(episodes, frames_per_video=8, videos_per_batch=4).sample(torch.Generator().manual_seed(1))
    original = batch.frames[:, 0, 0, 0].float()  # the original frame index each frame shows (0..20 in both)
    assert (original[batch.neighbour] - original).abs().max() <= 1.0  # at most one original frame apart


def test_tcn_negatives_are_other_moments_of_the_episode_from_any_view():
    episodes = [[view_demo(e, v, 30) for v in range(2)] for e in range(2)]
    batch = MultiViewSampler(episodes, frames_per_video=6, videos_per_batch=2).sample(torch.Generator().manual_seed(2))
    negatives, has_positive = tcn_masks(batch.video, batch.time, batch.neighbour, negative_gap=0.15)
    assert has_positive.all()
    idx = torch.arange(len(batch.video))
    assert not negatives[idx, batch.neighbour].any()  # the twin is never a negative
    view = batch.frames[:, 1, 0, 0]
    far_same_episode = ((batch.video[:, None] == batch.video[None, :])
                        & ((batch.time[:, None] - batch.time[None, :]).abs() >= 0.15))
    cross_view = view[:, None] != view[None, :]
    assert (negatives & far_same_episode & cross_view).any()  # other cameras' other moments push away
    assert torch.equal(negatives & far_same_episode, far_same_episode & (idx[:, None] != batch.neighbour[None, :]))


def test_group_views_matches_by_file_name():
    a = [view_demo(0, 0, 5), view_demo(1, 0, 5)]
    b = [view_demo(1, 1, 5), view_demo(0, 1, 5)]
    for d in b:
        d.name = d.name.replace("view1", "cam_b")
    for d in a:
        d.name = d.name.replace("view0", "cam_a")
    grouped = group_views([a, b], ["cam_a", "cam_b"])
    assert [[d.name for d in views] for views in grouped] == [["cam_a/ep_0.mp4", "cam_b/ep_0.mp4"],
                                                              ["cam_a/ep_1.mp4", "cam_b/ep_1.mp4"]]
    with pytest.raises(ConfigError, match="cam_b and cam_a do not hold the same episodes"):
        group_views([a, b[:1]], ["cam_a", "cam_b"])
    with pytest.raises(ConfigError, match="two or more folders"):
        group_views([a], ["cam_a"])


def _write_views(root, episodes=3, t=12, size=16):
    rng = np.random.default_rng(0)
    for e in range(episodes):
        base = rng.integers(0, 255, (t, size, size, 3), dtype=np.uint8)
        write_video(root / "left" / f"ep_{e}.mp4", base, fps=10)
        write_video(root / "right" / f"ep_{e}.mp4", base[:, :, ::-1], fps=10)  # the mirror camera
    return root / "left", root / "right"


def test_cli_pretrains_multi_view_tcn(tmp_path, capsys):
    left, right = _write_views(tmp_path)
    out = tmp_path / "enc"
    code = main(["pretrain", "--views", str(left), str(right), "--method", "tcn", "--steps", "2", "--batch-size", "8",
                 "--frames-per-video", "2", "--image-size", "16", "--threads", "1", "--quiet", "--out", str(out)])
    assert code == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["pretraining"]["views"] == [str(left), str(right)]
    assert len(saved["pretraining"]["videos"]) == 6
    code = main(["pretrain", "--views", str(left), str(right), "--method", "rotation", "--steps", "1", "--quiet",
                 "--out", str(tmp_path / "enc2")])
    assert code == 2 and "use --method tcn" in capsys.readouterr().err
