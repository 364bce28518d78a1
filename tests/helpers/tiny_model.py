"""A fixed tiny reward model (a progress head on a small CNN, random weights from seed 0, a random goal): what the
RL tests wrap, refine and train agents with, in well under a second."""

from __future__ import annotations

import dataclasses
import json

import torch

from video2reward.encoders import build_encoder, encoder_config
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead


def tiny_model(motion_gap: int = 2, size: int = 32) -> RewardModel:
    torch.manual_seed(0)
    head = ProgressHead(build_encoder("cnn", size, channels=(8, 16), dim=16), ProgressConfig(motion_gap=motion_gap))
    head.goal.normal_()
    encoder = json.loads(json.dumps(dataclasses.asdict(encoder_config("cnn", size, channels=(8, 16), dim=16))))
    config = {"head": "progress", "image_size": size, "frame_fit": "pad",
              "encoder": {"name": "cnn", "config": encoder}, "head_config": dataclasses.asdict(head.config)}
    return RewardModel(head, config)
