"""CNNEncoder: shapes at many sizes, gradients, no coupling between the frames of a batch."""

from __future__ import annotations

import pytest
import torch

from video2reward.encoders.cnn import CNNConfig, CNNEncoder, group_norm
from video2reward.errors import ConfigError

SMALL = CNNConfig(stem_channels=8, channels=(8, 16, 32), dim=24)


@pytest.mark.parametrize("size", [16, 20, 33, 64, 96])
@pytest.mark.parametrize("batch", [1, 3])
def test_output_shape_at_any_size(size: int, batch: int) -> None:
    enc = CNNEncoder(SMALL)
    out = enc(torch.rand(batch, 3, size, size))
    assert out.shape == (batch, SMALL.dim) and enc.dim == SMALL.dim
    assert torch.isfinite(out).all()


def test_default_config_shape_and_dim() -> None:
    enc = CNNEncoder()
    assert enc.dim == 128 == CNNConfig().dim
    assert enc(torch.rand(2, 3, 64, 64)).shape == (2, 128)
    assert enc(torch.rand(1, 3, 48, 80)).shape == (1, 128)  # non-square frames work too


def test_gradients_reach_the_first_layer() -> None:
    enc = CNNEncoder(SMALL)
    enc(torch.rand(2, 3, 32, 32)).square().sum().backward()
    stem = enc.stem[0].weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    assert all(p.grad is not None for p in enc.parameters())


def test_train_and_eval_modes_agree() -> None:
    """GroupNorm has no running statistics and there is no dropout: modes must not matter."""
    enc = CNNEncoder(SMALL)
    frames = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc.train()(frames), enc.eval()(frames))


def test_channels_last_does_not_change_outputs() -> None:
    torch.manual_seed(0)
    a = CNNEncoder(CNNConfig(stem_channels=8, channels=(8, 16), channels_last=True)).eval()
    b = CNNEncoder(CNNConfig(stem_channels=8, channels=(8, 16), channels_last=False)).eval()
    b.load_state_dict(a.state_dict())
    frames = torch.rand(2, 3, 24, 24)
    with torch.inference_mode():
        torch.testing.assert_close(a(frames), b(frames), rtol=1e-4, atol=1e-5)


def test_output_depends_on_the_input() -> None:
    enc = CNNEncoder(SMALL).eval()
    black, white = torch.zeros(1, 3, 32, 32), torch.ones(1, 3, 32, 32)
    with torch.no_grad():
        assert (enc(black) - enc(white)).abs().max() > 1e-3


def test_layer_norm_on_output_is_optional() -> None:
    enc = CNNEncoder(CNNConfig(stem_channels=8, channels=(8,), dim=16, out_norm=False))
    assert isinstance(enc.out_norm, torch.nn.Identity)
    out = CNNEncoder(CNNConfig(stem_channels=8, channels=(8,), dim=16))(torch.rand(4, 3, 16, 16))
    torch.testing.assert_close(out.mean(-1), torch.zeros(4), atol=1e-5, rtol=0)  # LayerNorm'd rows


def test_blocks_per_stage_adds_blocks() -> None:
    one = CNNEncoder(CNNConfig(channels=(8, 16), stem_channels=8))
    two = CNNEncoder(CNNConfig(channels=(8, 16), stem_channels=8, blocks_per_stage=2))
    assert len(two.stages) == 2 * len(one.stages) == 4
    assert two(torch.rand(1, 3, 16, 16)).shape == (1, 128)


def test_group_norm_picks_a_divisor() -> None:
    assert group_norm(32, 8).num_groups == 8
    assert group_norm(12, 8).num_groups == 6
    assert group_norm(7, 8).num_groups == 7
    assert group_norm(3, 8).num_groups == 3


def test_bad_inputs_and_configs() -> None:
    enc = CNNEncoder(SMALL)
    with pytest.raises(ValueError, match="too small"):
        enc(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        enc(torch.rand(3, 32, 32))
    with pytest.raises(ConfigError):
        CNNConfig(image_size=12)
    with pytest.raises(ConfigError):
        CNNConfig(dim=0)
    assert CNNConfig(channels=[4, 8]).channels == (4, 8)  # lists (from JSON) become tuples


@pytest.mark.parametrize("coords", [False, True])
def test_coordinate_channels_are_optional(coords: bool) -> None:
    enc = CNNEncoder(CNNConfig(stem_channels=8, channels=(8, 16), coords=coords))
    assert enc.stem[0].in_channels == (5 if coords else 3)
    assert enc(torch.rand(2, 3, 24, 40)).shape == (2, 128)
