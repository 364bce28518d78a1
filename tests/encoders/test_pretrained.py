"""Encoder files: save/load round trips, a reward model's encoder, and DINOv2-style checkpoints checked
against a hand-written DINOv2 forward pass (LayerScale, ImageNet-normalised input, LayerNorm eps 1e-6)."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from video2reward.core.files import save_tensors, write_json
from video2reward.encoders import build_encoder
from video2reward.encoders.pretrained import load_encoder, save_encoder
from video2reward.errors import ConfigError, ModelFileError
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead

TINY = {"cnn": dict(channels=(8, 16), dim=16), "vit": dict(patch_size=8, dim=16, depth=1, heads=2)}
MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
P, DIM, DEPTH, HEADS, GRID = 7, 48, 2, 3, 4  # the tiny DINOv2: patch 7, native grid 4 x 4 (28 px)


def tiny(name: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_encoder(name, 32 if name == "cnn" else 16, **TINY[name]).eval()


@pytest.mark.parametrize("name", ["cnn", "vit"])
def test_save_load_round_trip_gives_identical_outputs(tmp_path: Path, name: str) -> None:
    enc, frames = tiny(name), torch.rand(2, 3, 32, 32)
    save_encoder(tmp_path / "e", enc, name, extra={"note": "x"})
    assert sorted(p.name for p in (tmp_path / "e").iterdir()) == ["config.json", "encoder.safetensors"]
    config = json.loads((tmp_path / "e" / "config.json").read_text())
    assert config["kind"] == "encoder" and config["format_version"] == 1 and config["note"] == "x"
    assert config["encoder"]["name"] == name and len(config["weights_sha256"]) == 64
    for source in (tmp_path / "e", tmp_path / "e" / "encoder.safetensors"):  # the folder, or the file in it
        loaded, info = load_encoder(source)
        assert type(loaded) is type(enc) and info["encoder"] == config["encoder"]
        with torch.no_grad():
            assert torch.equal(loaded(frames), enc(frames))


def test_save_encoder_refuses_wrong_name_and_reserved_extra(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a 'vit' encoder"):
        save_encoder(tmp_path, tiny("cnn"), "vit")
    with pytest.raises(ConfigError, match="reserved"):
        save_encoder(tmp_path, tiny("cnn"), "cnn", extra={"kind": "x"})


def test_a_reward_models_encoder_can_be_reused(tmp_path: Path) -> None:
    enc = tiny("cnn")
    head = ProgressHead(enc, ProgressConfig())
    config = {"head": "progress", "image_size": 32, "head_config": dataclasses.asdict(head.config),
              "encoder": {"name": "cnn", "config": json.loads(json.dumps(dataclasses.asdict(enc.config)))}}
    RewardModel(head, config).save(tmp_path / "m")
    frames = torch.rand(2, 3, 32, 32)
    for source in (tmp_path / "m", tmp_path / "m" / "model.safetensors"):
        loaded, info = load_encoder(source)
        assert info["head"] == "progress"
        with torch.no_grad():
            assert torch.equal(loaded(frames), enc(frames))


def test_a_safetensors_file_needs_its_json(tmp_path: Path) -> None:
    enc = tiny("vit")
    save_tensors(tmp_path / "w.safetensors", enc.state_dict())
    with pytest.raises(ModelFileError, match=r"w\.safetensors: no config JSON beside it"):
        load_encoder(tmp_path / "w.safetensors")
    write_json(tmp_path / "w.json", {"name": "vit", "config": dataclasses.asdict(enc.config)})  # bare entry
    loaded, _ = load_encoder(tmp_path / "w.safetensors")
    frames = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(loaded(frames), enc(frames))
    write_json(tmp_path / "w.json", {"encoder": {"name": "vit", "config": {**dataclasses.asdict(enc.config),
                                                                           "dim": 32, "heads": 2}}})
    with pytest.raises(ModelFileError, match=r"w\.safetensors: weights do not fit .*w\.json.*shape mismatches"):
        load_encoder(tmp_path / "w.safetensors")
    with pytest.raises(ConfigError, match="only apply to DINOv2"):
        load_encoder(tmp_path / "w.safetensors", image_size=224)


def test_absent_and_damaged_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"nope: not found"):
        load_encoder(tmp_path / "nope")
    with pytest.raises(ModelFileError, match="holds neither"):
        load_encoder(tmp_path)
    save_encoder(tmp_path / "e", tiny("cnn"), "cnn")
    weights, config = tmp_path / "e" / "encoder.safetensors", tmp_path / "e" / "config.json"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"encoder\.safetensors: contents do not match the hash"):
        load_encoder(tmp_path / "e")
    config.write_text("{not json")
    with pytest.raises(ModelFileError, match=r"config\.json: not valid JSON"):
        load_encoder(tmp_path / "e")
    config.unlink()
    with pytest.raises(ModelFileError, match=r"config\.json: missing"):
        load_encoder(tmp_path / "e")
    (tmp_path / "t.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")  # truncated
    with pytest.raises(ModelFileError, match=r"t\.safetensors: not a readable safetensors file"):
        load_encoder(tmp_path / "t.safetensors")


def test_pickles_are_refused_with_a_conversion_recipe(tmp_path: Path) -> None:
    torch.save({"w": torch.zeros(2)}, tmp_path / "dino.pth")
    (tmp_path / "disguised.safetensors").write_bytes((tmp_path / "dino.pth").read_bytes())
    for source in (tmp_path / "dino.pth", tmp_path / "disguised.safetensors", tmp_path):
        with pytest.raises(ModelFileError, match="never loads pickles") as info:
            load_encoder(source)
        message = str(info.value)
        assert str(source) in message and "weights_only=True" in message and "save_file(" in message


# ---- DINOv2-style checkpoints -----------------------------------------------------------------------------
def dinov2_state_dict(registers: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under DINOv2's key names, scaled so that every part of the network matters."""
    g = torch.Generator().manual_seed(1)

    def r(*shape: int, std: float = 0.2, mean: float = 0.0) -> torch.Tensor:
        return mean + std * torch.randn(*shape, generator=g)

    sd = {"patch_embed.proj.weight": r(DIM, 3, P, P, std=0.1), "patch_embed.proj.bias": r(DIM),
          "cls_token": r(1, 1, DIM, std=1.0), "pos_embed": r(1, 1 + GRID**2, DIM, std=1.0),
          "mask_token": r(1, DIM), "norm.weight": r(DIM, mean=1.0), "norm.bias": r(DIM)}
    for i in range(DEPTH):
        b = f"blocks.{i}."
        sd |= {b + "norm1.weight": r(DIM, mean=1.0), b + "norm1.bias": r(DIM),
               b + "attn.qkv.weight": r(3 * DIM, DIM, std=0.3), b + "attn.qkv.bias": r(3 * DIM),
               b + "attn.proj.weight": r(DIM, DIM), b + "attn.proj.bias": r(DIM), b + "ls1.gamma": r(DIM, mean=0.5),
               b + "norm2.weight": r(DIM, mean=1.0), b + "norm2.bias": r(DIM),
               b + "mlp.fc1.weight": r(4 * DIM, DIM), b + "mlp.fc1.bias": r(4 * DIM),
               b + "mlp.fc2.weight": r(DIM, 4 * DIM, std=0.1), b + "mlp.fc2.bias": r(DIM),
               b + "ls2.gamma": r(DIM, mean=0.5)}
    if registers:
        sd["register_tokens"] = r(1, registers, DIM)
    return sd


