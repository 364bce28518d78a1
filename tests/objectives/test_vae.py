"""The VAE objective: the KL against torch.distributions, the reparameterised ELBO, and reconstructions that
improve with training."""

import torch
from torch.distributions import Normal, kl_divergence

from video2reward.encoders import build_encoder
from video2reward.objectives import build_objective
from video2reward.objectives.vae import VAE, VAEConfig, gaussian_kl
from video2reward.video.frame_sampler import FrameBatch

torch.set_num_threads(1)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 7, generator=g), torch.randn(5, 7, generator=g)
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), expected)


def test_loss_is_the_negative_elbo_per_pixel_value():
    torch.manual_seed(0)
    objective = VAE(build_encoder("cnn", 32), VAEConfig(min_crop_scale=1.0, beta=0.5, pixel_std=0.2))
    frames = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    batch = objective.make_batch(FrameBatch(frames, torch.zeros(3, dtype=torch.long), torch.zeros(3),
                                            torch.arange(3)), torch.Generator().manual_seed(0))
    loss, metrics = objective(batch)
    with torch.no_grad():  # by hand, from the same noise
        x = batch["frames"]
        mu = objective.encoder(x)
        logvar = objective.logvar(mu)
        x_hat = objective.decoder(mu + (0.5 * logvar).exp() * batch["eps"])
        nll = ((x - x_hat) ** 2).sum((1, 2, 3)) / (2 * 0.2**2)
        expected = (nll + 0.5 * gaussian_kl(mu, logvar)).mean() / (3 * 32 * 32)
    torch.testing.assert_close(loss, expected)
    assert x_hat.shape == x.shape and 0 <= x_hat.min() and x_hat.max() <= 1
    assert metrics["kl"] > 0


def test_reconstructions_improve_and_any_frame_size_decodes():
    torch.manual_seed(0)
    objective = build_objective("vae", build_encoder("cnn", 32, channels=(16, 32), dim=32),
                                decoder_channels=32, min_crop_scale=1.0)
    frames = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    for i in range(8):  # a bright square at eight places: learnable, and a blurry mean picture fails
        frames[i, :, 4 * (i % 4) : 4 * (i % 4) + 12, 4 * (i // 4) : 4 * (i // 4) + 12] = 255
    fb = FrameBatch(frames, torch.zeros(8, dtype=torch.long), torch.zeros(8), torch.arange(8))
    batch = objective.make_batch(fb, torch.Generator().manual_seed(0))
    opt = torch.optim.AdamW(objective.parameters(), lr=3e-3)
    first = objective(batch)[1]["mse"]
    for _ in range(80):
        loss, _ = objective(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert objective(batch)[1]["mse"] < 0.3 * first
    odd = VAE(build_encoder("cnn", 40), VAEConfig())  # 40 px: not a multiple of 16
    assert odd.reconstruct(torch.rand(2, 3, 40, 40)).shape == (2, 3, 40, 40)
