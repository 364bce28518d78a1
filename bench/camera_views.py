"""VOC per view of a task's test_cam/ split (other cameras): which camera moves a reward survives, and which not.

    python bench/camera_views.py DATA/TASK MODEL [MODEL ...] [--references] [--markdown]

DATA/TASK is a task folder of `v2r demo-data` (with test_cam/); each MODEL a folder of `v2r train`. For each model,
these readings of the test_cam/ videos, VOC of the expert videos per view (labels.json "view") and over all of
them, and the success AUROC of expert vs failed videos from all the other views (mean of the last 5 frames):

* `reward`: the model's reward as `v2r score` gives it (goal: the demonstrations' last frames, training camera);
* `reward, view goal`: the same with the view's goal image (`v2r score --goal`; goal-reading heads only);
* `relative, F R`: relative goal progress to the view's goal image, no head (`v2r score --goal IMAGE --relative
  --relative-features F --relative-reading R`, relative_reward.py), for F in map (the encoder's last feature
  map, flattened; encoders that have one) and pooled (the head's input vector), R in projection and distance.
  `relative, map projection` is what `--relative` does by default.

`--references` adds the same relative readings in two encoders that were never trained here: 16 x 16 raw pixels
and the ImageNet EfficientNet-Lite0 (frozen, at 128 px). The goal image is the last frame of *another* expert
episode seen from that view (demo/camera_shift.py): its object and goal positions are not the scored episode's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import video2reward
from video2reward.evaluation.camera import CAM_SPLIT, reads_goal
from video2reward.evaluation.metrics import (
    load_labels,
    success_auroc,
    value_order_correlation,
)
from video2reward.inference.relative import (
    READINGS,
    relative_goal_progress,
    relative_progress,
)
from video2reward.inference.scoring import score_videos
from video2reward.video.io import read_frames

Reading = Callable[[Path, Path], np.ndarray]  # (video, its view's goal image) -> one value per frame
Embed = Callable[[np.ndarray], torch.Tensor]  # (T, S, S, 3) uint8 frames -> (T, D) features


def videos_by_view(cam: Path) -> tuple[dict[str, dict[str, list[Path]]], dict[str, Path]]:
    """({split: {view: [video, ...]}} for test_expert and test_fail, {view: goal image}) of a test_cam/ folder."""
    labels = load_labels(cam)
    if labels is None:
        raise SystemExit(f"{cam}: no labels.json; make the split with `v2r demo-data` (camera shift is on by default)")
    by_view: dict[str, dict[str, list[Path]]] = {"test_expert": {}, "test_fail": {}}
    for key, entry in labels["videos"].items():
        if entry.get("split") in by_view:
            by_view[entry["split"]].setdefault(entry["view"], []).append(cam / key)
    return by_view, {view: cam / image for view, image in labels.get("goal_images", {}).items()}


def relative(embed: Embed, size: int, fit: str, reading: str) -> Reading:
    """Relative goal progress (relative_reward.py) in the features of a reference encoder `embed`, which is no
    reward model (models go through `relative_goal_progress`, as `v2r score --relative` does)."""
    def read(video: Path, goal: Path) -> np.ndarray:
        with torch.inference_mode():
            g = embed(read_frames(goal, size, fit)[-1:])[0]
            z = embed(read_frames(video, size, fit))  # (T, D)
        return relative_progress(z, g, reading)
    return read


def _float(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, S, S)


def readings_of(model_dir: Path) -> dict[str, Reading]:
    model = video2reward.load(model_dir)
    out: dict[str, Reading] = {
        "reward": lambda video, goal: score_videos(model, [video], progress=False).videos[0].rewards.mu,
    }
    if reads_goal(model):
        out["reward, view goal"] = lambda video, goal: score_videos(
            model, [video], goal=model.goal_from_image(goal), progress=False).videos[0].rewards.mu
    if model.config.get("head") != "pixel-ridge":  # what `v2r score --goal IMAGE --relative` computes
        for name, spatial in ([("map", True)] if model.has_feature_map else []) + [("pooled", False)]:
            for reading in READINGS:
                out[f"relative, {name} {reading}"] = (
                    lambda video, goal, r=reading, s=spatial: relative_goal_progress(model, video, goal, r, s))
    return out


def references() -> dict[str, Reading]:
    from video2reward.encoders import build_encoder

    effnet = build_encoder("efficientnet-lite0", 128).eval()
    pixels: Embed = lambda f: F.interpolate(_float(f), size=16, mode="area").flatten(1)  # noqa: E731
    out = {f"pixels 16x16: relative, {r}": relative(pixels, 64, "pad", r) for r in READINGS}
    for name, embed in (("map", lambda f: effnet.feature_map(_float(f)).flatten(1)),
                        ("pooled", lambda f: effnet(_float(f)))):
        for r in READINGS:
            out[f"efficientnet-lite0 128 px: relative, {name} {r}"] = relative(embed, 128, "pad", r)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task_dir", type=Path, help="a task folder of `v2r demo-data`, with test_cam/")
    parser.add_argument("models", nargs="*", type=Path, help="model folders of `v2r train`")
    parser.add_argument("--references", action="store_true", help="add the relative readings in raw pixels and "
                        "ImageNet EfficientNet-Lite0 features")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    by_view, goals = videos_by_view(args.task_dir / CAM_SPLIT)
    views = list(by_view["test_expert"])
    rows = []
    named = [(f"{folder.name}: {name}", read) for folder in args.models for name, read in readings_of(folder).items()]
    if args.references:
        named += list(references().items())
    for name, read in named:
        per_view = {v: [read(video, goals[v]) for video in by_view["test_expert"][v]] for v in views}
        failed = [read(video, goals[v]) for v, videos in by_view["test_fail"].items() for video in videos]
        everything = [r for rs in per_view.values() for r in rs]
        rows.append([name, f"{value_order_correlation(everything):.3f}", f"{success_auroc(everything, failed):.3f}",
                     *[f"{value_order_correlation(per_view[v]):.3f}" for v in views]])
        print("  ".join(rows[-1]), flush=True)
    head = ["reading", "VOC cam (all views)", "AUROC cam", *views]
    print()
    if args.markdown:
        print("| " + " | ".join(head) + " |")
        print("|" + "|".join("---" for _ in head) + "|")
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for row in [head, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