def dinov2_reference(sd: dict[str, torch.Tensor], frames: torch.Tensor) -> torch.Tensor:
    """DINOv2's `x_norm_clstoken`, written out: frames (B, 3, H, W) in [0, 1] -> (B, DIM)."""
    ln = lambda t, name: F.layer_norm(t, (DIM,), sd[name + ".weight"], sd[name + ".bias"], eps=1e-6)  # noqa: E731
    x = (frames - MEAN[:, None, None]) / STD[:, None, None]  # ImageNet normalisation
    t = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=P)  # (B, D, h, w)
    h, w = t.shape[-2:]
    t = torch.cat([sd["cls_token"].expand(len(x), -1, -1), t.flatten(2).transpose(1, 2)], dim=1)
    pos = sd["pos_embed"]
    if (h, w) != (GRID, GRID):  # DINOv2's interpolate_pos_encoding: bicubic, scale (g + 0.1) / M
        grid = pos[:, 1:].reshape(1, GRID, GRID, DIM).permute(0, 3, 1, 2)
        grid = F.interpolate(grid, scale_factor=((h + 0.1) / GRID, (w + 0.1) / GRID), mode="bicubic")
        pos = torch.cat([pos[:, :1], grid.permute(0, 2, 3, 1).reshape(1, h * w, DIM)], dim=1)
    t = t + pos
    hd = DIM // HEADS
    for i in range(DEPTH):
        b = f"blocks.{i}."
        qkv = ln(t, b + "norm1") @ sd[b + "attn.qkv.weight"].T + sd[b + "attn.qkv.bias"]  # (B, N, 3D)
        q, k, v = qkv.reshape(len(t), -1, 3, HEADS, hd).permute(2, 0, 3, 1, 4)  # (B, heads, N, hd) each
        attn = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v
        a = attn.transpose(1, 2).reshape(len(t), -1, DIM) @ sd[b + "attn.proj.weight"].T + sd[b + "attn.proj.bias"]
        t = t + sd.get(b + "ls1.gamma", 1.0) * a
        m = F.gelu(ln(t, b + "norm2") @ sd[b + "mlp.fc1.weight"].T + sd[b + "mlp.fc1.bias"])
        t = t + sd.get(b + "ls2.gamma", 1.0) * (m @ sd[b + "mlp.fc2.weight"].T + sd[b + "mlp.fc2.bias"])
    return ln(t, "norm")[:, 0]


