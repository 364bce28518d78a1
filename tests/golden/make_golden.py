"""Writes the golden models, videos and expected rewards of test_golden.py. Run once, from the repository root, on
the code whose numbers are the reference (`python -m tests.golden.make_golden`); rerunning it on later code would
only copy that code's numbers, so the test would stop guarding anything."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

import video2reward
from video2reward.encoders import encoder_config
from video2reward.inference.model import RewardModel
from video2reward.rewards.registry import build_head
from video2reward.testing.synthetic import moving_square
from video2reward.video.io import write_video

HERE = Path(__file__).resolve().parent
SIZE = 32
ENCODER = {"name": "cnn", "config": json.loads(json.dumps(dataclasses.asdict(
    encoder_config("cnn", SIZE, channels=(8, 16), dim=16))))}
MODELS = {  # name -> the config.json a tiny random model of that head is built from
    "progress+rank": {"head": "progress+rank", "members": [
        {"head": "progress", "head_config": {"motion_gap": 3, "hidden": 32}},
        {"head": "rank", "head_config": {"hidden": 32}}]},
    "temporal": {"head": "temporal", "head_config": {"context": 4, "sequence": "transformer", "width": 16,
                                                      "heads": 2, "layers": 1, "hidden": 32}},
    "success": {"head": "success", "head_config": {"hidden": 32}},
}


def videos() -> dict[str, np.ndarray]:
    """Fixed frames at a size other than the models' (so resizing is part of the path)."""
    return {"right": moving_square(23, 48), "left": moving_square(17, 40, color=(200, 90, 40), start=1.0, stop=0.2)}


def main() -> None:
    (HERE / "videos").mkdir(exist_ok=True)
    for name, frames in videos().items():
        write_video(HERE / "videos" / f"{name}.mp4", frames, fps=10)
    expected = {}
    for k, (name, partial) in enumerate(MODELS.items()):
        torch.manual_seed(k)
        config = {**partial, "image_size": SIZE, "frame_fit": "pad", "encoder": ENCODER}
        head = build_head(config)
        for buffer_name, buffer in head.named_buffers():  # stored goals and calibrations: not zeros and ones
            if buffer_name.endswith("goal"):
                buffer.normal_()
        for p in head.parameters():  # a wider spread of rewards than the default initialisation gives
            p.data.mul_(1.5)
        folder = HERE / "models" / name.replace("+", "_")
        RewardModel(head, config).save(folder)
        model = video2reward.load(folder)
        entry = {}
        for video, frames in videos().items():
            for source, rewards in (("file", model.score(HERE / "videos" / f"{video}.mp4")),
                                    ("array", model.score(frames))):
                entry[f"{source}:{video}"] = {key: None if value is None else [float(v) for v in value]
                                              for key, value in (("mu", rewards.mu), ("sigma", rewards.sigma),
                                                                 ("success_prob", rewards.success_prob),
                                                                 ("epistemic", rewards.epistemic))}
        expected[name] = entry
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
