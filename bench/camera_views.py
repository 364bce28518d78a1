"""VOC per view of a task's test_cam/ split (other cameras): which camera moves a reward survives, and which not.

    python bench/camera_views.py DATA/TASK MODEL [MODEL ...] [--references] [--markdown]

DATA/TASK is a task folder of `v2r demo-data` (with test_cam/); each MODEL a folder of `v2r train`. For each model,
three readings of the test_cam/test_expert videos, VOC per view (labels.json "view") and over all of them:

* `reward`: the model's reward as `v2r score` gives it (goal: the demonstrations' last frames, training camera);
* `reward, view goal`: the same with the view's goal image (`v2r score --goal`; goal-reading heads only);
* `goal distance`: -||phi(frame) - phi(view's goal image)|| in the model's own encoder features: no head, only
  the new camera's goal picture (VOC is per video, so normalising by the first frame's distance changes nothing).

`--references` adds the goal distance in two encoders that were never trained here: 16 x 16 raw pixels and the
ImageNet EfficientNet-Lite0 (frozen, at 128 px). The goal image is the last frame of *another* expert episode
seen from that view (demo/camera_shift.py): its object and goal positions are not the scored episode's.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import video2reward
from video2reward.camera_eval import CAM_SPLIT, reads_goal
from video2reward.evaluation import load_labels, value_order_correlation
from video2reward.scoring import score_videos
from video2reward.video.io import read_frames

Reading = Callable[[Path, Path], np.ndarray]  # (video, its view's goal image) -> one value per frame


def expert_videos_by_view(cam: Path) -> tuple[dict[str, list[Path]], dict[str, Path]]:
    labels = load_labels(cam)
    if labels is None:
        raise SystemExit(f"{cam}: no labels.json; make the split with `v2r demo-data` (camera shift is on by default)")
    by_view: dict[str, list[Path]] = {}
    for key, entry in labels["videos"].items():
        if entry.get("split") == "test_expert":
            by_view.setdefault(entry["view"], []).append(cam / key)
    return by_view, {view: cam / image for view, image in labels.get("goal_images", {}).items()}


def goal_distance(embed: Callable[[np.ndarray], torch.Tensor], size: int, fit: str) -> Reading:
    """-||embed(frame) - embed(goal image)||, frame by frame."""
    def read(video: Path, goal: Path) -> np.ndarray:
        with torch.inference_mode():
            g = embed(read_frames(goal, size, fit)[-1:])[0]
            z = embed(read_frames(video, size, fit))  # (T, D)
        return (-(z.float() - g.float()).norm(dim=1)).numpy()
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
    if model.config.get("head") != "pixel-ridge":
        out["goal distance"] = goal_distance(model.embed_frames, model.image_size, model.frame_fit)
    return out


def references() -> dict[str, Reading]:
    from video2reward.encoders import build_encoder

    effnet = build_encoder("efficientnet-lite0", 128).eval()
    return {
        "pixels 16x16: goal distance": goal_distance(
            lambda f: F.interpolate(_float(f), size=16, mode="area").flatten(1), 64, "pad"),
        "efficientnet-lite0 128 px: goal distance": goal_distance(lambda f: effnet(_float(f)), 128, "pad"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task_dir", type=Path, help="a task folder of `v2r demo-data`, with test_cam/")
    parser.add_argument("models", nargs="*", type=Path, help="model folders of `v2r train`")
    parser.add_argument("--references", action="store_true", help="add goal distances in raw pixels and ImageNet "
                        "EfficientNet-Lite0 features")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    by_view, goals = expert_videos_by_view(args.task_dir / CAM_SPLIT)
    views = list(by_view)
    rows = []
    named = [(f"{folder.name}: {name}", read) for folder in args.models for name, read in readings_of(folder).items()]
    if args.references:
        named += list(references().items())
    for name, read in named:
        per_view = {v: [read(video, goals[v]) for video in by_view[v]] for v in views}
        everything = [r for rs in per_view.values() for r in rs]
        rows.append([name, f"{value_order_correlation(everything):.3f}",
                     *[f"{value_order_correlation(per_view[v]):.3f}" for v in views]])
        print("  ".join(rows[-1]), flush=True)
    head = ["reading", "VOC cam (all views)", *views]
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
