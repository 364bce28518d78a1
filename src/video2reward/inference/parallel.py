"""Embedding several chunks at once on a CPU: one chunk per thread, each running single-threaded operators.

A frame's features depend on that frame alone (every encoder normalises per sample), so chunks can be embedded in
any order and on any thread; only the reading of rewards from features needs the frames in order (the streaming
context), and that stays on the caller's thread. On a CPU, splitting the work by chunk (inter-op parallelism)
beats splitting every operator across threads (torch's intra-op default) for the small maps of a 64 px encoder:
no barrier after each of the ~40 operators of a frame batch, and each thread's maps stay in its own cache.
On 2 cores the default model embedded ~20% more frames/s this way, with ~25% less CPU per frame, than with two
intra-op threads (batches of 64; `python bench/speed.py --only-e2e` gives its rates at 1 and 2 threads). A
cheap model (the distilled student) is the exception: see `embedded`.

`embedded(model, items, frames_of)` keeps at most `workers` chunks in flight beyond the one being read and
hands back features in the order the chunks came, so memory stays flat in video length.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch

Item = TypeVar("Item")
MAX_WORKERS = 8  # beyond this the Python between operators (one GIL) limits more than the cores
FAST_FPS = 5000.0  # one thread embedding faster than this outpaces decoding: no pool (see `embedded`)
TIMED_CHUNKS = 2  # full chunks timed on the caller's thread before choosing (the faster one counts: warm-up)
TIMED_MIN_FRAMES = 32  # a chunk this long is timed; shorter ones (a video's tail) are not representative


def embed_workers(device: torch.device) -> int:
    """Threads that embed chunks at once: torch's thread count on a CPU (at most MAX_WORKERS), 1 elsewhere."""
    if device.type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), MAX_WORKERS))


@contextmanager
def single_threaded_operators() -> Iterator[None]:
    """torch operators run on the calling thread alone inside; the thread count is restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def embedded(model, items: Iterable[Item], frames_of: Callable[[Item], np.ndarray | None],
             workers: int | None = None) -> Iterator[tuple[Item, torch.Tensor | None]]:
    """Each item with the features (T, D) of its frames `frames_of(item)` (uint8 (T, S, S, 3) at the model's
    size; None or no frames: no features), in the order of `items`.

    With one worker (a GPU, or one thread) the features are computed here, on demand. On a CPU with more, the
    operators run single-threaded and the first full chunks are embedded here and timed: a model that embeds
    faster than FAST_FPS frames/s on one thread outpaces decoding and the reading of rewards, and more threads
    would only contend for the interpreter (the distilled student ran at half speed on 2 cores), so it stays
    on this thread; a slower one is embedded by a pool of threads a few chunks ahead. Operators are
    single-threaded either way, so the choice does not change a number."""
    workers = embed_workers(model.device) if workers is None else workers

    def features(frames: np.ndarray | None) -> torch.Tensor | None:
        return None if frames is None or len(frames) == 0 else model.embed_frames(frames)

    if workers <= 1:
        yield from ((item, features(frames_of(item))) for item in items)
        return
    model.prepare()  # the low-precision copy and per-size caches are made here, once, not raced by the workers
    items = iter(items)
    with single_threaded_operators():
        rates: list[float] = []  # frames/s of full chunks embedded here
        while len(rates) < TIMED_CHUNKS:
            item = next(items, None)
            if item is None:
                return
            frames = frames_of(item)
            t0 = time.perf_counter()
            out = features(frames)
            if frames is not None and len(frames) >= TIMED_MIN_FRAMES:
                rates.append(len(frames) / max(time.perf_counter() - t0, 1e-9))
            yield item, out
        if max(rates) > FAST_FPS:
            yield from ((item, features(frames_of(item))) for item in items)
            return
        yield from _pooled(items, frames_of, features, workers)


def _pooled(items: Iterator[Item], frames_of, features, workers: int) -> Iterator[tuple[Item, torch.Tensor | None]]:
    """`features` of each item's frames on `workers` threads, at most `workers` chunks beyond the one handed
    back, in the order of `items`."""
    pending: deque[tuple[Item, Future]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="v2r-embed") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(features, frames_of(item))))
                if len(pending) > workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:  # the consumer stopped early or a chunk failed: drop what is queued, wait for what runs
            for _, future in pending:
                future.cancel()
