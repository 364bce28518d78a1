"""Model files on disk: tensors in safetensors, everything else in JSON, both written atomically.

A model directory holds `model.safetensors` and `config.json`. `config.json` records the format version
and the SHA-256 of the weights file, so a damaged, swapped or half-copied file is caught at load time.
Nothing here ever unpickles: a model file must not be able to run code.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from video2reward.errors import ModelFileError

FORMAT = "video2reward.model"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
_PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".bin")


def _atomic_write(path: Path, write) -> None:
    """Write through a temp file in the same folder, fsync, then rename: readers see old or new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True)
            f.write("\n")

    _atomic_write(Path(path), write)


def read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError as exc:
        raise ModelFileError(f"{path}: missing") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"{path}: not valid JSON ({exc}); the file is damaged, re-train or re-copy it") from exc


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    """Atomically write tensors as safetensors; returns the file's SHA-256."""
    clean = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    _atomic_write(Path(path), lambda tmp: save_file(clean, tmp))
    return sha256(Path(path))


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _looks_like_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4)
    return head[:1] == b"\x80" or head[:2] == b"PK"  # pickle protocol >= 2, or torch.save's zip


def load_tensors(path: Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.exists():
        raise ModelFileError(f"{path}: missing")
    if _looks_like_pickle(path):
        raise ModelFileError(
            f"{path}: this is a pickle / torch.save file, not safetensors; v2r never loads pickles because "
            f"they can run code. Convert it with safetensors.torch.save_file(state_dict, 'model.safetensors')"
        )
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: not a readable safetensors file ({exc}); re-train or re-copy it") from exc


def save_model_dir(directory: Path, tensors: dict[str, torch.Tensor], config: dict[str, Any]) -> dict[str, Any]:
    """Write weights first, then the config that vouches for them (with their hash); returns that config."""
    directory = Path(directory)
    digest = save_tensors(directory / WEIGHTS, tensors)
    saved = {**config, "format": FORMAT, "format_version": FORMAT_VERSION, "weights_sha256": digest}
    write_json(directory / CONFIG, saved)
    return saved


def load_model_dir(directory: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    directory = Path(directory)
    if not directory.is_dir():
        hint = " (give the model folder, not a file inside it)" if directory.is_file() else ""
        raise ModelFileError(f"{directory}: not a model folder{hint}; train one with `v2r train VIDEOS --out DIR`")
    weights, config_path = directory / WEIGHTS, directory / CONFIG
    if not weights.exists():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        if pickles:
            raise ModelFileError(
                f"{directory}: holds {', '.join(pickles)} but no {WEIGHTS}; v2r only loads safetensors, never "
                f"pickles (they can run code)"
            )
        raise ModelFileError(f"{weights}: missing; is {directory} a v2r model folder (`v2r train ... --out`)?")
    config = read_json(config_path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{config_path}: not a video2reward model config (no format '{FORMAT}')")
    version = config.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        raise ModelFileError(
            f"{config_path}: model format version {version}, this v2r reads version {FORMAT_VERSION}; "
            + ("upgrade video2reward (pip install -U video2reward)" if newer else "re-train the model with this v2r")
        )
    expected = config.get("weights_sha256")
    if expected and not _looks_like_pickle(weights) and sha256(weights) != expected:
        raise ModelFileError(
            f"{weights}: contents do not match the hash in {config_path} (damaged or from another model); "
            f"re-copy the whole model folder"
        )
    return load_tensors(weights), config


RENDER_FILE = "render.json"  # beside demo videos: how they were rendered (camera, render_size, flip), from v2r demo-data


def read_render_facts(paths: Sequence[str | os.PathLike]) -> dict[str, str] | None:
    """The render.json beside the videos of the first of `paths` (folders) that has one, else None: what `v2r
    train` stores in a model so that `v2r rl` renders the env as its demonstrations were rendered."""
    for path in paths:
        candidate = Path(path) / RENDER_FILE
        if candidate.is_file():
            facts = json.loads(candidate.read_text(encoding="utf-8"))
            return {key: str(facts.get(key, "")) for key in ("task", "env_id", "camera", "render_size", "flip")}
    return None
