"""Peak memory of `v2r score` on a long video: a 20-minute 640x480 30 fps video (36,000 frames) scored end to
end by the command itself, in a fresh process, with a model of `v2r train`'s default architecture (progress head,
default CNN, 64 px frames). The goal: under 1.5 GB, and flat in video length.

    python bench/memory.py                       # ~10 min on 2 loaded cores the first time, then the video is cached
    python bench/memory.py --minutes 1 20        # 1 and 20 minutes: compare the peaks for flatness
    python bench/memory.py --cache /data/bench   # where the generated video and model live (default: /tmp/v2r-bench)
    python bench/memory.py --dataset 50          # a LeRobotDataset v3 of 50 episodes (10 s each, several per mp4)
    python bench/memory.py --dataset 10          # ... and of 10: compare the peaks for flatness in dataset size
    python bench/memory.py --train-args "--head temporal --temporal-sequence infini --temporal-context 64"
                                                 # another architecture (its own cached model)

Measured: the peak resident set of the `v2r score` process (ru_maxrss from os.wait4 on that one process), and its
resident size sampled from /proc every 0.25 s while it runs (first sample, and min / max after the first 10 %
of the run). The video is written by a separate process, so this script's own memory stays small (a child's
ru_maxrss starts from its parent's peak at fork + exec). Weights do not change memory or speed, so the model
is trained for 2 steps only (`--pretrain none`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

from results_page import add_write_option, write_results_page

WIDTH, HEIGHT, FPS = 640, 480, 30


def write_long_video(path: Path, frames: int) -> None:
    """Stream `frames` frames of a square crossing a gradient, encoded one at a time (never held in memory)."""
    import numpy as np

    from video2reward.video.io import write_video

    background = np.zeros((HEIGHT, WIDTH, 3), np.uint8)
    background[..., 0] = np.linspace(20, 120, WIDTH, dtype=np.uint8)[None, :]
    background[..., 2] = 60

    def generate():
        for t in range(frames):
            frame = background.copy()
            x = int((WIDTH - 80) * (t % 900) / 899)  # crosses the frame every 30 s
            frame[200:280, x : x + 80] = 255
            frame[:8, : (t % WIDTH)] = 200  # a growing bar: no two neighbouring frames are identical
            yield frame

    tmp = path.with_name(path.name + ".part.mp4")
    write_video(tmp, generate(), fps=FPS)
    os.replace(tmp, path)  # a cached video is always a whole one


def write_dataset_of(path: Path, episodes: int, frames: int) -> None:
    """A LeRobotDataset v3.0 of `episodes` episodes of `frames` frames each (one camera), joined into mp4s of at
    most 100 MB as LeRobot does, the episode files written one at a time and removed after."""
    import shutil

    from video2reward.video.lerobot_write import EpisodeRecord, write_dataset

    parts = path.with_name(path.name + ".episodes")
    records = []
    for k in range(episodes):
        mp4 = parts / f"ep_{k:04d}.mp4"
        if not mp4.exists():
            write_long_video(mp4, frames)
        records.append(EpisodeRecord({"observation.images.front": mp4}, frames, "cross the frame"))
    write_dataset(path, records, FPS, video_file_mb=100)
    shutil.rmtree(parts)


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def run(cmd: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{done.stderr}")


def measure_score(cmd: list[str], env: dict[str, str], log: Path) -> dict:
    """Run `cmd`, sampling its resident size; its peak comes from os.wait4 on that one process."""
    t0 = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        samples: list[tuple[float, float]] = []
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            rss = rss_mb(proc.pid)
            if rss is not None:
                samples.append((time.perf_counter() - t0, rss))
            time.sleep(0.25)
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait for it again
    seconds = time.perf_counter() - t0
    printed = log.read_text(encoding="utf-8").strip()
    if proc.returncode != 0:
        sys.exit(f"v2r score failed:\n{printed}")
    later = [rss for t, rss in samples if t > 0.1 * seconds] or [rss for _, rss in samples]
    return {"seconds": seconds, "peak_mb": usage.ru_maxrss / 1024, "samples": len(samples),
            "steady_min_mb": min(later), "steady_max_mb": max(later), "stdout": printed}


def ensure_model(cache: Path, train_args: str, threads: int, env: dict[str, str]) -> Path:
    """The scored model: `v2r train`'s architecture (plus `train_args`), trained 2 steps (weights do not matter)."""
    extra = shlex.split(train_args)
    arch = "_".join(a.lstrip("-") for a in extra) or "default_arch"
    model = cache / f"model_{re.sub(r'[^A-Za-z0-9_.+-]', '-', arch)}"
    if not (model / "model.safetensors").exists():
        train = cache / "train"
        for k in range(2):
            if not (train / f"demo_{k}.mp4").exists():
                run([sys.executable, __file__, "--write-video", str(train / f"demo_{k}.mp4"), str(60 + 10 * k)], env)
        run([sys.executable, "-m", "video2reward.cli", "train", str(train), "--out", str(model), "--pretrain", "none",
             "--steps", "2", "--warmup-steps", "1", "--threads", str(threads), "--quiet", *extra], env)
    return model