@pytest.mark.parametrize("image_size", [GRID * P, 6 * P])  # the native grid, and a resized one
def test_dinov2_checkpoint_gives_dinov2s_class_token(tmp_path: Path, image_size: int) -> None:
    sd = dinov2_state_dict()
    save_tensors(tmp_path / "dino.safetensors", sd)
    enc, info = load_encoder(tmp_path / "dino.safetensors", image_size=image_size, heads=HEADS)
    assert info["source"]["layout"] == "dinov2" and info["encoder"]["config"]["depth"] == DEPTH
    assert enc.config.patch_size == P and enc.config.image_size == image_size and enc.dim == DIM
    frames = torch.rand(2, 3, image_size, image_size)
    with torch.no_grad():
        ours, reference = enc(frames), dinov2_reference(sd, frames)
    assert reference.abs().mean() > 0.3  # not a degenerate comparison
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)


def test_dinov2_variants_prefix_chunks_and_a_save_round_trip(tmp_path: Path) -> None:
    sd = dinov2_state_dict()
    # a "teacher.backbone."-style prefix, and FSDP block chunks: block i saved as blocks.<chunk>.<i>.
    wrapped = {"backbone." + re.sub(r"^blocks\.(\d+)\.", r"blocks.\1.\1.", k): v for k, v in sd.items()}
    wrapped["dino_head.weight"] = torch.zeros(2)  # outside the backbone: ignored
    assert "backbone.blocks.1.1.ls2.gamma" in wrapped
    save_tensors(tmp_path / "chunked.safetensors", wrapped)
    enc, _ = load_encoder(tmp_path / "chunked.safetensors", image_size=GRID * P, heads=HEADS)
    frames = torch.rand(1, 3, GRID * P, GRID * P)
    with torch.no_grad():
        torch.testing.assert_close(enc(frames), dinov2_reference(sd, frames), atol=1e-4, rtol=0)
        save_encoder(tmp_path / "converted", enc, "vit", extra={"source": "tiny dinov2"})
        again, info = load_encoder(tmp_path / "converted")
        assert info["encoder"]["layer_norm_eps"] == 1e-6 and torch.equal(again(frames), enc(frames))


def test_dino_v1_layout_without_layerscale_needs_to_be_named(tmp_path: Path) -> None:
    sd = {k: v for k, v in dinov2_state_dict().items() if ".ls" not in k and k != "mask_token"}
    save_tensors(tmp_path / "dino1.safetensors", sd)
    with pytest.raises(ModelFileError, match=r"dino1\.safetensors: no config JSON .* layout='dinov2'"):
        load_encoder(tmp_path / "dino1.safetensors")
    enc, _ = load_encoder(tmp_path / "dino1.safetensors", layout="dinov2", image_size=GRID * P, heads=HEADS)
    frames = torch.rand(1, 3, GRID * P, GRID * P)
    with torch.no_grad():
        torch.testing.assert_close(enc(frames), dinov2_reference(sd, frames), atol=1e-4, rtol=0)


def test_dinov2_refusals(tmp_path: Path) -> None:
    save_tensors(tmp_path / "reg.safetensors", dinov2_state_dict(registers=4))
    with pytest.raises(ModelFileError, match=r"reg\.safetensors: a DINOv2 model with 4 register tokens"):
        load_encoder(tmp_path / "reg.safetensors", heads=HEADS)
    save_tensors(tmp_path / "dino.safetensors", dinov2_state_dict())
    with pytest.raises(ModelFileError, match=r"dino\.safetensors: width 48 .* pass heads="):
        load_encoder(tmp_path / "dino.safetensors")
    with pytest.raises(ConfigError, match="multiple of the checkpoint's patch size 7"):
        load_encoder(tmp_path / "dino.safetensors", heads=HEADS, image_size=30)
    save_tensors(tmp_path / "odd.safetensors", {**dinov2_state_dict(), "head.weight": torch.zeros(2, DIM)})
    with pytest.raises(ModelFileError, match=r"odd\.safetensors: keys our ViT has no place for: \['head\.weight'\]"):
        load_encoder(tmp_path / "odd.safetensors", heads=HEADS, image_size=GRID * P)
