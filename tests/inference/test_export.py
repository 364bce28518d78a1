"""`v2r export`: TorchScript (and ONNX) scorers equal to the eager model, int8 within its documented tolerance,
the documented inputs reproducing `model.score`, the command, and model loading that never takes TorchScript."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

import video2reward
from tests.helpers.tiny_heads import HELD_OUT, fit
from video2reward.cli import main
from video2reward.encoders import build_encoder
from video2reward.errors import ModelFileError
from video2reward.evaluation.metrics import spearman
from video2reward.inference.export import example_inputs, export_model, scorer_for
from video2reward.inference.model import RewardModel
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.rewards.registry import ENCODER_HEADS, head_config_dict
from video2reward.rewards.triplets import TripletSampler
from video2reward.testing.synthetic import moving_square

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

INT8_TOLERANCE = 0.02  # |mu_int8 - mu| of the trained tiny progress model below (measured: at most 0.010, mean 0.002)


def fresh_model(kind: str, encoder: str = "cnn") -> RewardModel:
    torch.manual_seed(0)
    options = {"channels": (8, 16), "dim": 16} if encoder == "cnn" else {"dim": 32, "depth": 1, "heads": 2}
    enc = build_encoder(encoder, 32, **options)
    config_cls, head_cls = ENCODER_HEADS[kind]
    head = head_cls(enc, config_cls(**({"motion_gap": 2} if kind == "progress" else {})))
    with torch.no_grad():
        for buffer in head.buffers():
            if buffer.is_floating_point() and buffer.ndim <= 1 and buffer.numel() > 1:
                buffer.normal_()  # a stored goal a fresh head would not have
    return RewardModel(head, {"head": kind, "image_size": 32, "head_config": head_config_dict(head),
                              "encoder": {"name": encoder, "config": asdict(enc.config)}}, precision="fp32")


@pytest.fixture(scope="module")
def trained() -> RewardModel:
    model = fit(lambda enc: ProgressHead(enc, ProgressConfig(hidden=64, motion_gap=2)),
                lambda d: TripletSampler(d, frames_per_video=8, videos_per_batch=4, triplets_per_video=32,
                                         motion_gap=2))
    enc = model.head.encoder
    model.config = {"head": "progress", "image_size": 32, "head_config": head_config_dict(model.head),
                    "encoder": {"name": "cnn", "config": asdict(enc.config)}}
    return model


def score_exported(scorer, frames: np.ndarray, gap: int, context: int = 1) -> np.ndarray:
    """Per-frame rewards through the exported interface, as its docstring tells a deployment to call it."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    with torch.inference_mode():
        initial = scorer.embed(x[:1])[0]
        z = scorer.embed(x)
        previous = z[(torch.arange(len(x)) - gap).clamp(min=0)]  # frame t - gap, the first frame before that
        if context > 1:  # a temporal head: frames t-K+1 .. t-1, the first frame before that, (B, K-1, D)
            previous = z[(torch.arange(len(x))[:, None] + torch.arange(1 - context, 0)).clamp(min=0)]
        mu, _, _ = scorer(x, initial, scorer.goal, previous)
    return mu.numpy()


@pytest.mark.parametrize("encoder", ["cnn", "vit"])
@pytest.mark.parametrize("kind", list(ENCODER_HEADS))
def test_torchscript_equals_eager(kind: str, encoder: str, tmp_path: Path) -> None:
    model = fresh_model(kind, encoder)
    meta = export_model(model, tmp_path / "m.pt")
    assert max(meta["max_abs_diff"].values()) <= 1e-5
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    eager = scorer_for(model)
    for batch in (1, 7):  # traced at batch 4: the batch size stays free
        inputs = example_inputs(model, int(eager.goal.shape[0]), batch=batch, seed=batch)
        with torch.inference_mode():
            for got, expected in zip(scripted(*inputs), eager(*inputs)):
                torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    frames = moving_square(15, 32)
    np.testing.assert_allclose(score_exported(scripted, frames, model.motion_gap, model.context),
                               model.score(frames).mu, atol=1e-5)
    extra = {"v2r.json": ""}
    torch.jit.load(str(tmp_path / "m.pt"), _extra_files=extra)
    info = json.loads(extra["v2r.json"])
    assert info["head"] == kind and info["image_size"] == 32 and info["motion_gap"] == model.motion_gap


