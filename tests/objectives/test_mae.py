"""The masked autoencoder objective: patches, masking, the loss, the asymmetric encoder, a tiny training run."""

import pytest
import torch

from video2reward.encoders import build_encoder
from video2reward.encoders.vit import ViTConfig, ViTEncoder
from video2reward.errors import ConfigError
from video2reward.objectives.mae import (
    MAE,
    MAEConfig,
    mask_from_ids,
    masked_patch_loss,
    num_visible,
    patchify,
    shuffle_ids,
    unpatchify,
)
from video2reward.video.frame_sampler import FrameBatch

torch.set_num_threads(1)


def tiny_mae(**overrides) -> MAE:
    torch.manual_seed(0)
    enc = ViTEncoder(ViTConfig(image_size=16, patch_size=4, dim=32, depth=1, heads=2))
    options = dict(decoder_dim=32, decoder_depth=1, decoder_heads=2)
    options.update(overrides)
    return MAE(enc, MAEConfig(**options))


def frame_batch(frames: torch.Tensor) -> FrameBatch:
    n = frames.shape[0]
    return FrameBatch(frames, torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.arange(n))


def test_patchify_round_trip_and_order():
    imgs = torch.rand(2, 3, 8, 12)
    patches = patchify(imgs, 4)
    assert patches.shape == (2, 6, 48)
    assert torch.equal(unpatchify(patches, 4, (2, 3)), imgs)
    square = torch.rand(3, 3, 8, 8)
    assert torch.equal(unpatchify(patchify(square, 4), 4), square)
    # Patch 4 is row 1, column 1 (row-major, like PatchEmbed); pixels are (row, col, channel).
    assert torch.equal(patches[0, 4].reshape(4, 4, 3), imgs[0, :, 4:8, 4:8].permute(1, 2, 0))


def test_masking_counts_differ_per_sample_and_are_deterministic():
    N, ratio = 16, 0.75
    g = torch.Generator().manual_seed(3)
    ids = shuffle_ids(8, N, g)
    keep = num_visible(N, ratio)
    assert keep == round(N * (1 - ratio)) == 4
    mask = mask_from_ids(ids, keep)
    assert mask.shape == (8, N)
    assert torch.equal(mask.sum(1), torch.full((8,), float(N - keep)))
    for b in range(8):  # the kept patches are exactly the first `keep` ids
        assert set(torch.nonzero(mask[b] == 0).flatten().tolist()) == set(ids[b, :keep].tolist())
    assert len({tuple(m.tolist()) for m in mask}) > 1  # different per sample
    assert torch.equal(ids, shuffle_ids(8, N, torch.Generator().manual_seed(3)))  # same seed, same masks

    mae = tiny_mae()
    frames = torch.randint(0, 256, (4, 3, 20, 20), dtype=torch.uint8)
    b1 = mae.make_batch(frame_batch(frames), torch.Generator().manual_seed(7))
    b2 = mae.make_batch(frame_batch(frames), torch.Generator().manual_seed(7))
    assert b1["frames"].shape == (4, 3, 16, 16) and b1["ids_shuffle"].shape == (4, 16)
    assert torch.equal(b1["frames"], b2["frames"]) and torch.equal(b1["ids_shuffle"], b2["ids_shuffle"])
    assert 0.0 <= b1["frames"].min() and b1["frames"].max() <= 1.0


