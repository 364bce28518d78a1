"""Encoder files: save a frame encoder on its own, and load one from any of the files that hold one.

    save_encoder(dir, encoder, "vit")         -> dir/encoder.safetensors + dir/config.json
    encoder, info = load_encoder(path)        -> an nn.Module (eval mode) and the config it came with

`load_encoder` takes (a) a folder written by `save_encoder`; (b) a reward-model folder (`v2r train --out`),
whose encoder weights sit under the key prefix "encoder."; (c) a `.safetensors` file of this project's
encoders with its config in `<stem>.json` beside it or in `config.json` in its folder; (d) a DINOv2-style
ViT state dict (`patch_embed.proj.weight`, `cls_token`, `pos_embed`, `blocks.N.ls1.gamma`, ...), found by
its keys, turned into a `ViTEncoder` that computes the same class token:

- LayerScale: our blocks have none, so x + gamma * (W h + b) is folded into W' = diag(gamma) W, b' = gamma b
  of attn.proj (ls1) and mlp.fc2 (ls2). Exact.
- Input: DINOv2 sees (x - mean) / std with ImageNet statistics; our ViT feeds y = (x - 0.5) * 4 to the
  patch projection. Since x = y / 4 + 0.5, channel c of the weight becomes W_c / (4 std_c) and the bias
  gains sum W_c (0.5 - mean_c) / std_c. Exact (the projection has no padding).
- LayerNorm eps: DINOv2 uses 1e-6, torch's default is 1e-5; the loaded encoder's LayerNorms get 1e-6 and
  `save_encoder` records it (`"layer_norm_eps"` in the encoder entry). A reward model's config, which only
  keeps the ViTConfig, loses it: the effect is ~1e-6 relative, far below anything that matters.
- Positions: the grid is resized once, at load, to `image_size` (default 224) the way DINOv2 does it:
  bicubic with scale_factor (g + 0.1) / M, i.e. source coordinate (i + 0.5) M / (g + 0.1) - 0.5. So at
  `image_size` the output equals DINOv2's own. Our ViT's `interpolate_pos_embed`, used when frames of
  another size come in, resizes with size=(g, g), i.e. (i + 0.5) M / g - 0.5 (up to ~0.1 M / g cells apart
  at the far edge), and from the already resized grid: pass the frame size you will use as `image_size`.
- Register tokens (the "-reg" models) and SwiGLU MLPs (ViT-g) are refused: our ViT has neither.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from video2reward.core.files import (
    _PICKLE_SUFFIXES,
    CONFIG,
    WEIGHTS,
    _looks_like_pickle,
    load_model_dir,
    load_tensors,
    read_json,
    save_tensors,
    sha256,
    write_json,
)
from video2reward.encoders import ENCODERS, encoder_from_config
from video2reward.encoders.vit import ViTConfig, ViTEncoder
from video2reward.errors import ConfigError, ModelFileError

ENCODER_WEIGHTS = "encoder.safetensors"
KIND = "encoder"
FORMAT_VERSION = 1
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DINOV2_LN_EPS = 1e-6
_DEFAULT_LN_EPS = 1e-5
_RESERVED = ("kind", "format_version", "encoder", "weights_sha256")


def _convert_hint(path: Path) -> str:
    out = path.with_suffix(".safetensors").name
    return (f"v2r never loads pickles (they can run code). Convert it once, in a Python you trust:\n"
            f"    import torch, safetensors.torch\n"
            f"    sd = torch.load('{path.name}', map_location='cpu', weights_only=True)\n"
            f"    safetensors.torch.save_file({{k: v.contiguous() for k, v in sd.items()}}, '{out}')")


def _layer_norm_eps(encoder: nn.Module) -> float | None:
    eps = {m.eps for m in encoder.modules() if isinstance(m, nn.LayerNorm)}
    return eps.pop() if len(eps) == 1 and eps != {_DEFAULT_LN_EPS} else None


def save_encoder(directory: str | Path, encoder: nn.Module, name: str, extra: dict[str, Any] | None = None) -> None:
    """Write `directory/encoder.safetensors`, then `directory/config.json` = {"kind": "encoder",
    "format_version": 1, "encoder": {"name", "config"}, "weights_sha256", **extra}, both atomically."""
    if name not in ENCODERS or not isinstance(encoder, ENCODERS[name][1]):
        raise ConfigError(f"save_encoder: {type(encoder).__name__} is not a {name!r} encoder "
                          f"(known: {', '.join(f'{k}={c.__name__}' for k, (_, c) in ENCODERS.items())})")
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_RESERVED))
    if clash:
        raise ConfigError(f"save_encoder: extra may not set {', '.join(clash)} (reserved)")
    entry: dict[str, Any] = {"name": name, "config": dataclasses.asdict(encoder.config)}
    if (eps := _layer_norm_eps(encoder)) is not None:
        entry["layer_norm_eps"] = eps
    try:
        json.dumps(extra)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"save_encoder: extra is not JSON-able ({exc})") from exc
    directory = Path(directory)
    digest = save_tensors(directory / ENCODER_WEIGHTS, encoder.state_dict())
    write_json(directory / CONFIG, {"kind": KIND, "format_version": FORMAT_VERSION, "encoder": entry,
                                    "weights_sha256": digest, **extra})


def _fill(encoder: nn.Module, tensors: dict[str, Tensor], weights: Path, described_by: str) -> nn.Module:
    """Strictly load `tensors` into `encoder`; a ModelFileError listing what does not fit."""
    expected = encoder.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [f"{k} {tuple(tensors[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ModelFileError(
            f"{weights}: weights do not fit the encoder described by {described_by} (missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, shape mismatches {shapes[:3]}); the weights and the config are from "
            f"different models: re-copy them together")
    encoder.load_state_dict(tensors)
    return encoder.eval()


def _build(entry: Any, weights: Path, tensors: dict[str, Tensor], config_path: Path) -> nn.Module:
    if not isinstance(entry, dict) or not isinstance(entry.get("config"), dict) or "name" not in entry:
        raise ModelFileError(f"{config_path}: no encoder entry {{\"name\": ..., \"config\": {{...}}}} "
                             f"(a pixel-ridge reward model has no learned encoder to reuse)")
    try:
        encoder = encoder_from_config(entry["name"], entry["config"])
    except ConfigError as exc:
        raise ModelFileError(f"{config_path}: bad encoder config ({exc}); re-copy or re-save it") from exc
    if "layer_norm_eps" in entry:
        for m in encoder.modules():
            if isinstance(m, nn.LayerNorm):
                m.eps = float(entry["layer_norm_eps"])
    if any(k.startswith("encoder.") for k in tensors):  # a whole reward model's weights: keep its encoder's
        tensors = {k[len("encoder."):]: v for k, v in tensors.items() if k.startswith("encoder.")}
    return _fill(encoder, tensors, weights, str(config_path))


def _check_hash(config: dict[str, Any], weights: Path, config_path: Path) -> None:
    expected = config.get("weights_sha256")
    if expected and sha256(weights) != expected:
        raise ModelFileError(f"{weights}: contents do not match the hash in {config_path} (damaged or from "
                             f"another model); re-copy the files together")


def _load_encoder_dir(directory: Path) -> tuple[nn.Module, dict[str, Any]]:
    weights, config_path = directory / ENCODER_WEIGHTS, directory / CONFIG
    if not config_path.exists():
        raise ModelFileError(f"{config_path}: missing, so {weights} cannot be rebuilt; re-copy the whole folder "
                             f"or re-save it with save_encoder")
    config = read_json(config_path)
    if not isinstance(config, dict) or config.get("kind") != KIND:
        raise ModelFileError(f"{config_path}: not an encoder config (no \"kind\": \"encoder\")")
    if config.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(f"{config_path}: encoder format version {config.get('format_version')}, this v2r "
                             f"reads version {FORMAT_VERSION}; use the v2r that wrote it, or upgrade")
    _check_hash(config, weights, config_path)
    return _build(config.get("encoder"), weights, load_tensors(weights), config_path), config


def _config_beside(weights: Path) -> tuple[dict[str, Any], Path] | None:
    """The first of <stem>.json and config.json beside `weights` that describes an encoder."""
    for candidate in (weights.with_suffix(".json"), weights.parent / CONFIG):
        if candidate.is_file():
            config = read_json(candidate)
            if isinstance(config, dict) and "encoder" in config:
                return config, candidate
            if isinstance(config, dict) and {"name", "config"} <= set(config):
                return {"encoder": config}, candidate
    return None


def load_encoder(path: str | Path, *, image_size: int | None = None, heads: int | None = None,
                 layout: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Load a frame encoder (in eval mode) and its config from any of the sources in the module docstring.

    The dict always has "encoder": {"name", "config"}. `image_size` (default 224) and `heads` (default
    dim // 64) apply to DINOv2-style files only; `layout="dinov2"` forces that reading (e.g. for DINO v1
    ViTs, which have the same keys without LayerScale). Every failure is a ModelFileError naming the file.
    """
    path = Path(path)
    if layout not in (None, "dinov2"):
        raise ConfigError(f"layout {layout!r}: only 'dinov2' (or None, to detect it) is known")
    if not path.exists():
        raise ModelFileError(f"{path}: not found; give an encoder folder (save_encoder), a reward-model folder "
                             f"(`v2r train ... --out DIR`) or a .safetensors file")
    if path.is_file() and (path.suffix in _PICKLE_SUFFIXES or _looks_like_pickle(path)):
        raise ModelFileError(f"{path}: a pickle / torch.save file, not safetensors. {_convert_hint(path)}")
    if path.is_dir() and layout == "dinov2":
        raise ModelFileError(f"{path}: is a folder; with layout='dinov2' give the .safetensors file itself")
    tensors = load_tensors(path) if path.is_file() else {}
    if layout == "dinov2" or is_dinov2_state_dict(tensors):
        encoder = dinov2_to_vit(tensors, image_size=224 if image_size is None else image_size, heads=heads,
                                source=path)
        entry = {"name": "vit", "config": dataclasses.asdict(encoder.config), "layer_norm_eps": DINOV2_LN_EPS}
        return encoder, {"kind": KIND, "format_version": FORMAT_VERSION, "encoder": entry,
                         "source": {"layout": "dinov2", "file": str(path), "sha256": sha256(path)}}
    if image_size is not None or heads is not None:
        raise ConfigError(f"{path}: image_size and heads only apply to DINOv2-style checkpoints; this "
                          f"encoder keeps its own (other frame sizes are handled by the encoder itself)")
    if path.is_file():
        found = _config_beside(path)
        if found is None:
            raise ModelFileError(
                f"{path}: no config JSON beside it ({path.with_suffix('.json').name} or {CONFIG} with an "
                f"\"encoder\": {{\"name\", \"config\"}} entry, as save_encoder writes); put it there, or, "
                f"for a DINO-style ViT checkpoint, call load_encoder(path, layout='dinov2')")
        config, config_path = found
        _check_hash(config, path, config_path)
        return _build(config["encoder"], path, tensors, config_path), config
    if (path / ENCODER_WEIGHTS).exists():
        return _load_encoder_dir(path)
    if (path / WEIGHTS).exists():
        tensors, config = load_model_dir(path)
        return _build(config.get("encoder"), path / WEIGHTS, tensors, path / CONFIG), config
    pickles = sorted(p for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise ModelFileError(f"{path}: holds {pickles[0].name} but no {ENCODER_WEIGHTS} or {WEIGHTS}. "
                             f"{_convert_hint(pickles[0])}")
    raise ModelFileError(f"{path}: holds neither {ENCODER_WEIGHTS} (save_encoder) nor {WEIGHTS} "
                         f"(`v2r train --out`); give the folder one of them is in, or a .safetensors file")


_BACKBONE_MARK = "patch_embed.proj.weight"


def is_dinov2_state_dict(tensors: dict[str, Tensor]) -> bool:
    """True for a DINOv2-style ViT: the timm/DINO key layout plus LayerScale, a mask token or registers."""
    prefixes = {k[: -len(_BACKBONE_MARK)] for k in tensors if k.endswith(_BACKBONE_MARK)}
    return any(f"{p}cls_token" in tensors and f"{p}pos_embed" in tensors and any(
        k.startswith(p) and (k.endswith(".ls1.gamma") or k in (f"{p}mask_token", f"{p}register_tokens"))
        for k in tensors) for p in prefixes)


def dinov2_interpolate_pos_embed(pos_embed: Tensor, grid: int) -> Tensor:
    """DINOv2's own resize of a (1, 1 + M*M, D) position embedding to a grid x grid patch grid."""
    M = math.isqrt(pos_embed.shape[1] - 1)
    if grid == M:
        return pos_embed
    patch = pos_embed[:, 1:].float().reshape(1, M, M, -1).permute(0, 3, 1, 2)  # (1, D, M, M)
    scale = float((grid + 0.1) / M)  # DINOv2 adds 0.1 "to avoid floating point error" (dino issue #8)
    patch = F.interpolate(patch, scale_factor=(scale, scale), mode="bicubic")  # (1, D, grid, grid)
    assert patch.shape[-1] == grid, (patch.shape, grid)
    return torch.cat([pos_embed[:, :1].float(), patch.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)


def dinov2_to_vit(tensors: dict[str, Tensor], *, image_size: int = 224, heads: int | None = None,
                  source: str | Path = "state dict") -> ViTEncoder:
    """Our `ViTEncoder` computing the DINOv2 backbone's normalised class token (see the module docstring)."""
    prefixes = sorted({k[: -len(_BACKBONE_MARK)] for k in tensors if k.endswith(_BACKBONE_MARK)})
    if len(prefixes) != 1:
        raise ModelFileError(f"{source}: {'no' if not prefixes else 'several'} ViT backbone(s) ({_BACKBONE_MARK} "
                             f"keys: {prefixes[:4]}); save a single backbone's state dict as safetensors")
    p = prefixes[0]
    sd = {re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k[len(p):]): v.double()  # block chunks -> flat
          for k, v in tensors.items() if k.startswith(p)}
    if "register_tokens" in sd:
        raise ModelFileError(f"{source}: a DINOv2 model with {sd['register_tokens'].shape[1]} register tokens "
                             f"(a '-reg' checkpoint); our ViT has no register tokens: use the model without them")
    if any(".mlp.w12." in k or ".mlp.w3." in k for k in sd):
        raise ModelFileError(f"{source}: SwiGLU MLP blocks (DINOv2 ViT-g); our ViT has GELU MLPs only: use ViT-S/B/L")
    for key in ("cls_token", "pos_embed", "norm.weight", "norm.bias", "patch_embed.proj.bias"):
        if key not in sd:
            raise ModelFileError(f"{source}: no {p}{key}; not a DINOv2-style ViT backbone")
    w = sd["patch_embed.proj.weight"]
    dim, P, n_pos = w.shape[0], w.shape[-1], sd["pos_embed"].shape[1] - 1
    M = math.isqrt(n_pos)
    if w.ndim != 4 or w.shape[1:] != (3, P, P) or M * M != n_pos or sd["pos_embed"].shape != (1, 1 + n_pos, dim):
        raise ModelFileError(f"{source}: unexpected shapes (patch_embed.proj.weight {tuple(w.shape)}, pos_embed "
                             f"{tuple(sd['pos_embed'].shape)}); need an RGB, square-patch, square-grid ViT")
    depth = len({int(m.group(1)) for k in sd if (m := re.match(r"blocks\.(\d+)\.", k))})
    if depth == 0 or f"blocks.{depth - 1}.mlp.fc1.weight" not in sd:
        raise ModelFileError(f"{source}: blocks are missing or not numbered 0..L-1 with GELU MLPs (mlp.fc1/fc2)")
    if heads is None:
        if dim % 64:
            raise ModelFileError(f"{source}: width {dim} is not a multiple of DINOv2's 64-wide heads; pass heads=")
        heads = dim // 64
    if image_size % P:
        raise ConfigError(f"image_size {image_size} must be a multiple of the checkpoint's patch size {P} "
                          f"(e.g. {max(1, round(image_size / P)) * P})")
    hidden = sd["blocks.0.mlp.fc1.weight"].shape[0]
    encoder = ViTEncoder(ViTConfig(image_size=image_size, patch_size=P, dim=dim, depth=depth, heads=heads,
                                   mlp_ratio=hidden / dim, pos_init="trunc_normal"))
    mean, std = torch.tensor(IMAGENET_MEAN, dtype=torch.float64), torch.tensor(IMAGENET_STD, dtype=torch.float64)
    used = {"patch_embed.proj.weight", "patch_embed.proj.bias", "cls_token", "pos_embed", "mask_token"}
    shift = (w * ((0.5 - mean) / std)[None, :, None, None]).sum((1, 2, 3))  # (D,): the constant part of x
    out = {"patch_embed.proj.weight": w / (4 * std)[None, :, None, None],
           "patch_embed.proj.bias": sd["patch_embed.proj.bias"] + shift,
           "cls_token": sd["cls_token"], "pos_embed": dinov2_interpolate_pos_embed(sd["pos_embed"], image_size // P)}
    for name, value in list(sd.items()):
        b = re.match(r"blocks\.(\d+)\.", name)
        if not (b or name.startswith("norm.")) or ".ls" in name:
            continue
        used.add(name)
        scale = None
        if b and re.search(r"\.(attn\.proj|mlp\.fc2)\.", name):  # fold LayerScale: diag(gamma) (W h + b)
            gamma = f"blocks.{b.group(1)}.{'ls1' if '.attn.' in name else 'ls2'}.gamma"
            scale = sd.get(gamma)
            used.add(gamma)
        out[name] = value if scale is None else value * (scale[:, None] if value.ndim == 2 else scale)
    for i in range(depth):  # DINOv2 models trained with qkv_bias=False: a zero bias is the same
        out.setdefault(f"blocks.{i}.attn.qkv.bias", torch.zeros(3 * dim, dtype=torch.float64))
    unknown = sorted(set(sd) - used)
    if unknown:
        raise ModelFileError(f"{source}: keys our ViT has no place for: {[p + k for k in unknown[:4]]}; this is "
                             f"not a plain DINOv2 ViT backbone")
    _fill(encoder, {k: v.float() for k, v in out.items()}, Path(str(source)), "its DINOv2 keys")
    for m in encoder.modules():
        if isinstance(m, nn.LayerNorm):
            m.eps = DINOV2_LN_EPS
    return encoder


__all__ = ["save_encoder", "load_encoder", "is_dinov2_state_dict", "dinov2_to_vit", "dinov2_interpolate_pos_embed",
           "ENCODER_WEIGHTS", "IMAGENET_MEAN", "IMAGENET_STD"]
