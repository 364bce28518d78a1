"""Near misses made from demonstrations: each kind is what it claims (a stall holds its frame, a rewind runs
backwards, a reverse is the video backwards), and a progress model trained with them reads a stalled copy of a
held-out demonstration below the demonstration's end, where the same model trained without them does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.helpers.tiny_heads import fit
from video2reward.errors import ConfigError
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.triplets import FailedTripletSampler, TripletSampler
from video2reward.testing.synthetic import (
    as_demonstration,
    moving_square,
    square_demonstrations,
)
from video2reward.training.synthetic_negatives import (
    KINDS,
    parse_kinds,
    synthesize_negatives,
    synthetic_negative,
)


@pytest.fixture
def demo():
    return as_demonstration(moving_square(21, 32), "square")


def test_a_stall_plays_the_demonstration_to_its_cut_then_holds_that_frame(demo) -> None:
    stall = synthetic_negative(demo, "stall", cut=0.6)
    c = 12  # 0.6 of 20 frame steps
    assert stall.frames.shape == demo.frames.shape and stall.failed_from == c + 1
    assert torch.equal(stall.frames[: c + 1], demo.frames[: c + 1])
    assert all(torch.equal(f, demo.frames[c]) for f in stall.frames[c + 1:])
    torch.testing.assert_close(stall.source_progress[c + 1:], torch.full((20 - c,), 0.6))


def test_a_shaken_stall_moves_the_held_frame_by_at_most_a_pixel(demo) -> None:
    stall = synthetic_negative(demo, "stall", cut=0.6, jitter=True, generator=torch.Generator().manual_seed(1))
    held = demo.frames[12]
    shifted = {(dy, dx): torch.roll(held, (dy, dx), dims=(1, 2)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)}
    assert all(any(torch.equal(f, s) for s in shifted.values()) for f in stall.frames[13:])
    assert not all(torch.equal(f, held) for f in stall.frames[13:])  # some frames did move


def test_a_rewind_plays_the_tail_backwards(demo) -> None:
    rewind = synthetic_negative(demo, "rewind", cut=0.5)
    c = 10
    for k in range(1, 11):
        assert torch.equal(rewind.frames[c + k], demo.frames[c - k])
    assert rewind.source_progress[c + 1:].diff().le(0).all()  # progress only undone after the cut


def test_a_reverse_is_the_demonstration_backwards_and_fails_from_its_first_frame(demo) -> None:
    reverse = synthetic_negative(demo, "reverse", cut=0.7)
    assert torch.equal(reverse.frames, demo.frames.flip(0)) and reverse.failed_from == 0


def test_one_of_each_kind_per_demonstration_and_reproducible() -> None:
    demos = square_demonstrations()
    made = synthesize_negatives(demos, KINDS, seed=3)
    again = synthesize_negatives(demos, KINDS, seed=3)
    assert len(made) == len(KINDS) * len(demos)
    assert [m.name for m in made] == [a.name for a in again]
    assert all(torch.equal(m.frames, a.frames) for m, a in zip(made, again))


def test_kinds_are_parsed_and_unknown_ones_named() -> None:
    assert parse_kinds("stall, rewind") == ("stall", "rewind") and parse_kinds("none") == () == parse_kinds("")
    with pytest.raises(ConfigError, match="unknown kind.*freeze.*stall, rewind, reverse"):
        parse_kinds("stall,freeze")


def _stall_gap(with_negatives: bool) -> float:
    """Mean reward of a held-out demonstration's last 5 frames minus that of its copy stalled at 0.9."""
    config = ProgressConfig(hidden=64, motion_gap=2, negative_weight=3.0, pushback=0.7)

    def sampler(demos):
        triplets = TripletSampler(demos, frames_per_video=8, videos_per_batch=4, triplets_per_video=16, motion_gap=2)
        if not with_negatives:
            return triplets
        return FailedTripletSampler(triplets, synthesize_negatives(demos, KINDS, seed=0), videos_per_batch=2)

    model = fit(lambda enc: ProgressHead(enc, config), sampler, steps=400)
    held_out = moving_square(25, 32, y=12)
    stalled = held_out.copy()
    stalled[22:] = held_out[21]  # moved until 0.9 of the way (frame 21 of 24), then stopped
    end = model.score(held_out).mu[-5:].mean()
    return float(end - model.score(stalled).mu[-5:].mean())


def test_a_model_trained_with_them_reads_a_stall_below_the_demonstrations_end() -> None:
    without, with_them = _stall_gap(False), _stall_gap(True)
    assert with_them > 0.15, (without, with_them)
    assert with_them > without + 0.1, (without, with_them)
    assert np.isfinite(without)
