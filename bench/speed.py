"""Scoring speed and memory: frames/s and ms/frame of embed + predict at batch 1 and batch 64 for every head on
the cnn and vit encoders and for the `tiny` distillation student (eager, TorchScript, int8), next to a ResNet-50
at 224 px (plain torch, random weights) measured in the same run; then the peak RSS of `model.score` streaming a
1-minute and a 10-minute 30 fps video (flat memory means the two peaks are about equal), with the decoder
alone beside it (decoding bounds end-to-end scoring speed once the model is small).

    python bench/speed.py                          # a few minutes on 2 cores
    python bench/speed.py --quick                  # smoke run: short timings, 10 s and 60 s videos
    python bench/speed.py --threads 1 --student models/pendulum-tiny     # time a distilled model folder too
    python bench/speed.py --only-e2e               # only the end-to-end table (bench/speed_e2e.py)

Models are freshly initialised (speed does not depend on the weights): the heads with `v2r train --head KIND`'s
defaults on 64 px frames. Every timing runs warm-up calls first, then repeats the call
until `--min-time` seconds have passed; ms/frame is the median call time / batch. `cpu ms/frame` is process CPU
time per frame: on a loaded machine with --threads 1 it stays near the idle figure while wall time grows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from results_page import add_write_option, write_results_page
from speed_e2e import e2e_rows, e2e_table, e2e_worker

from video2reward.encoders import build_encoder
from video2reward.encoders.cnn import CNN_PRESETS
from video2reward.inference.export import scorer_for, trace
from video2reward.inference.model import RewardModel
from video2reward.rewards.ensemble import HeadEnsemble
from video2reward.rewards.registry import ENCODER_HEADS, head_config_dict
from video2reward.video.io import iter_frames, write_video

SIZE = 64


# ---- ResNet-50 (He et al. 2016, the torchvision layout: bottleneck blocks, stride on the 3x3 conv) ---------------
class Bottleneck(nn.Module):
    def __init__(self, c_in: int, width: int, stride: int) -> None:
        super().__init__()
        c_out = 4 * width
        self.body = nn.Sequential(
            nn.Conv2d(c_in, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True), nn.Conv2d(width, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.skip = nn.Identity() if stride == 1 and c_in == c_out else nn.Sequential(
            nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.skip(x))


def resnet50() -> nn.Module:
    """Stem 7x7/2 + max-pool, stages of 3, 4, 6, 3 bottlenecks (widths 64-512, 2048 out), global average pool:
    (B, 3, 224, 224) -> (B, 2048) features: 23.5 M parameters (ResNet-50's 25.6 M less the 1000-way classifier)."""
    layers: list[nn.Module] = [nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(64),
                               nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1)]
    c_in = 64
    for i, (blocks, width) in enumerate(zip((3, 4, 6, 3), (64, 128, 256, 512))):
        for b in range(blocks):
            layers.append(Bottleneck(c_in, width, stride=2 if b == 0 and i > 0 else 1))
            c_in = 4 * width
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers).eval()


# ---- timing -------------------------------------------------------------------------------------------------------
@dataclass
class Entry:
    """One timed model: `make(batch)` gives the call to time."""

    name: str
    px: int
    params_m: float
    make: Callable[[int], Callable[[], object]]


def measure(entries: list[Entry], batch: int, args) -> dict[str, dict[str, float]]:
    """Interleaved timing: `args.rounds` rounds, each timing every entry for min_time / rounds seconds (at least
    one call), so a change of machine load hits every entry alike. Per entry: the median call's ms/frame and
    frames/s, and process CPU ms per frame."""
    calls = {e.name: e.make(batch) for e in entries}
    times: dict[str, list[float]] = {e.name: [] for e in entries}
    cpu: dict[str, float] = {e.name: 0.0 for e in entries}
    with torch.inference_mode():
        for call in calls.values():
            for _ in range(args.warmup):
                call()
        for _ in range(args.rounds):
            for name, call in calls.items():
                spent, c0 = 0.0, time.process_time()
                while spent < args.min_time / args.rounds or not spent:
                    t0 = time.perf_counter()
                    call()
                    times[name].append(time.perf_counter() - t0)
                    spent += times[name][-1]
                cpu[name] += time.process_time() - c0
    out = {}
    for name, t in times.items():
        median = statistics.median(t)
        out[name] = {"ms": 1000 * median / batch, "fps": batch / median, "cpu_ms": 1000 * cpu[name] / (len(t) * batch)}
    return out


