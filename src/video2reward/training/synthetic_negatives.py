"""Near misses made from the demonstrations alone, so that a reward model learns that a task stopped partway is
not a task done without the user recording a single failed video.

From every demonstration of T kept frames, with a cut c drawn in [cut_low, cut_high] of its length:

    stall    frames 0..c as recorded, then frame c held for the rest of the length (with `jitter`: each held frame
             moved by up to one pixel, the way a real stalled robot still shakes and the camera still flickers);
    rewind   frames 0..c as recorded, then the same frames played backwards (ReWiND's "rewind" negatives:
             progress undone), c, c-1, ..., 0, 0, ... for the rest of the length;
    reverse  the whole demonstration played backwards (T-1, ..., 0): every pose of the task, in the wrong order.

Each keeps its source's length and time stamps (a stall is as long as the demonstration it stalls). Its frames
before the cut are the demonstration's own (`failed_from` marks where the failure starts; a reversed video fails
from its first frame), and `source_progress` records, per frame, which moment of the demonstration it shows,
so a ranking head can ask a failed frame to rank below every demonstration frame *later* than the moment it
copies (a stalled pose is not worth more than the same pose reached on the way to the goal). The heads then treat
the failed part as they treat a real failed video (`--negatives`): progress pushes it down, rank ranks it below,
success labels it unsuccessful.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from video2reward.errors import ConfigError
from video2reward.video.dataset import Demonstration

KINDS = ("stall", "rewind", "reverse")


def parse_kinds(text: str) -> tuple[str, ...]:
    """'stall,rewind' -> ('stall', 'rewind'); 'none' or '' -> (); an unknown kind is a ConfigError naming the known."""
    names = tuple(dict.fromkeys(k.strip() for k in text.split(",") if k.strip()))
    if names in ((), ("none",)):
        return ()
    unknown = [k for k in names if k not in KINDS]
    if unknown:
        raise ConfigError(f"--synthetic-negatives: unknown kind(s) {', '.join(unknown)}; give a comma list of "
                          f"{', '.join(KINDS)}, or 'none'")
    return names


def _shaken(frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each frame (T, 3, S, S) shifted by -1, 0 or 1 pixel in x and y, independently per frame."""
    shifts = torch.randint(-1, 2, (frames.shape[0], 2), generator=generator).tolist()
    return torch.stack([torch.roll(f, (dy, dx), dims=(1, 2)) for f, (dy, dx) in zip(frames, shifts)])


def synthetic_negative(demo: Demonstration, kind: str, cut: float, jitter: bool = False,
                       generator: torch.Generator | None = None) -> Demonstration:
    """One near miss of `kind` made from `demo`, cut at normalised position `cut` (stall, rewind; ignored by reverse)."""
    t = demo.frames.shape[0]
    c = min(max(int(round(cut * (t - 1))), 1), t - 2)  # the last recorded frame, inside the video
    positions = torch.arange(t)
    if kind == "stall":
        source = torch.where(positions <= c, positions, torch.full_like(positions, c))
        failed_from = c + 1
    elif kind == "rewind":
        source = torch.where(positions <= c, positions, (2 * c - positions).clamp(min=0))  # c+1 -> c-1, ...
        failed_from = c + 1
    elif kind == "reverse":
        source = positions.flip(0)
        failed_from, c = 0, t - 1
    else:
        raise ConfigError(f"unknown synthetic negative {kind!r} (known: {', '.join(KINDS)})")
    frames = demo.frames[source]  # (T, 3, S, S) uint8, a copy
    if jitter and kind == "stall":
        frames[failed_from:] = _shaken(frames[failed_from:], generator or torch.Generator().manual_seed(0))
    label = f"{kind}@{c / max(t - 1, 1):.2f}" if kind != "reverse" else kind
    return replace(demo, name=f"{demo.name}#{label}", frames=frames, failed_from=failed_from,
                   source_progress=demo.progress[source].float())


def synthesize_negatives(demos: Sequence[Demonstration], kinds: Sequence[str], seed: int,
                         cut_low: float = 0.5, cut_high: float = 0.95) -> list[Demonstration]:
    """One near miss of every kind per demonstration (cuts uniform in [cut_low, cut_high], stalls held still or
    jittered at random), reproducible from `seed`. Demonstrations shorter than 4 frames give none."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for demo in demos:
        if demo.frames.shape[0] < 4:
            continue
        for kind in kinds:
            u = torch.rand(2, generator=generator).tolist()
            out.append(synthetic_negative(demo, kind, cut_low + u[0] * (cut_high - cut_low), jitter=u[1] < 0.5,
                                          generator=generator))
    return out
