"""Fuzzing the reader: mutated bytes of a small valid video (bytes overwritten, cut, inserted, deleted) must
decode or raise VideoError; any other exception fails, and so does a hang.

Hangs: a hypothesis deadline only reports a slow example after it returns, so each example also runs under
`faulthandler.dump_traceback_later`, which ends the process (with every thread's traceback) if an example
takes HANG_SECONDS: CI fails instead of hanging. No mutation found so far made PyAV/FFmpeg loop: every one of
~30,000 random mutations of this mp4 returned in under 0.1 s, so the reader needs no watchdog of its own (the
one input that does block, a named pipe called .mp4, is refused by `find_videos`).
"""

from __future__ import annotations

import faulthandler
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from video2reward.errors import VideoError
from video2reward.testing.synthetic import moving_square
from video2reward.video.io import probe, read_frames, write_video

HANG_SECONDS = 20
POSITION = st.integers(min_value=0, max_value=1 << 16)  # taken modulo the file's length
MUTATION = st.one_of(
    st.tuples(st.just("set"), POSITION, st.integers(0, 255)),
    st.tuples(st.just("cut"), POSITION, st.just(0)),
    st.tuples(st.just("insert"), POSITION, st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("delete"), POSITION, st.integers(1, 256)),
)
FUZZ = settings(max_examples=150, derandomize=True, database=None, deadline=timedelta(seconds=5),
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def mutate(data: bytes, mutations: list[tuple]) -> bytes:
    out = bytearray(data)
    for kind, position, arg in mutations:
        at = position % max(len(out), 1)
        if kind == "set" and out:
            out[at] = arg
        elif kind == "cut":
            del out[at:]
        elif kind == "insert":
            out[at:at] = arg
        elif kind == "delete":
            del out[at : at + arg]
    return bytes(out)


@pytest.fixture(scope="module")
def seed_videos(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz_seed")
    out = {}
    for suffix in (".mp4", ".mkv"):
        write_video(folder / f"seed{suffix}", moving_square(12, 32), fps=10)
        out[suffix] = (folder / f"seed{suffix}").read_bytes()
    return out


def decode_or_video_error(path: Path) -> None:
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        frames = read_frames(path, size=16)
        assert frames.ndim == 4 and frames.shape[1:] == (16, 16, 3) and frames.shape[0] >= 1
        assert probe(path).fps > 0
    except VideoError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_the_seeds_decode(seed_videos, tmp_path: Path) -> None:
    for suffix, data in seed_videos.items():
        (path := tmp_path / f"v{suffix}").write_bytes(data)
        assert read_frames(path, 16).shape == (12, 16, 16, 3)


@pytest.mark.slow
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@FUZZ
@given(mutations=st.lists(MUTATION, min_size=1, max_size=6))
def test_mutated_video_decodes_or_raises_video_error(seed_videos, tmp_path: Path, suffix: str, mutations) -> None:
    path = tmp_path / f"fuzzed{suffix}"
    path.write_bytes(mutate(seed_videos[suffix], mutations))
    decode_or_video_error(path)


def test_mutate_does_what_it_says() -> None:
    data = bytes(range(10))
    assert mutate(data, [("set", 12, 99)]) == bytes([0, 1, 99, *range(3, 10)])
    assert mutate(data, [("cut", 4, 0)]) == bytes(range(4))
    assert mutate(data, [("insert", 1, b"ab")]) == b"\x00ab" + bytes(range(1, 10))
    assert mutate(data, [("delete", 8, 5)]) == bytes(range(8))
    assert np.frombuffer(mutate(data, []), np.uint8).tolist() == list(range(10))