def test_masked_loss_matches_hand_written_reference():
    pred = torch.tensor([[[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0], [2.0, 0.0, 2.0]]])
    patches = torch.tensor([[[1.0, 2.0, 6.0], [1.0, 1.0, 1.0]], [[0.0, 1.0, 2.0], [4.0, 4.0, 4.0]]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    # Raw pixels: per-patch MSEs of the masked patches are 9/3, (1+0+1)/3, (4+16+4)/3 -> mean 35/9.
    assert masked_patch_loss(pred, patches, mask, norm_pix_loss=False).item() == pytest.approx(35 / 9)
    # Normalised: [1,2,6] has mean 3, unbiased var 7; [0,1,2] mean 1, var 1; [4,4,4] mean 4, var 0.
    eps = 1e-6
    t0 = [(v - 3) / (7 + eps) ** 0.5 for v in (1, 2, 6)]
    t2 = [(v - 1) / (1 + eps) ** 0.5 for v in (0, 1, 2)]
    t3 = [0.0, 0.0, 0.0]
    mse = lambda p, t: sum((a - b) ** 2 for a, b in zip(p, t)) / 3  # noqa: E731
    expected = (mse([1, 2, 3], t0) + mse([1, 1, 1], t2) + mse([2, 0, 2], t3)) / 3
    assert masked_patch_loss(pred, patches, mask, norm_pix_loss=True).item() == pytest.approx(expected, rel=1e-5)


def test_encoder_sees_only_visible_tokens_and_decoder_all():
    mae = tiny_mae(mask_ratio=0.75)
    seen = {}
    mae.encoder.blocks[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("enc", a[0].shape))
    mae.decoder.blocks[0].register_forward_pre_hook(lambda m, a: seen.__setitem__("dec", a[0].shape))
    frames = torch.randint(0, 256, (3, 3, 16, 16), dtype=torch.uint8)
    batch = mae.make_batch(frame_batch(frames), torch.Generator().manual_seed(0))
    loss, metrics = mae(batch)
    assert seen["enc"] == (3, 1 + 4, 32)  # class token + 25% of 16 patches, no mask tokens
    assert seen["dec"] == (3, 1 + 16, 32)
    assert torch.isfinite(loss) and set(metrics) == {"loss", "std"}
    assert metrics["loss"] == pytest.approx(loss.item()) and metrics["std"] > 0
    loss.backward()
    assert mae.encoder.patch_embed.proj.weight.grad.abs().sum() > 0 and mae.decoder.mask_token.grad is not None
    # Visible tokens get the same embedding as in the full encoder (same scaling and positions).
    enc_tokens = mae.encoder.embed(batch["frames"])  # (B, 1 + N, D)
    latent_in = {}
    mae.encoder.blocks[0].register_forward_pre_hook(lambda m, a: latent_in.__setitem__("x", a[0]))
    mae.forward_encoder(batch["frames"], batch["ids_shuffle"])
    keep = batch["ids_shuffle"][:, :4]
    expected = torch.cat([enc_tokens[:, :1], torch.gather(enc_tokens[:, 1:], 1, keep[..., None].expand(-1, -1, 32))], 1)
    assert torch.allclose(latent_in["x"], expected, atol=1e-6)


def test_tiny_mae_learns_to_reconstruct_flat_colours():
    """Every frame is one random flat colour: the hidden patches can only be right if the visible ones are read."""
    mae = tiny_mae(norm_pix_loss=False, min_crop_scale=1.0)
    opt = torch.optim.AdamW(mae.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(0)

    def flat_frames(n):
        return torch.randint(0, 256, (n, 3, 1, 1), generator=g, dtype=torch.uint8).expand(n, 3, 16, 16).contiguous()

    eval_frames = flat_frames(32)
    eval_ids = shuffle_ids(32, 16, torch.Generator().manual_seed(1))

    def masked_error():
        out = mae.reconstruct(eval_frames, ids_shuffle=eval_ids)
        err = (out["pred"] - eval_frames.float() / 255).pow(2).mean(1, keepdim=True)  # (B, 1, H, W)
        return ((err * out["mask"]).sum() / out["mask"].sum()).item()

    start = masked_error()
    for _ in range(100):
        loss, _ = mae(mae.make_batch(frame_batch(flat_frames(16)), g))
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = masked_error()
    colour_var = (eval_frames.float() / 255).var(0).mean().item()  # error of always guessing the mean colour
    assert end < start / 20, (start, end)
    assert end < 0.02 and end < colour_var / 3, (end, colour_var)
    out = mae.reconstruct(eval_frames, ids_shuffle=eval_ids)
    visible = out["mask"] == 0
    assert torch.equal(out["composite"].masked_select(visible), (eval_frames.float() / 255).masked_select(visible))


def test_mae_rejects_non_vit_encoder_and_bad_config():
    with pytest.raises(ConfigError, match="MAE needs --encoder vit"):
        MAE(build_encoder("cnn", 16), MAEConfig())
    with pytest.raises(ConfigError):
        MAEConfig(mask_ratio=1.0)
    with pytest.raises(ConfigError):
        MAEConfig(decoder_dim=30, decoder_heads=4)