@pytest.mark.slow
def test_int8_stays_within_tolerance(trained: RewardModel, tmp_path: Path) -> None:
    meta = export_model(trained, tmp_path / "q.pt", quantize="int8")
    assert meta["quantize"] == "int8" and meta["max_abs_diff"]["mu"] <= INT8_TOLERANCE
    scripted = torch.jit.load(str(tmp_path / "q.pt"))
    for y in HELD_OUT:
        frames = moving_square(25, 32, y=y)
        eager, int8 = trained.score(frames).mu, score_exported(scripted, frames, trained.motion_gap)
        assert np.abs(int8 - eager).max() <= INT8_TOLERANCE
        assert spearman(int8, eager) > 0.99


@pytest.mark.slow
def test_onnx_equals_eager(trained: RewardModel, tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    meta = export_model(trained, tmp_path / "m.onnx", "onnx")
    assert max(meta["max_abs_diff"].values()) <= 1e-5
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    frames = moving_square(9, 32)
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    eager = scorer_for(trained)
    with torch.inference_mode():
        z = eager.embed(x)
        inputs = (x, z[0], eager.goal, z[(torch.arange(9) - 2).clamp(min=0)])
    feed = dict(zip(["frames", "initial", "goal", "previous"], (t.numpy() for t in inputs)))
    mu, _, _ = session.run(None, {i.name: feed[i.name] for i in session.get_inputs()})
    np.testing.assert_allclose(mu, trained.score(frames).mu, atol=1e-5)


@pytest.mark.slow
def test_export_command(trained: RewardModel, tmp_path: Path, capsys) -> None:
    trained.save(tmp_path / "model")
    assert main(["export", str(tmp_path / "model"), "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "max |exported - eager|" in out and "previous (B,D)" in out
    assert main(["export", str(tmp_path / "model"), "--quantize", "int8", "--out", str(tmp_path / "q.pt")]) == 0
    assert (tmp_path / "q.pt").stat().st_size > 0
    assert main(["export", str(tmp_path / "model"), "--format", "onnx", "--quantize", "int8",
                 "--out", str(tmp_path / "q.onnx")]) == 2
    assert "torchscript" in capsys.readouterr().err


@pytest.mark.slow
def test_a_torchscript_file_is_never_loaded_as_a_model(trained: RewardModel, tmp_path: Path) -> None:
    folder = tmp_path / "exported"
    export_model(trained, folder / "model.pt")
    with pytest.raises(ModelFileError, match="never"):
        video2reward.load(folder)


@pytest.mark.parametrize("sequence", ["transformer", "ssm"])
def test_temporal_heads_export_with_their_rolling_context(sequence: str, tmp_path: Path) -> None:
    """(the default frame stack is exported in test_torchscript_equals_eager) previous is (B, K-1, D) for them."""
    from video2reward.rewards.temporal import TemporalConfig, TemporalProgressHead

    torch.manual_seed(0)
    enc = build_encoder("cnn", 32, channels=(8, 16), dim=16)
    head = TemporalProgressHead(enc, TemporalConfig(context=5, sequence=sequence))
    head.goal.normal_()
    model = RewardModel(head, {"head": "temporal", "image_size": 32, "head_config": head_config_dict(head),
                               "encoder": {"name": "cnn", "config": asdict(enc.config)}}, precision="fp32")
    meta = export_model(model, tmp_path / "m.pt")
    assert meta["context"] == 5 and "(B,K-1,D)" in meta["inputs"] and max(meta["max_abs_diff"].values()) <= 1e-5
    scripted = torch.jit.load(str(tmp_path / "m.pt"))
    frames = moving_square(13, 32)
    np.testing.assert_allclose(score_exported(scripted, frames, 0, 5), model.score(frames).mu, atol=1e-5)
