"""The model card: `README.md` in every model folder, beside `model.safetensors` and `config.json`, and what
`v2r info MODEL` prints.

It is written by `RewardModel.save` from the config alone (so every model folder gets one: trained, distilled,
refined, ensembles), after the weights, with the weights' SHA-256 that config.json vouches for. What it says
of the training data, the command and the version comes from `config["training"]`, which `v2r train` and
`v2r distill` fill with `data_facts` and `provenance`; a model written before those facts were recorded gets
a card that says "not recorded" for them.
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from video2reward.core.files import _atomic_write

CARD_FILE = "README.md"
NOT_RECORDED = "not recorded"


def provenance() -> dict[str, str]:
    """The command that is running (`v2r ...`, as the CLI's entry recorded it in $V2R_COMMAND; else the Python
    process's command line), the v2r version and the date (UTC)."""
    command = os.environ.get("V2R_COMMAND") or f"from Python ({shlex.join(sys.argv) or 'an interactive session'})"
    try:
        version = metadata.version("video2reward")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"command": command, "v2r_version": version,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def data_facts(demos: Sequence[Any], paths: Sequence[Any], camera_key: str = "") -> dict[str, Any]:
    """What the model learned from: the inputs as given, how many videos (and LeRobotDataset episodes), frames,
    frame rates and native resolutions (demos are `video.dataset.Demonstration`s)."""
    episodes = sum(1 for d in demos if "/episode_" in str(d.name))
    return {"inputs": [str(p) for p in paths], "num_videos": len(demos), "num_episodes": episodes,
            "fps": sorted({round(float(d.fps), 3) for d in demos if getattr(d, "fps", 0)}),
            "resolutions": sorted({f"{d.width}x{d.height}" for d in demos if getattr(d, "width", 0)}),
            "camera_key": camera_key}


def _fmt(value: Any) -> str:
    if value is None or value == [] or value == "":
        return NOT_RECORDED
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def card_facts(config: dict[str, Any], weights_sha256: str | None = None) -> dict[str, Any]:
    """The card's facts, as `v2r info --json` prints them."""
    training = config.get("training") or {}
    train_config = training.get("config") or {}
    data = training.get("data") or {}
    encoder = config.get("encoder") or {}
    pretrained = encoder.get("pretrained_with") or {}
    members = [m.get("head") for m in config.get("members") or []]
    return {
        "head": config.get("head"), "members": members or None, "ensemble": config.get("ensemble", 1),
        "encoder": encoder.get("name") or ("none (pixels)" if config.get("head") == "pixel-ridge" else None),
        "pretraining": pretrained.get("method") if isinstance(pretrained, dict) else pretrained,
        "encoder_frozen": encoder.get("frozen"), "pretrained_from": encoder.get("pretrained_from"),
        "image_size": config.get("image_size"), "frame_fit": config.get("frame_fit"),
        "inputs": data.get("inputs"), "num_videos": data.get("num_videos", len(training.get("videos") or []) or None),
        "num_episodes": data.get("num_episodes"), "num_frames": training.get("num_frames"),
        "fps": data.get("fps"), "resolutions": data.get("resolutions"),
        "camera_key": data.get("camera_key") or train_config.get("camera_key") or None,
        "episodes": train_config.get("episodes") or None, "task": train_config.get("task") or None,
        "negatives": len(training.get("negatives") or []) or None,
        "training_seconds": training.get("seconds"), "steps": train_config.get("steps"),
        "seed": train_config.get("seed"),
        "train_video_voc": training.get("train_video_voc", training.get("voc")),
        "train_end_vs_start_auroc": training.get("train_end_vs_start_auroc"),
        "train_last_frame_success": training.get("train_last_frame_success"),
        "distilled_from": training.get("distilled_from"), "teacher_spearman": training.get("teacher_spearman"),
        "refined": bool(config.get("refinement")), "warnings": training.get("warnings") or None,
        "command": training.get("command"), "v2r_version": training.get("v2r_version"), "date": training.get("date"),
        "weights_sha256": weights_sha256 or config.get("weights_sha256"),
    }


def model_card(config: dict[str, Any], name: str, weights_sha256: str | None = None) -> str:
    """The card's markdown for the model folder `name` with `config` (its config.json)."""
    f = card_facts(config, weights_sha256)
    head = f["head"] + (f" (members: {', '.join(f['members'])})" if f["members"] else "")
    if f["ensemble"] and f["ensemble"] > 1:
        head += f", ensemble of {f['ensemble']}"
    encoder = _fmt(f["encoder"])
    if f["pretraining"]:
        encoder += f", pretrained on the same videos with {f['pretraining']}"
    if f["pretrained_from"]:
        encoder += f", pretrained: {f['pretrained_from']}"
    if f["encoder_frozen"]:
        encoder += " (frozen)"
    videos = f"{_fmt(f['num_videos'])} videos"
    if f["num_episodes"]:
        videos += f" ({f['num_episodes']} LeRobotDataset episodes)"
    frames = f"{f['num_frames']:,}" if isinstance(f["num_frames"], int) else NOT_RECORDED
    rows = [
        ("head", head), ("encoder", encoder),
        ("frames in", f"{f['image_size']} px squares ({f['frame_fit']})"),
        ("trained on", f"{videos}, {frames} frames" + (f", plus {f['negatives']} failed videos"
                                                        if f["negatives"] else "")),
        ("inputs", _fmt(f["inputs"])), ("camera key", _fmt(f["camera_key"])),
    ]
    if f["episodes"] or f["task"]:
        rows.append(("episodes / task", f"{_fmt(f['episodes'])} / {_fmt(f['task'])}"))
    rows += [
        ("frame rate(s)", _fmt(f["fps"])), ("native resolution(s)", _fmt(f["resolutions"])),
        ("training time", f"{f['training_seconds']:.1f} s" if f["training_seconds"] is not None else NOT_RECORDED),
        ("steps, seed", f"{_fmt(f['steps'])}, {_fmt(f['seed'])}"),
        ("order on its training videos (VOC)", f"{f['train_video_voc']:.3f}" if f["train_video_voc"] is not None
         else NOT_RECORDED),
        ("success separation on its training videos", _separation(f)),
    ]
    if f["distilled_from"]:
        rows.append(("distilled from", f"{f['distilled_from']} (Spearman with the teacher "
                                       f"{_fmt(f['teacher_spearman'])})"))
    if f["refined"]:
        rows.append(("refined", "by `v2r rl --refine` (see config.json's refinement)"))
    rows += [("command", f"`{f['command']}`" if f["command"] else NOT_RECORDED),
             ("v2r version", _fmt(f["v2r_version"])), ("date", _fmt(f["date"])),
             ("weights SHA-256", f"`{f['weights_sha256']}`" if f["weights_sha256"] else NOT_RECORDED)]
    lines = [f"# Reward model `{name}`", "",
             "A dense reward from video frames, made by video2reward (`v2r`). Every figure below was recorded when",
             "the model was written; `v2r info` prints this card.", "",
             "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], "",
             "## Use", "", "```bash", f"v2r score {name} VIDEOS --out rewards.jsonl", f"v2r eval {name} DATA_DIR",
             "```", "", "```python", "import video2reward", f"model = video2reward.load({name!r})",
             "rewards = model.score(\"episode.mp4\")   # rewards.mu: one reward per frame", "```"]
    if f["warnings"]:
        lines += ["", "## Warnings at training", "", *[f"- {w}" for w in f["warnings"]]]
    return "\n".join(lines) + "\n"


def _separation(f: dict[str, Any]) -> str:
    parts = []
    if f["train_end_vs_start_auroc"] is not None:
        parts.append(f"AUROC {f['train_end_vs_start_auroc']:.3f} of the last 10% of frames against the first 10%")
    if f["train_last_frame_success"] is not None:
        parts.append(f"success probability {f['train_last_frame_success']:.3f} on the last frames")
    return "; ".join(parts) or NOT_RECORDED


def write_model_card(directory: Path, config: dict[str, Any]) -> Path:
    """DIRECTORY/README.md from `config` (as saved, with its weights hash), written atomically."""
    path = Path(directory) / CARD_FILE
    text = model_card(config, str(directory))

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    _atomic_write(path, write)
    return path
