"""The model card: `README.md` in every model folder, beside `model.safetensors` and `config.json`, and what
`v2r info MODEL` prints.

It is written by `RewardModel.save` from the config alone (so every model folder gets one: trained, distilled,
refined, ensembles), after the weights, with the weights' SHA-256 that config.json vouches for. What it says
of the training data, the command and the version comes from `config["training"]`, which `v2r train` and
`v2r distill` fill with `data_facts` and `provenance`; a model written before those facts were recorded gets
a card that says "not recorded" for them.

The card's two checks on the training videos, both computed when the model is written:
- VOC: the mean over videos of Spearman(reward, frame index) (evaluation.metrics.value_order_correlation);
- end-vs-start AUROC: the probability that a frame from the last 10% of a training video gets a higher reward
  than a frame from the first 10% (frames pooled over up to 8 videos; 0.5 is chance, 1 a perfect split); a
  success head also records its mean success probability on the last frames.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from video2reward.core.files import _atomic_write

CARD_FILE = "README.md"
NOT_RECORDED = "not recorded"
COMMAND_VARIABLE = "V2R_COMMAND"  # set by cli/entry.py's main() to the running `v2r ...` command line
_EPISODE = re.compile(r"/episode_\d+$")  # a LeRobotDataset episode's name (video/lerobot.py)


def provenance(python_call: str = "video2reward.training.train.train_reward_model", verb: str = "trained"
               ) -> dict[str, str]:
    """The command that is running (`v2r ...` as the CLI's entry recorded it, shell-quoted, in $V2R_COMMAND;
    else "VERB from Python: PYTHON_CALL(...)"), the v2r version and the date (UTC)."""
    command = os.environ.get(COMMAND_VARIABLE) or f"{verb} from Python: {python_call}(...)"
    try:
        version = metadata.version("video2reward")
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"command": command, "v2r_version": version,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def data_facts(demos: Sequence[Any], paths: Sequence[Any], camera_key: str = "") -> dict[str, Any]:
    """What the model learned from: the inputs as given, how many videos (and LeRobotDataset episodes, named
    GIVEN/episode_NNNNNN), frames (in the videos, and kept for training), frame rates and native resolutions
    (width x height; demos are `video.dataset.Demonstration`s)."""
    episodes = sum(1 for d in demos if _EPISODE.search(str(d.name)))
    return {"inputs": [str(p) for p in paths], "num_videos": len(demos), "num_episodes": episodes,
            "frames_used": int(sum(len(d.frames) for d in demos)),
            "fps": sorted({round(float(d.fps), 3) for d in demos if getattr(d, "fps", 0)}),
            "resolutions": [f"{w}x{h}" for w, h in sorted({(d.width, d.height) for d in demos
                                                            if getattr(d, "width", 0)})],
            "camera_key": camera_key}


def card_facts(config: dict[str, Any], weights_sha256: str | None = None) -> dict[str, Any]:
    """The card's facts, as `v2r info --json` prints them; None where the model's config does not record one."""
    training = config.get("training") or {}
    train_config = training.get("config") or {}
    distilled = training.get("distill") or {}
    data = training.get("data")
    encoder = config.get("encoder") or {}
    pretrained = encoder.get("pretrained_with") or {}
    if not isinstance(pretrained, dict):
        pretrained = {"method": pretrained}
    members = [m.get("head") for m in config.get("members") or []]
    camera_key = (data or {}).get("camera_key") or train_config.get("camera_key") or None
    return {
        "head": config.get("head"), "members": members or None, "ensemble": config.get("ensemble", 1),
        "encoder": encoder.get("name") or ("none (pixels)" if config.get("head") == "pixel-ridge" else None),
        "pretraining": pretrained.get("method"), "pretraining_steps": pretrained.get("steps"),
        "pretraining_seconds": pretrained.get("seconds"),
        "encoder_frozen": encoder.get("frozen"), "pretrained_from": encoder.get("pretrained_from"),
        "image_size": config.get("image_size"), "frame_fit": config.get("frame_fit"),
        "inputs": (data or {}).get("inputs"),
        "num_videos": (data or {}).get("num_videos", len(training.get("videos") or []) or None),
        "num_episodes": (data or {}).get("num_episodes"), "num_frames": training.get("num_frames"),
        "frames_used": (data or {}).get("frames_used"),
        "fps": (data or {}).get("fps"), "resolutions": (data or {}).get("resolutions"),
        "camera_key": camera_key, "data_recorded": data is not None,
        "episodes": train_config.get("episodes") or None, "task": train_config.get("task") or None,
        "negatives": len(training.get("negatives") or []) or None,
        "training_seconds": training.get("seconds"),
        "steps": distilled.get("steps", train_config.get("steps")),
        "seed": distilled.get("seed", train_config.get("seed")),
        "train_video_voc": training.get("train_video_voc", training.get("voc")),
        "train_end_vs_start_auroc": training.get("train_end_vs_start_auroc"),
        "train_last_frame_success": training.get("train_last_frame_success"),
        "distilled_from": training.get("distilled_from"), "student": distilled.get("student"),
        "teacher_spearman": training.get("teacher_spearman"),
        "refinement": config.get("refinement") or None, "warnings": training.get("warnings") or None,
        "command": training.get("command"), "v2r_version": training.get("v2r_version"), "date": training.get("date"),
        "weights_sha256": weights_sha256 or config.get("weights_sha256"),
    }


def _fmt(value: Any) -> str:
    if value is None or value == [] or value == "":
        return NOT_RECORDED
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _figure(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else NOT_RECORDED


def _head(f: dict[str, Any]) -> str:
    head = _fmt(f["head"]) + (f" (members: {', '.join(map(str, f['members']))})" if f["members"] else "")
    if f["ensemble"] and f["ensemble"] > 1:
        head += f", ensemble of {f['ensemble']}"
    return head


def _encoder(f: dict[str, Any]) -> str:
    encoder = _fmt(f["encoder"])
    if f["student"]:
        encoder += f" (the {f['student']} student preset)"
    if f["pretraining"]:
        steps = f", {f['pretraining_steps']} steps" if f["pretraining_steps"] else ""
        encoder += f", pretrained on the same videos with {f['pretraining']}{steps}"
    if f["pretrained_from"]:
        encoder += f", pretrained: {f['pretrained_from']}"
    if f["encoder_frozen"]:
        encoder += " (frozen)"
    return encoder


def _data(f: dict[str, Any]) -> list[tuple[str, str]]:
    videos = f"{f['num_videos']} videos" if isinstance(f["num_videos"], int) else f"videos {NOT_RECORDED}"
    if f["num_episodes"] and f["num_episodes"] == f["num_videos"]:
        videos = f"{f['num_episodes']} LeRobotDataset episodes"
    elif f["num_episodes"]:
        videos += f" ({f['num_episodes']} of them LeRobotDataset episodes)"
    frames = f"{f['num_frames']:,} frames" if isinstance(f["num_frames"], int) else f"frames {NOT_RECORDED}"
    if isinstance(f["frames_used"], int) and f["frames_used"] != f["num_frames"]:
        frames += f" ({f['frames_used']:,} kept for training)"
    negatives = f", plus {f['negatives']} failed videos" if f["negatives"] else ""
    if f["num_videos"] is None and f["num_frames"] is None:
        videos, frames = NOT_RECORDED, ""
    if f["camera_key"]:
        camera = f"`{f['camera_key']}`"
    elif f["data_recorded"]:
        camera = "the dataset's only camera" if f["num_episodes"] else "none (video files or frame folders)"
    else:
        camera = NOT_RECORDED
    rows = [("trained on", ", ".join(filter(None, (videos, frames))) + negatives), ("inputs", _fmt(f["inputs"])),
            ("camera key", camera)]
    if f["episodes"] or f["task"]:
        rows.append(("episodes / task", f"{f['episodes'] or 'all'} / {f['task'] or 'all'}"))
    rows += [("frame rate(s)", _fmt(f["fps"]) + (" fps" if f["fps"] else "")),
             ("native resolution(s), width x height", _fmt(f["resolutions"])),
             ("frames in", f"{_fmt(f['image_size'])} px squares ({_fmt(f['frame_fit'])})")]
    return rows


def _steps_seed(f: dict[str, Any]) -> str:
    if f["head"] == "pixel-ridge":
        return "none: a closed-form ridge regression on pixels"
    return NOT_RECORDED if f["steps"] is None and f["seed"] is None else f"{_fmt(f['steps'])}, {_fmt(f['seed'])}"


def _training_time(f: dict[str, Any]) -> str:
    if not isinstance(f["training_seconds"], (int, float)):
        return NOT_RECORDED
    text = f"{f['training_seconds']:.1f} s (from decoding the videos to the end of training)"
    if isinstance(f["pretraining_seconds"], (int, float)):
        text += f", of which pretraining {f['pretraining_seconds']:.1f} s"
    return text


def _separation(f: dict[str, Any]) -> str:
    parts = []
    if f["train_end_vs_start_auroc"] is not None:
        parts.append(f"end-vs-start AUROC {_figure(f['train_end_vs_start_auroc'])} (last 10% of frames against "
                     f"the first 10%)")
    if f["train_last_frame_success"] is not None:
        parts.append(f"mean success probability {_figure(f['train_last_frame_success'])} on the last frames")
    return "; ".join(parts) or NOT_RECORDED


def _refinement(refinement: dict[str, Any]) -> str:
    text = (f"by `v2r rl --refine`: {_fmt(refinement.get('refinements'))} refinements "
            f"({_fmt(refinement.get('gradient_steps'))} gradient steps) while a {_fmt(refinement.get('algo'))} agent "
            f"trained on {_fmt(refinement.get('task'))} for {_fmt(refinement.get('timesteps'))} timesteps, from "
            f"{_fmt(refinement.get('from'))}")
    command = str(refinement.get("command") or "")
    if command:
        text += f"; command `{command}`" if command.startswith("v2r ") else f"; {command}"
    return text + "; the training figures above are the model's before refinement"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a | inside a markdown table cell


def model_card(config: dict[str, Any], name: str, weights_sha256: str | None = None) -> str:
    """The card's markdown for the model folder `name` with `config` (its config.json)."""
    f = card_facts(config, weights_sha256)
    rows = [("head", _head(f)), ("encoder", _encoder(f)), *_data(f),
            ("training time", _training_time(f)), ("steps, seed", _steps_seed(f)),
            ("order on its training videos (VOC)", _figure(f["train_video_voc"])),
            ("success separation on its training videos", _separation(f))]
    if f["distilled_from"]:
        agree = _figure(f["teacher_spearman"])
        rows.append(("distilled from", f"{f['distilled_from']} (Spearman with the teacher's rewards {agree})"))
    if f["refinement"]:
        rows.append(("refined", _refinement(f["refinement"])))
    rows += [("command", f"`{f['command']}`" if f["command"] and f["command"].startswith("v2r ")
              else _fmt(f["command"])),
             ("v2r version", _fmt(f["v2r_version"])), ("date", _fmt(f["date"])),
             ("weights SHA-256 (model.safetensors)", f"`{f['weights_sha256']}`" if f["weights_sha256"]
              else NOT_RECORDED)]
    lines = [f"# Reward model `{Path(name).name or name}`", "",
             "A dense reward from video frames, made by video2reward (`v2r`); `v2r info` prints this card.", "",
             "| | |", "|---|---|", *[f"| {k} | {_cell(v)} |" for k, v in rows], "",
             "VOC: the mean over training videos of Spearman(reward, frame index), 1 when the reward rises through",
             "every video. End-vs-start AUROC: the chance that a frame from the last 10% of a training video gets a",
             "higher reward than one from the first 10% (up to 8 videos pooled; 0.5 is chance). Both are measured",
             "on the videos the model learned from, when it was written: a check that training worked, not a",
             "score on new videos (that is `v2r eval`).", "",
             "## Use", "", "```bash", f"v2r score {name} VIDEOS --out rewards.jsonl", f"v2r eval {name} DATA_DIR",
             "```", "", "```python", "import video2reward", f"model = video2reward.load({name!r})",
             "rewards = model.score(\"episode.mp4\")   # rewards.mu: one reward per frame", "```"]
    if f["warnings"]:
        lines += ["", "## Warnings at training", "", *[f"- {w}" for w in f["warnings"]]]
    return "\n".join(lines) + "\n"


def write_model_card(directory: Path, config: dict[str, Any]) -> Path:
    """DIRECTORY/README.md from `config` (as saved, with its weights' hash), written atomically; call it after
    the weights and config.json, so the card names the weights beside it."""
    path = Path(directory) / CARD_FILE
    text = model_card(config, str(directory))

    def write(tmp: str) -> None:
        Path(tmp).write_text(text, encoding="utf-8")

    _atomic_write(path, write)
    return path
