"""ViTEncoder: shapes, the paper's token count, patch embedding and attention against slow
hand-written references, position-embedding interpolation, no coupling inside a batch."""

from __future__ import annotations

import math

import pytest
import torch

from video2reward.encoders.vit import (
    Attention,
    Block,
    PatchEmbed,
    ViTConfig,
    ViTEncoder,
    interpolate_pos_embed,
    num_tokens,
    sincos_pos_embed,
)
from video2reward.errors import ConfigError

SMALL = ViTConfig(image_size=32, patch_size=8, dim=32, depth=2, heads=4)


@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("size", [16, 32, 48, 64])
def test_output_and_token_shapes(batch: int, size: int) -> None:
    enc = ViTEncoder(SMALL)
    frames = torch.rand(batch, 3, size, size)
    n = (size // SMALL.patch_size) ** 2
    assert enc(frames).shape == (batch, SMALL.dim) and enc.dim == SMALL.dim
    tokens = enc.forward_tokens(frames)
    assert tokens.shape == (batch, 1 + n, SMALL.dim)
    torch.testing.assert_close(tokens[:, 0], enc(frames))  # forward is the class token


def test_default_config() -> None:
    enc = ViTEncoder()
    assert enc.dim == 128 and len(enc.blocks) == 4
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 128)


@pytest.mark.parametrize(("size", "patch"), [(64, 8), (32, 4), (48, 16), (8, 8)])
def test_position_embedding_count(size: int, patch: int) -> None:
    enc = ViTEncoder(ViTConfig(image_size=size, patch_size=patch, dim=16, depth=1, heads=2))
    assert enc.pos_embed.shape == (1, 1 + (size // patch) ** 2, 16)  # 1 + (S/P)^2
    assert num_tokens(size, patch) == 1 + (size // patch) ** 2 == enc.num_patches + 1


def test_patch_embedding_equals_unfold_and_matmul() -> None:
    torch.manual_seed(0)
    P, D = 2, 5
    embed = PatchEmbed(P, D)
    x = torch.randn(2, 3, 4, 6)  # a 2 x 3 grid of patches
    # Reference: cut out each patch in row-major order, flatten it as (C, P, P), multiply by E.
    patches = [x[:, :, i : i + P, j : j + P].reshape(2, -1) for i in range(0, 4, P) for j in range(0, 6, P)]
    flat = torch.stack(patches, dim=1)  # (B, N, 3 P^2)
    E = embed.proj.weight.reshape(D, -1).T  # (3 P^2, D)
    expected = flat @ E + embed.proj.bias  # (B, N, D)
    torch.testing.assert_close(embed(x), expected, rtol=1e-5, atol=1e-5)
    unfolded = torch.nn.functional.unfold(x, kernel_size=P, stride=P).transpose(1, 2)  # (B, N, 3 P^2)
    torch.testing.assert_close(unfolded, flat)


def _slow_attention(attn: Attention, x: torch.Tensor) -> torch.Tensor:
    """Multi-head attention written out head by head: softmax(Q K^T / sqrt(d)) V."""
    B, N, D = x.shape
    d = D // attn.heads
    qkv = x @ attn.qkv.weight.T + attn.qkv.bias  # (B, N, 3D): [Q | K | V]
    q, k, v = qkv[..., :D], qkv[..., D : 2 * D], qkv[..., 2 * D :]
    heads = []
    for h in range(attn.heads):
        qh, kh, vh = (t[..., h * d : (h + 1) * d] for t in (q, k, v))  # (B, N, d)
        weights = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(d), dim=-1)  # (B, N, N)
        heads.append(weights @ vh)  # (B, N, d)
    return torch.cat(heads, dim=-1) @ attn.proj.weight.T + attn.proj.bias  # (B, N, D)


def test_attention_equals_slow_reference() -> None:
    torch.manual_seed(0)
    attn = Attention(dim=8, heads=2)
    for p in attn.parameters():  # larger weights than the init, so the softmax is far from uniform
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 5, 8)
    torch.testing.assert_close(attn(x), _slow_attention(attn, x), rtol=1e-4, atol=1e-5)


def test_block_equals_slow_reference() -> None:
    torch.manual_seed(0)
    block = Block(dim=8, heads=2, mlp_ratio=2.0, dropout=0.0)
    for p in block.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 5, 8)

    def ln(t: torch.Tensor, m: torch.nn.LayerNorm) -> torch.Tensor:
        mu, var = t.mean(-1, keepdim=True), t.var(-1, unbiased=False, keepdim=True)
        return (t - mu) / torch.sqrt(var + m.eps) * m.weight + m.bias

    z = x + _slow_attention(block.attn, ln(x, block.norm1))  # (2)
    h = torch.nn.functional.gelu(ln(z, block.norm2) @ block.mlp.fc1.weight.T + block.mlp.fc1.bias)
    z = z + h @ block.mlp.fc2.weight.T + block.mlp.fc2.bias  # (3)
    torch.testing.assert_close(block(x), z, rtol=1e-4, atol=1e-5)


