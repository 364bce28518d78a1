"""The pictures of the documentation (docs/images/), made by the commands they show, never by hand.

Writes tiny synthetic data (a square crossing the frame: experts go all the way, failures stall early, near
misses stop at 70%, with a labels.json whose dense signal is the square's position), trains a small reward model
on it with `v2r train`, then runs `v2r eval --plot`, `v2r score --plot` and `v2r report` and copies what they
write to OUT:

    eval.png                          v2r eval --plot: every test video over normalised time, near misses included
    reward_expert.png, reward_failed.png   v2r score --plot: one expert and one failed video, on the same axis
    report_top.png, report_videos.png      v2r report, rendered by headless Chromium (when `chromium` or
                                           `google-chrome` is on PATH; apt-get install chromium), driven as
                                           the tests drive it (video2reward/testing/browser.py): the page's top
                                           (evaluation table, overview chart), then its first expert, failed
                                           and near-miss video, each seeked to 60% of its length

    python bench/screenshots.py --out docs/images/        # ~20 s on one core

The PNGs are re-quantised to 256 colours (they stay legible and a fraction of the size).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from video2reward.cli import main as v2r
from video2reward.testing.browser import CANDIDATES, Browser, file_url, find_chromium
from video2reward.testing.synthetic import moving_square
from video2reward.video.io import write_video

SIZE, FPS = 128, 10
TRAIN = ["--pretrain", "none", "--image-size", "32", "--batch-size", "64", "--frames-per-video", "8",
         "--warmup-steps", "20", "--threads", "1", "--quiet"]


def stalled(t: int, y: int, stop: float, moving: float) -> np.ndarray:
    """t frames: the square moves to `stop` of the way over the first `moving` of the video, then stays."""
    k = max(2, round(t * moving))
    frames = moving_square(k, SIZE, y=y, stop=stop)
    return np.concatenate([frames, np.repeat(frames[-1:], t - k, axis=0)])


def write_data(root: Path, seed: int) -> Path:
    """root/squares/{train,test_expert,test_fail,test_partial}/*.mp4 and labels.json (dense = the square's x)."""
    rng = np.random.default_rng(seed)
    task = root / "squares"
    labels = {}
    side = SIZE // 4

    def put(split: str, i: int, frames: np.ndarray, success: bool) -> None:
        name = f"{split}/ep_{i}.mp4"
        write_video(task / name, frames, fps=FPS)
        white = (frames[..., 0] > 200) & (frames[..., 2] > 200)  # the square's columns, frame by frame
        x = [float(np.flatnonzero(f.any(axis=0))[0]) / (SIZE - side) if f.any() else 0.0 for f in white]
        labels[name] = {"split": split, "success": success, "dense": x, "num_frames": len(frames)}

    def height() -> int:
        return int(rng.integers(4, SIZE - side - 4))

    for i in range(8):
        put("train", i, moving_square(30 + 2 * i, SIZE, y=height()), True)
    for i in range(3):
        put("test_expert", i, moving_square(32 + 3 * i, SIZE, y=height()), True)
        put("test_fail", i, stalled(34, height(), stop=0.12 + 0.08 * i, moving=0.5), False)
    for i in range(2):
        put("test_partial", i, stalled(34, height(), stop=0.7, moving=0.6 + 0.1 * i), False)
    (task / "labels.json").write_text(json.dumps({"task": "squares", "dense_signal": "x position",
                                                  "videos": {k: v for k, v in labels.items()
                                                             if not k.startswith("train/")}}))
    return task


def run(*args: str) -> None:
    print("$ v2r " + " ".join(args), flush=True)
    if v2r(list(args)) != 0:
        raise SystemExit(f"v2r {args[0]} failed")


# Each video seeked to 60% of its length, so the pictures show a frame mid-task and the cursor mid-curve.
SEEK = """(async () => {
  for (const video of document.querySelectorAll(".card video")) {
    if (video.readyState < 2) await new Promise(r => video.addEventListener("loadeddata", r, {once: true}));
    video.currentTime = 0.6 * video.duration;
    await new Promise(r => video.addEventListener("seeked", r, {once: true}));
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
})()"""
# (top, bottom) in page pixels of: the page's top down to the overview's caption; the heading of the videos down
# to the first card; and the first card of each group (expert, failed, near miss)
REGIONS = """(() => {
  const box = e => { const r = e.getBoundingClientRect(); return [r.top + scrollY, r.bottom + scrollY]; };
  const cards = [...document.querySelectorAll(".card")];
  const first = group => cards.find(c => c.querySelector(".tag").textContent.startsWith(group));
  return {top: [0, box(document.getElementById("overview-caption"))[1] + 8],
          heading: [box(document.getElementById("videos"))[0] - 8, box(cards[0])[0] - 4],
          cards: ["expert", "failed", "near miss"].map(first).filter(Boolean).map(c => box(c)),
          right: Math.max(...[...document.querySelectorAll(".card, #overview, #eval-table, .legend span, h1, .sub")]
                               .map(e => e.getBoundingClientRect().right)) + 24};
})()"""


def capture(browser, top: float, bottom: float, width: int) -> Image.Image:
    """The page from `top` to `bottom` (page pixels, any part of it, in view or not) as an image."""
    shot = browser.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True, "clip": {
        "x": 0, "y": top, "width": width, "height": bottom - top, "scale": 1}})
    return Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")


def report_screenshots(page: Path, out: Path, width: int = 1240) -> None:
    """report_top.png (evaluation table and overview chart) and report_videos.png (the first expert, failed and
    near-miss video of the page, one under the other) of the report `page`, rendered by headless Chromium."""
    with Browser() as browser:
        browser.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": 900, "deviceScaleFactor": 1,
                                                             "mobile": False})
        browser.open(file_url(page))
        browser.evaluate(SEEK)
        regions = browser.evaluate(REGIONS)
        right = min(width, round(regions["right"]))  # the page's content, not the window's empty right part
        save(capture(browser, *regions["top"], right), out / "report_top.png")
        parts = [capture(browser, *regions["heading"], right)]
        parts += [capture(browser, top - 4, bottom + 4, right) for top, bottom in regions["cards"]]
        if browser.errors:
            raise SystemExit(f"the report logged errors in Chromium: {browser.errors}")
    stacked = Image.new("RGB", (right, sum(p.height for p in parts)), (250, 250, 250))
    y = 0
    for part in parts:
        stacked.paste(part, (0, y))
        y += part.height
    save(stacked, out / "report_videos.png")


def save(image: Image.Image, out: Path) -> None:
    """A copy quantised to 256 colours: the docs' pictures, small."""
    image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    print(f"wrote {out} ({out.stat().st_size // 1024} kB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("docs/images"), help="folder for the PNGs")
    parser.add_argument("--steps", type=int, default=300, help="training steps of the small model (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, help="keep the data, model, plots and report here (default: a "
                        "temporary folder, removed at the end)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="v2r-screenshots-") as tmp:
        work = (args.work or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        with contextlib.chdir(work):  # relative paths: the plots' titles and the commands read as a user's
            data = write_data(Path("data"), args.seed)
            model = Path("models") / "squares"
            run("train", str(data / "train"), "--out", str(model), "--steps", str(args.steps),
                "--seed", str(args.seed), *TRAIN)
            run("eval", str(model), str(data), "--plot", "eval.png", "--quiet")
            run("score", str(model), str(data / "test_expert" / "ep_0.mp4"), str(data / "test_fail" / "ep_0.mp4"),
                "--out", "rewards.jsonl", "--plot", "plots", "--quiet")
            run("report", str(model), *(str(data / s) for s in ("test_expert", "test_fail", "test_partial")),
                "--out", "report", "--quiet")
        with Image.open(work / "eval.png") as image:
            save(image, out / "eval.png")
        for group, split in (("expert", "test_expert"), ("failed", "test_fail")):
            (plot,) = (work / "plots").glob(f"*{split}__ep_0.png")
            with Image.open(plot) as image:
                save(image, out / f"reward_{group}.png")
        if find_chromium() is None:
            print(f"no Chromium on PATH ({', '.join(CANDIDATES)}): the report's screenshots were not made; "
                  f"apt-get install chromium, then run this again")
        else:
            report_screenshots(work / "report" / "index.html", out)
    print(f"done in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
