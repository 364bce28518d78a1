"""Decoding in worker processes: a torch DataLoader over the frame chunks of many videos, for
`v2r score --workers N`.

Worker w decodes videos w, w + N, w + 2N, ... one after the other and streams each as chunks of at most
`chunk` frames (already made square and resized to the model's size), then an end marker with the video's
frame rate. Nothing holds a whole video: a worker has one chunk in hand and the DataLoader at most
`prefetch_factor` per worker in flight, so memory stays flat in video length and in the number of videos.
The main process runs the model on the chunks as they arrive (see scoring.py), one video's stream at a time
in order, several videos interleaved.

A video that fails to decode does not kill the worker: its stream ends with an item carrying the error
message, and the main process decides (stop, or skip it with --skip-bad) as it does without workers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from queue import Empty, Full, Queue

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from video2reward.errors import VideoError
from video2reward.video.io import VideoSource, iter_frames, probe


@dataclass
class ChunkItem:
    """One item of the stream: `frames` (N, S, S, 3) uint8 of video `index` (of the sources list), or, with
    `done`, the end of that video: its `fps`, and `error` (the VideoError's message) if it failed."""

    index: int
    frames: np.ndarray
    done: bool = False
    fps: float | None = None
    error: str = ""


class VideoChunks(IterableDataset):
    """The chunks of every video in `sources`, each video decoded by one worker (round robin)."""

    def __init__(self, sources: Sequence[VideoSource], size: int, fit: str, chunk: int) -> None:
        self.sources = list(sources)
        self.size, self.fit, self.chunk = size, fit, chunk

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        empty = np.zeros((0, self.size, self.size, 3), np.uint8)
        for index in range(worker, len(self.sources), workers):
            source = self.sources[index]
            try:
                fps = probe(source).fps
                for frames in iter_frames(source, self.size, chunk=self.chunk, fit=self.fit):
                    yield vars(ChunkItem(index, frames))
            except VideoError as exc:
                yield vars(ChunkItem(index, empty, done=True, error=str(exc)))
                continue
            yield vars(ChunkItem(index, empty, done=True, fps=fps))


READ_AHEAD = 8  # chunks decoded ahead of the model in a one-process run (8 x 64 frames at 64 px: 6 MB)


def read_ahead(items: Iterator, depth: int) -> Iterator:
    """`items`, produced by a background thread at most `depth` items ahead; an exception there is raised here,
    in order. Closing the generator early stops the thread at its next item."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        queue.put((item, None), timeout=0.1)
                        break
                    except Full:
                        continue
                if stop.is_set():
                    return
            queue.put((end, None))
        except BaseException as exc:  # handed to the consumer, raised there
            queue.put((end, exc))

    thread = threading.Thread(target=produce, name="v2r-decode", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            try:
                queue.get_nowait()
            except Empty:
                thread.join(timeout=0.05)


def _as_item(raw: dict) -> ChunkItem:
    frames = raw["frames"]
    if isinstance(frames, torch.Tensor):  # the DataLoader hands arrays over as (shared-memory) tensors
        frames = frames.numpy()
    return ChunkItem(raw["index"], frames, raw["done"], raw["fps"], raw["error"])


def iter_chunks(sources: Sequence[VideoSource], size: int, fit: str, chunk: int, workers: int,
                prefetch: int = 2) -> Iterator[ChunkItem]:
    """The chunks of `sources` decoded by `workers` processes, in arrival order (videos interleave; each
    video's chunks come in order, then its end marker). `workers` 0 decodes in one thread of this process,
    in order, up to `READ_AHEAD` chunks ahead of the caller (across the end of one video into the next), so
    decoding (PyAV and swscale release the GIL) overlaps the model."""
    if workers < 0:
        raise ValueError(f"workers must be >= 0, got {workers}")
    dataset = VideoChunks(sources, size, fit, chunk)
    if workers == 0:
        yield from (_as_item(raw) for raw in read_ahead(iter(dataset), READ_AHEAD))
        return
    workers = max(1, min(workers, len(sources)))  # a worker without a video would only cost a process
    loader = DataLoader(dataset, batch_size=None, num_workers=workers, prefetch_factor=prefetch,
                        persistent_workers=False)
    for raw in loader:
        yield _as_item(raw)