def measure_one(cache: Path, model: Path, minutes: float, dataset: int | None, env: dict[str, str]) -> dict:
    """Write (or reuse) the video or dataset, score it with `v2r score` in a fresh process, check every frame got a
    reward; the measurement plus what the table row needs."""
    frames = int(round(minutes * 60 * FPS))
    video = cache / f"long_{frames}f_{WIDTH}x{HEIGHT}_{FPS}fps.mp4"
    if dataset:
        frames = dataset * 10 * FPS
        video = cache / f"lerobot_{dataset}ep_{WIDTH}x{HEIGHT}_{FPS}fps"
        if not (video / "meta" / "info.json").exists():
            t0 = time.perf_counter()
            run([sys.executable, __file__, "--write-dataset", str(video), str(dataset), str(10 * FPS)], env)
            print(f"(wrote {video}: {dataset} episodes, {frames} frames, in {time.perf_counter() - t0:.0f} s)",
                  flush=True)
    elif not video.exists():
        t0 = time.perf_counter()
        run([sys.executable, __file__, "--write-video", str(video), str(frames)], env)
        print(f"(wrote {video}: {frames} frames, {video.stat().st_size / 2**20:.0f} MB, in "
              f"{time.perf_counter() - t0:.0f} s)", flush=True)
    out = cache / ("progress.parquet" if dataset else "rewards.jsonl")
    cmd = [sys.executable, "-m", "video2reward.cli", "score", str(model), str(video), "--out", str(out), "--quiet"]
    result = measure_score(cmd, env, cache / "score.log")
    if dataset:
        import pyarrow.parquet as pq

        rewards = pq.read_metadata(out).num_rows
    else:
        with open(out, encoding="utf-8") as f:
            rewards = len(json.loads(f.readline())["rewards"])
    assert rewards == frames, f"{rewards} rewards for {frames} frames"
    what = f"LeRobotDataset, {dataset} episodes of 10 s" if dataset else f"{minutes:g} min"
    return {**result, "cmd": cmd, "frames": frames, "what": f"{what} {WIDTH}x{HEIGHT} {FPS} fps"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, nargs="+", default=[20.0],
                        help="video length(s), one row each (default 20; e.g. 1 20 to compare for flatness)")
    parser.add_argument("--cache", default="/tmp/v2r-bench", help="folder for the video and the model")
    parser.add_argument("--threads", type=int, default=1, help="OMP/torch threads of the scoring process")
    parser.add_argument("--dataset", type=int, metavar="EPISODES", help="instead of one long video: a "
                        "LeRobotDataset v3 of this many 10-second episodes, scored to a progress parquet")
    parser.add_argument("--train-args", default="", help="extra `v2r train` options of the scored model's "
                        "architecture, e.g. \"--head temporal --temporal-context 64\" (default: v2r train's)")
    add_write_option(parser)
    parser.add_argument("--write-video", nargs=2, metavar=("PATH", "FRAMES"), help=argparse.SUPPRESS)
    parser.add_argument("--write-dataset", nargs=3, metavar=("PATH", "EPISODES", "FRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.write_video:
        write_long_video(Path(args.write_video[0]), int(args.write_video[1]))
        return
    if args.write_dataset:
        write_dataset_of(Path(args.write_dataset[0]), int(args.write_dataset[1]), int(args.write_dataset[2]))
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    model = ensure_model(cache, args.train_args, args.threads, env)
    results = [measure_one(cache, model, m, args.dataset, env) for m in ([None] if args.dataset else args.minutes)]
    own_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cmd = results[0]["cmd"]
    shown = (f"$ OMP_NUM_THREADS={args.threads} {' '.join(cmd[2:5]).replace('video2reward.cli', 'v2r')} VIDEO "
             f"--out ... --quiet    # model: v2r train ... --pretrain none --steps 2 {args.train_args}").rstrip()
    print(shown)
    lines = ["| video | frames | v2r score wall time | frames/s | peak RSS | RSS after 10 % of the run (min-max) |",
             "|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['what']} | {r['frames']:,} | {r['seconds']:.0f} s | {r['frames'] / r['seconds']:,.0f} | "
                     f"{r['peak_mb']:,.0f} MB | {r['steady_min_mb']:,.0f}-{r['steady_max_mb']:,.0f} MB |")
    print("\n".join(lines))
    print(f"(this script's own peak: {own_kb / 1024:.0f} MB; goal: under 1,536 MB and flat in video length)")
    if args.write:
        arch = args.train_args or "v2r train's default architecture"
        write_results_page(args.write, "Memory over long videos", "\n".join(lines), seeds="none (weights do not "
                           "change memory: the model is trained 2 steps)",
                           intro=f"Peak memory of `v2r score` on long synthetic videos, each scored end to end in a "
                                 f"fresh process, with a model of this architecture: `{arch}`. The scorer keeps the "
                                 f"last K-1 frames' features of a temporal head, never the video, so the peak "
                                 f"should not grow with the video's length.")


if __name__ == "__main__":
    main()
