"""End-to-end scoring speed: frames/s of the default model (`v2r train`'s progress+rank head on the CNN) and of
the `tiny` distillation student, model only and end to end (decode + model + JSONL out, as `v2r score` runs),
at 1 and 2 torch threads, in float32 and in what `--precision auto` picks on this machine, next to a ResNet-50
at 224 px (the VIP / R3M / LIV backbone) scoring the same video in the same run.

Each configuration runs in a fresh process (so the thread count and the allocator start clean) on a synthetic
160x120 30 fps H.264 video (a textured scene with a moving arm; a flat synthetic picture decodes unrealistically
fast). Each timing is the median of `--e2e-rounds` runs. Part of `python bench/speed.py`; alone:

    python bench/speed.py --only-e2e                     # ~4 min on 2 cores
    python bench/speed.py --only-e2e --quick             # smoke run
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from video2reward.encoders.cnn import CNN_PRESETS, CNNConfig
from video2reward.inference.model import RewardModel
from video2reward.inference.parallel import embedded
from video2reward.inference.scorer import SCORE_BATCH, frames_to_tensor
from video2reward.inference.scoring import score_to_jsonl
from video2reward.rewards.registry import build_head
from video2reward.video.io import iter_frames, write_video

SIZE = 64  # the model's input side: `v2r train`'s default
RESNET_BATCH = 16


def scene_frames(n: int, width: int = 160, height: int = 120, seed: int = 0):
    """A fixed smooth random texture (a table and a wall) with a two-segment arm sweeping across it."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, (height // 8 + 1, width // 8 + 1, 3)).astype(np.float32)
    texture = np.kron(coarse, np.ones((8, 8, 1), np.float32))[:height, :width]
    texture += rng.normal(0, 6, texture.shape)
    background = texture.clip(0, 255).astype(np.uint8)
    ys, xs = np.mgrid[0:height, 0:width]
    for t in range(n):
        phase = t / max(n - 1, 1)
        frame = background.copy()
        ex, ey = width * (0.2 + 0.6 * phase), height * (0.3 + 0.3 * np.sin(6.28 * 4 * phase))
        for (x0, y0), (x1, y1) in (((width / 2, height - 5), (ex, ey)), ((ex, ey), (ex + 12, ey + 8))):
            d = np.abs((y1 - y0) * xs - (x1 - x0) * ys + x1 * y0 - y1 * x0) / max(np.hypot(x1 - x0, y1 - y0), 1)
            inside = (xs >= min(x0, x1) - 4) & (xs <= max(x0, x1) + 4) & (d < 4)
            frame[inside] = (230, 120, 40)
        yield frame


def fresh_model(kind: str, precision: str) -> RewardModel:
    """`v2r train`'s default head ('default': progress + rank, each on the default CNN) or the distill student
    ('student': a progress head on the tiny CNN), freshly initialised (speed does not depend on the weights)."""
    torch.manual_seed(0)
    encoder = CNNConfig(image_size=SIZE, **(CNN_PRESETS["tiny"] if kind == "student" else {}))
    config = {"head": "progress+rank" if kind == "default" else "progress", "image_size": SIZE,
              "encoder": {"name": "cnn", "config": asdict(encoder)}}
    if kind == "default":
        config["members"] = [{"head": "progress"}, {"head": "rank"}]
    return RewardModel(build_head(config), config, precision=precision)


def median_rate(frames: int, run, rounds: int) -> tuple[float, float]:
    """Median frames/s and median process-CPU ms/frame of `rounds` calls of `run` (after one warm-up call)."""
    run()
    rates, cpu = [], []
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        run()
        rates.append(frames / (time.perf_counter() - t0))
        cpu.append(1000 * (time.process_time() - c0) / frames)
    return statistics.median(rates), statistics.median(cpu)


def e2e_worker(kind: str, precision: str, video: str, threads: int, rounds: int, resnet_frames: int) -> dict:
    """In a fresh process: model-only and end-to-end frames/s of one configuration."""
    torch.set_num_threads(threads)
    if kind == "resnet50":
        return resnet_worker(precision, video, rounds, resnet_frames)
    model = fresh_model(kind, precision)
    frames = np.concatenate(list(iter_frames(video, SIZE, chunk=SCORE_BATCH, fit=model.frame_fit)))

    def model_only() -> None:  # everything but decoding, as scoring runs it: embed (chunks on threads), read
        scorer = model.scorer()
        chunks = (frames[i : i + SCORE_BATCH] for i in range(0, len(frames), SCORE_BATCH))
        for chunk, features in embedded(model, chunks, lambda chunk: chunk):
            scorer.score(chunk, features)

    with tempfile.TemporaryDirectory() as work:
        def end_to_end() -> None:  # what `v2r score MODEL VIDEO --out X.jsonl` runs after loading the model
            score_to_jsonl(model, [video], Path(work) / "rewards.jsonl", progress=False)

        model_fps, _ = median_rate(len(frames), model_only, rounds)
        e2e_fps, e2e_cpu = median_rate(len(frames), end_to_end, rounds)
    dtype = "bf16" if model.amp_dtype == torch.bfloat16 else "fp32"
    return {"model_fps": model_fps, "e2e_fps": e2e_fps, "e2e_cpu_ms": e2e_cpu, "dtype": dtype, "frames": len(frames)}