def fresh_model(kind: str, encoder: str, **encoder_options) -> RewardModel:
    torch.manual_seed(0)
    enc = build_encoder(encoder, SIZE, **encoder_options)
    config_cls, head_cls = ENCODER_HEADS[kind]
    head = head_cls(enc, config_cls())  # the head's defaults, as `v2r train --head KIND` uses them
    return RewardModel(head, {"head": kind, "image_size": SIZE, "head_config": head_config_dict(head),
                              "encoder": {"name": encoder, "config": asdict(enc.config)}})


def params_m(module: nn.Module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def scorer_entry(name: str, model: RewardModel, export: str = "eager") -> Entry:
    """embed + predict of `model` (FrameScorer): eager, or TorchScript ('torchscript'), or int8 ('int8')."""
    eager = scorer_for(model)
    dim, size = int(eager.goal.shape[0]), model.image_size
    earlier = (model.context - 1,) if model.context > 1 else ()  # a temporal head reads its K-1 predecessors
    scorer: nn.Module = eager
    if export != "eager":
        example = (torch.rand(4, 3, size, size), torch.randn(dim), torch.randn(dim), torch.randn(4, *earlier, dim))
        scorer = trace(scorer_for(model, "int8" if export == "int8" else "none"), example)

    def make(batch: int):
        frames, initial, goal = torch.rand(batch, 3, size, size), torch.randn(dim), torch.randn(dim)
        previous = torch.randn(batch, *earlier, dim)
        return lambda: scorer(frames, initial, goal, previous)

    return Entry(name, size, params_m(model.head), make)


def resnet_entry() -> Entry:
    net = resnet50().to(memory_format=torch.channels_last)

    def make(batch: int):
        x = torch.rand(batch, 3, 224, 224).contiguous(memory_format=torch.channels_last)
        return lambda: net(x)

    return Entry("ResNet-50 features, channels-last (reference)", 224, params_m(net), make)


def entries(args) -> list[Entry]:
    tiny = CNN_PRESETS["tiny"]
    out = [scorer_entry(f"{encoder} {kind}", fresh_model(kind, encoder))
           for encoder in ("cnn", "vit") for kind in ENCODER_HEADS]
    out.append(scorer_entry("cnn progress, NCHW", fresh_model("progress", "cnn", channels_last=False)))
    out.append(scorer_entry("efficientnet-lite0 progress (ImageNet)", fresh_model("progress", "efficientnet-lite0")))
    members = [fresh_model("progress", "cnn") for _ in range(3)]
    ensemble = RewardModel(HeadEnsemble([m.head for m in members]), {**members[0].config, "ensemble": 3})
    out.append(scorer_entry("cnn progress, --ensemble 3", ensemble))
    out.append(scorer_entry("tiny progress (distill student, NCHW)", fresh_model("progress", "cnn", **tiny)))
    out.append(scorer_entry("tiny progress, channels-last", fresh_model("progress", "cnn",
                                                                          **{**tiny, "channels_last": True})))
    exported = [("tiny progress", fresh_model("progress", "cnn", **tiny)),
                ("cnn progress", fresh_model("progress", "cnn")), ("vit progress", fresh_model("progress", "vit"))]
    if args.student:  # a model folder, e.g. from `v2r distill`
        student = RewardModel.load(args.student)
        label = f"{args.student} ({student.config['head']})"
        out.append(scorer_entry(label, student))
        exported.insert(0, (label, student))
    for label, model in exported:
        out.append(scorer_entry(f"{label}, TorchScript", model, "torchscript"))
        out.append(scorer_entry(f"{label}, TorchScript int8", model, "int8"))
    out.append(resnet_entry())
    return out


HEADER = ("model", "px", "params M", "b1 ms/frame", "b1 frames/s", "b64 ms/frame", "b64 frames/s",
          "b64 CPU ms/frame")


def format_row(row: dict) -> str:
    cells = [row["model"], str(row["px"]), f"{row['params_m']:.2f}", f"{row['b1_ms']:.3f}", f"{row['b1_fps']:.0f}",
             f"{row['b64_ms']:.3f}", f"{row['b64_fps']:.0f}", f"{row['b64_cpu_ms']:.3f}"]
    return "| " + " | ".join(cells) + " |"


# ---- memory while streaming ---------------------------------------------------------------------------------------
def synthetic_frames(n: int, width: int = 128, height: int = 96):
    """A square crossing a 4:3 frame (letterboxed to square by scoring), one frame at a time."""
    background = np.zeros((height, width, 3), np.uint8)
    background[:] = (30, 30, 60)
    for t in range(n):
        frame = background.copy()
        x = int((width - 16) * t / max(n - 1, 1))
        frame[40:56, x : x + 16] = 255
        yield frame


def memory_mb(field: str) -> float:
    """VmHWM (peak) or VmRSS (now) of this process in MB, from /proc: per address space, so unlike
    getrusage's ru_maxrss it does not carry over the parent's peak through fork + exec."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux: the lifetime peak


def rss_worker(kind: str, video: str, threads: int) -> None:
    """Run in a fresh process: stream `video` through `model.score` (kind 'cnn' or 'tiny': a progress model) or
    through the decoder alone (kind 'decode'); print frames, seconds, CPU seconds and peak RSS as JSON."""
    if threads > 0:
        torch.set_num_threads(threads)
    model = None
    if kind != "decode":
        model = fresh_model("progress", "cnn", **(CNN_PRESETS["tiny"] if kind == "tiny" else {}))
        model.score(np.zeros((2, SIZE, SIZE, 3), np.uint8))  # warm up: allocator and kernels before the clock
    before = memory_mb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    if model is None:
        frames = sum(len(chunk) for chunk in iter_frames(video, SIZE, chunk=256))
    else:
        frames = len(model.score(video))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"frames": frames, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": memory_mb("VmHWM"),
                      "rss_before_mb": before}))


def rss_rows(args, work: Path) -> list[dict]:
    lengths = (10, 60) if args.quick else (60, 600)  # seconds of 30 fps video
    rows = []
    for seconds in lengths:
        video = work / f"synthetic_{seconds}s.mp4"
        t0 = time.perf_counter()
        n = 30 * seconds
        write_video(video, synthetic_frames(n), fps=30)
        print(f"(wrote {video.name}: {n} frames of 128x96 in {time.perf_counter() - t0:.1f} s)", flush=True)
        for kind in ("cnn", "tiny", "decode"):
            out = subprocess.run([sys.executable, __file__, "--rss-worker", kind, str(video), "--threads",
                                  str(args.threads)], capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            name = "decoding only" if kind == "decode" else f"{kind} progress, model.score"
            rows.append({"model": name, "video_s": seconds, **result})
            print(f"| {name} | {seconds / 60:.1f} min ({result['frames']} frames) | {result['peak_rss_mb']:.0f} MB | "
                  f"{result['rss_before_mb']:.0f} MB | {result['frames'] / result['seconds']:.0f} | "
                  f"{1000 * result['cpu_seconds'] / result['frames']:.3f} |", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: short timings and videos")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--min-time", type=float, default=None, help="seconds per timing (default 1, quick 0.05)")
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls per timing (default 3, quick 1)")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (default 5, quick 1)")
    parser.add_argument("--student", help="also time this model folder (e.g. from `v2r distill`)")
    parser.add_argument("--out", help="also write the rows as JSON here")
    parser.add_argument("--only-e2e", action="store_true",
                        help="only the end-to-end table: default and student, model only and end to end, 1 and 2 "
                             "threads, fp32 and auto precision, ResNet-50 in the same run")
    parser.add_argument("--e2e-frames", type=int, default=None,
                        help="frames of the end-to-end video (default 6000, quick 1200)")
    parser.add_argument("--e2e-rounds", type=int, default=None,
                        help="end-to-end runs per configuration, the median is kept (default 3, quick 1)")
    parser.add_argument("--resnet-frames", type=int, default=96,
                        help="frames ResNet-50 scores per run (it is ~100x slower; default 96)")
    parser.add_argument("--rss-worker", nargs=2, metavar=("MODEL", "VIDEO"), help=argparse.SUPPRESS)
    parser.add_argument("--e2e-worker", nargs=3, metavar=("KIND", "PRECISION", "VIDEO"), help=argparse.SUPPRESS)
    add_write_option(parser)
    args = parser.parse_args()
    if args.rss_worker:
        rss_worker(args.rss_worker[0], args.rss_worker[1], args.threads)
        return
    args.e2e_frames = args.e2e_frames or (1200 if args.quick else 6000)
    args.e2e_rounds = args.e2e_rounds or (1 if args.quick else 3)
    if args.e2e_worker:
        warnings.simplefilter("ignore")
        print(json.dumps(e2e_worker(*args.e2e_worker, args.threads or 2, args.e2e_rounds, args.resnet_frames)))
        return
    args.min_time = args.min_time if args.min_time is not None else (0.05 if args.quick else 1.0)
    args.warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    args.rounds = args.rounds if args.rounds is not None else (1 if args.quick else 5)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # deprecation notices of torch.jit / torch.ao
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} torch thread(s); load average before: {load[0]:.2f}")
    rows: list[dict] = []
    memory: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="v2r-speed-") as work:
        print("\n### End to end (160x120 video)")
        end_to_end = e2e_rows(args, Path(work))
        if not args.only_e2e:
            rows = timing_rows(args)
            print()
            print("| streaming (64 px) | video | peak RSS | RSS before | frames/s | CPU ms/frame (all threads) |")
            print("|---|---|---|---|---|---|")
            memory = rss_rows(args, Path(work))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps({"threads": torch.get_num_threads(), "load": load, "speed": rows,
                                              "memory": memory, "end_to_end": end_to_end}, indent=2))
    if args.write:
        sections = ["### End to end: decode + model + JSONL, a 160x120 video", "",
                    f"Median of {args.e2e_rounds} run(s) per row, each configuration in a fresh "
                    f"process; load average before {load[0]:.2f}.", "", *e2e_table(end_to_end)]
        if rows:
            speed = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER), *map(format_row, rows)]
            settings = (f"Timings: {args.rounds} interleaved round(s), {args.warmup} warm-up call(s), at least "
                        f"{args.min_time} s per timing.")
            sections += ["", "### Embed + predict per frame", "", settings, "", *speed]
        if memory:
            streaming = ["| streaming (64 px) | video | peak RSS | RSS before | frames/s | CPU ms/frame (all threads) |",
                         "|---|---|---|---|---|---|"]
            streaming += [f"| {r['model']} | {r['video_s'] / 60:.1f} min ({r['frames']} frames) | "
                          f"{r['peak_rss_mb']:.0f} MB | {r['rss_before_mb']:.0f} MB | {r['frames'] / r['seconds']:.0f} "
                          f"| {1000 * r['cpu_seconds'] / r['frames']:.3f} |" for r in memory]
            sections += ["", "### Memory while streaming a video", "", *streaming]
        write_results_page(args.write, "Scoring speed and memory", "\n".join(sections),
                           seeds="0 (`torch.manual_seed(0)` before each fresh model; speed does not depend on the "
                                 "weights; the video's texture from numpy seed 0)",
                           intro=SPEED_INTRO, notes=SPEED_NOTES)


def timing_rows(args) -> list[dict]:
    """The per-model embed + predict table at batch 1 and 64 (printed as it goes)."""
    todo = entries(args)
    results = {batch: measure(todo, batch, args) for batch in (1, 64)}
    rows = []
    print("\n### Embed + predict per frame")
    print("| " + " | ".join(HEADER) + " |")
    print("|" + "---|" * len(HEADER))
    for e in todo:
        row = {"model": e.name, "px": e.px, "params_m": round(e.params_m, 3)}
        for batch, result in results.items():
            row.update({f"b{batch}_{k}": v for k, v in result[e.name].items()})
        print(format_row(row), flush=True)
        rows.append(row)
    return rows


SPEED_INTRO = """\
How fast a reward model scores frames, and how much memory scoring a long video takes. The models are freshly
initialised (speed does not depend on the weights), on 64 px frames unless named."""

SPEED_NOTES = """\
- **End to end** is what `v2r score MODEL VIDEO --out X.jsonl` does after loading the model: decode (in a thread
  ahead of the model), fit frames to 64 px, embed, predict with the streaming context, write JSONL. **Model only**
  is the same without decoding (frames decoded beforehand). **auto** is `--precision auto`, the default: bf16 on a
  CPU with AVX-512 BF16 / AMX instructions (what it picked is in brackets), else fp32. The ResNet-50 decodes at
  224 px and runs in batches of 16; **x ResNet-50** divides by its fp32 end-to-end rate at the same thread count.
- **b1** / **b64**: batches of 1 and 64 frames; ms/frame is the median call time divided by the batch.
  **CPU ms/frame** is process CPU time per frame: on a loaded machine with one thread it stays near the idle
  figure while wall time grows.
- **tiny**: the `v2r distill --student tiny` encoder; **TorchScript** and **int8** are `v2r export` (with
  `--quantize int8`). The ResNet-50 at 224 px is there for scale.
- **Streaming**: the peak resident memory of a fresh process scoring a synthetic 128x96 30 fps video with
  `model.score`; flat memory in video length means the peaks of the short and the long video are about equal.
  "decoding only" is the decoder alone, which bounds end-to-end speed once the model is small."""


if __name__ == "__main__":
    main()