def test_gradients_reach_the_first_layer() -> None:
    enc = ViTEncoder(SMALL)
    enc(torch.rand(2, 3, 32, 32)).square().sum().backward()
    assert enc.patch_embed.proj.weight.grad.abs().sum() > 0
    assert enc.pos_embed.grad.abs().sum() > 0 and enc.cls_token.grad.abs().sum() > 0


def test_dropout_only_in_training() -> None:
    enc = ViTEncoder(ViTConfig(image_size=16, patch_size=4, dim=16, depth=1, heads=2, dropout=0.5))
    frames = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(frames), enc(frames))
        assert not torch.allclose(enc.train()(frames), enc.eval()(frames))


def test_init_follows_reference_vit() -> None:
    torch.manual_seed(0)
    enc = ViTEncoder(ViTConfig(dim=128, depth=2, pos_init="trunc_normal"))
    for t in (enc.pos_embed, enc.blocks[0].attn.qkv.weight, enc.blocks[1].mlp.fc2.weight):
        assert abs(t.std().item() - 0.02) < 0.004 and t.abs().max() <= 0.04 + 1e-6  # trunc-normal(0.02)
    assert torch.count_nonzero(enc.blocks[0].attn.qkv.bias) == 0


def test_sincos_position_init() -> None:
    table = sincos_pos_embed(8, 3)  # (1, 1 + 9, 8): rows in dims 0-3, columns in dims 4-7
    assert table.shape == (1, 10, 8)
    assert torch.count_nonzero(table[0, 0]) == 0  # class slot
    patch = table[0, 1 + 1 * 3 + 2]  # row 1, column 2; frequencies 1 and 1/100
    w = torch.tensor([1.0, 0.01])
    expected = torch.cat([torch.sin(1 * w), torch.cos(1 * w), torch.sin(2 * w), torch.cos(2 * w)])
    torch.testing.assert_close(patch, expected)
    enc = ViTEncoder(ViTConfig(image_size=16, patch_size=4, dim=8, depth=1, heads=2, pos_init="sincos"))
    torch.testing.assert_close(enc.pos_embed.data, sincos_pos_embed(8, 4))
    assert enc.pos_embed.requires_grad  # still learned
    with pytest.raises(ConfigError, match="divisible by 4"):
        ViTConfig(dim=6, heads=2, pos_init="sincos")
    with pytest.raises(ConfigError, match="trunc_normal, sincos"):
        ViTConfig(pos_init="fourier")


def test_pos_embed_interpolation() -> None:
    enc = ViTEncoder(SMALL)  # 4 x 4 grid
    assert enc.pos_embed_for(32, 32) is enc.pos_embed  # same size: untouched
    pos = enc.pos_embed_for(64, 48)  # 8 x 6 grid
    assert pos.shape == (1, 1 + 8 * 6, SMALL.dim)
    torch.testing.assert_close(pos[:, 0], enc.pos_embed[:, 0])  # the class slot is kept
    # A constant grid stays constant; resizing there and back is close to the identity for smooth grids.
    const = torch.ones(1, 1 + 16, 3)
    torch.testing.assert_close(interpolate_pos_embed(const, 4, (8, 8)), torch.ones(1, 65, 3))
    enc(torch.rand(1, 3, 64, 48)).square().sum().backward()
    assert enc.pos_embed.grad.abs().sum() > 0  # gradients flow through the interpolation


def test_size_not_divisible_by_patch_raises_value_error() -> None:
    enc = ViTEncoder(SMALL)
    with pytest.raises(ValueError, match="not divisible by the ViT patch size 8"):
        enc(torch.rand(1, 3, 30, 32))
    with pytest.raises(ValueError, match="patch size"):
        enc.forward_tokens(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.rand(1, 1, 32, 32))


def test_bad_configs_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="multiple of patch_size"):
        ViTConfig(image_size=30, patch_size=8)
    with pytest.raises(ConfigError, match="heads"):
        ViTConfig(dim=10, heads=4)
    with pytest.raises(ConfigError):
        ViTConfig(dropout=1.0)