def resnet_worker(precision: str, video: str, rounds: int, limit: int) -> dict:
    """ResNet-50 features of the video's first `limit` frames at 224 px (decoded at 224, batches of 16)."""
    from speed import resnet50  # here, not at the top: speed.py imports this module

    net = resnet50().to(memory_format=torch.channels_last)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    net = net.to(dtype)

    def forward(frames: np.ndarray) -> None:
        x = frames_to_tensor(frames, torch.device("cpu")).to(dtype).contiguous(memory_format=torch.channels_last)
        net(x)

    def decoded():
        seen = 0
        for chunk in iter_frames(video, 224, chunk=RESNET_BATCH, fit="pad"):
            yield chunk[: limit - seen]
            seen += len(chunk)
            if seen >= limit:
                return

    frames = np.concatenate(list(decoded()))
    with torch.inference_mode():
        model_fps, _ = median_rate(len(frames), lambda: [forward(frames[i : i + RESNET_BATCH])
                                                         for i in range(0, len(frames), RESNET_BATCH)], rounds)
        e2e_fps, e2e_cpu = median_rate(len(frames), lambda: [forward(c) for c in decoded()], rounds)
    return {"model_fps": model_fps, "e2e_fps": e2e_fps, "e2e_cpu_ms": e2e_cpu,
            "dtype": "bf16" if dtype == torch.bfloat16 else "fp32", "frames": len(frames)}


CONFIGS = (("default", "fp32"), ("default", "auto"), ("student", "fp32"), ("student", "auto"),
           ("resnet50", "fp32"), ("resnet50", "bf16"))
HEADER = ("model", "threads", "precision", "model only frames/s", "end to end frames/s", "CPU ms/frame",
          "x ResNet-50 (end to end, fp32)")


def e2e_rows(args, work: Path) -> list[dict]:
    """Write the video, run every configuration in its own process, print and return the rows."""
    n = args.e2e_frames
    video = work / "scene_160x120.mp4"
    t0 = time.perf_counter()
    write_video(video, scene_frames(n), fps=30)
    print(f"(wrote {video.name}: {n} frames of 160x120 in {time.perf_counter() - t0:.1f} s, "
          f"{video.stat().st_size / 1e6:.1f} MB)", flush=True)
    rounds = args.e2e_rounds
    resnet_frames = 32 if args.quick else args.resnet_frames
    rows: list[dict] = []
    print("| " + " | ".join(HEADER) + " |\n|" + "---|" * len(HEADER), flush=True)
    for threads in (1, 2):
        reference = None
        for kind, precision in sorted(CONFIGS, key=lambda c: c[0] != "resnet50"):  # ResNet-50 first: the ratio
            command = [sys.executable, os.path.join(os.path.dirname(__file__), "speed.py"), "--e2e-worker", kind,
                       precision, str(video), "--threads", str(threads), "--e2e-rounds", str(rounds),
                       "--resnet-frames", str(resnet_frames)]
            out = subprocess.run(command, capture_output=True, text=True)
            if out.returncode != 0:
                raise SystemExit(f"{kind} {precision} at {threads} thread(s) failed:\n{out.stderr[-2000:]}")
            result = json.loads(out.stdout.strip().splitlines()[-1])
            if kind == "resnet50" and precision == "fp32":
                reference = result["e2e_fps"]
            row = {"model": kind, "threads": threads, "precision": f"{precision} ({result['dtype']})", **result,
                   "vs_resnet": result["e2e_fps"] / reference if reference else float("nan")}
            rows.append(row)
            print(format_e2e_row(row), flush=True)
    return rows


NAMES = {"default": "default (progress+rank, CNN, 64 px)", "student": "tiny student (distill, 64 px)",
         "resnet50": "ResNet-50, 224 px (reference)"}


def format_e2e_row(row: dict) -> str:
    cells = [NAMES[row["model"]], str(row["threads"]), row["precision"], f"{row['model_fps']:,.0f}",
             f"{row['e2e_fps']:,.0f}", f"{row['e2e_cpu_ms']:.3f}", f"{row['vs_resnet']:,.0f}x"]
    return "| " + " | ".join(cells) + " |"


def e2e_table(rows: list[dict]) -> list[str]:
    return ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER), *map(format_e2e_row, rows)]
