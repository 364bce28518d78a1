"""`v2r export`: a model's per-frame scoring (embed + predict) as one TorchScript or ONNX file, for deployment
in a process that has torch (or an ONNX runtime) but not video2reward.

TorchScript and ONNX files hold code as well as weights: load them only from sources you trust. `v2r` itself
never loads them (nor any pickle) as a model: model folders stay safetensors + JSON, and `export` only writes.

The exported module (TorchScript: `torch.jit.load(FILE)`; ONNX: inputs and outputs named as below):

    mu, sigma, z = scorer(frames, initial, goal, previous)
        frames    (B, 3, S, S) float32 RGB in [0, 1]; S = the model's image_size, each frame made square the
                  way its frame_fit says (pad: letterbox, crop: centre square, stretch) with area resizing
        initial   (D,) features of the episode's first frame:   z0 = scorer.embed(first_frame[None])[0]
        goal      (D,) goal features; the model's stored goal is  scorer.goal  (TorchScript) / the metadata
        previous  (B, D) features of each frame's motion partner, motion_gap frames earlier (the initial
                  frame's features for the first motion_gap frames); heads without motion ignore it.
                  A temporal head (`--head temporal`, metadata context K > 1) takes (B, K-1, D) instead: the
                  features of each frame's K-1 predecessors, oldest first (the first frame's for frames before
                  it); keep the last K-1 frames' z as a rolling context
        -> mu (B,) the reward, sigma (B,) its std, z (B, D) the frames' features (keep them: the next frames'
           motion partners)

`motion_gap`, `context`, `image_size`, `frame_fit`, `head` and the feature size D are in the file's metadata (TorchScript:
the extra file `v2r.json`, read with torch.jit.load(FILE, _extra_files={"v2r.json": ""}); ONNX: metadata_props).
An ONNX graph keeps only the inputs its head reads (rank and success read frames alone): feed the names that
`session.get_inputs()` lists.

`--quantize int8` replaces every nn.Linear by a dynamically quantised int8 one (torch.ao dynamic quantisation,
CPU only): weights in int8, activations quantised per batch. The convolutions stay float32, so for the CNN
encoders only the projection and the head's MLP change; for the ViT every dense layer does.
"""

from __future__ import annotations

import copy
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from video2reward.errors import ConfigError
from video2reward.inference.model import RewardModel
from video2reward.inference.scorer import earlier_frames
from video2reward.rewards.ensemble import COMBINED_HEADS
from video2reward.rewards.registry import ENCODER_HEADS

FORMATS = ("torchscript", "onnx")
ONNX_NAMES = (["frames", "initial", "goal", "previous"], ["mu", "sigma", "z"])


class FrameScorer(nn.Module):
    """embed + predict of a reward head: forward(frames, initial, goal, previous) -> (mu, sigma, z)."""

    def __init__(self, head: nn.Module, dim: int):
        super().__init__()
        self.head = head
        goal = getattr(head, "goal", None)
        self.register_buffer("goal", goal.detach().clone() if goal is not None else torch.zeros(dim))

    def embed(self, frames: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float in [0, 1] -> (B, D) features."""
        return self.head.embed(frames)

    def forward(self, frames: torch.Tensor, initial: torch.Tensor, goal: torch.Tensor, previous: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        z = self.head.embed(frames)
        mu, sigma = self.head.predict(z, initial, goal, previous)
        return mu, sigma, z


def feature_dim(model: RewardModel) -> int:
    with torch.inference_mode():
        frame = torch.zeros(1, 3, model.image_size, model.image_size)
        return int(model.head.embed(frame.to(model.device)).shape[-1])


def scorer_for(model: RewardModel, quantize: str = "none") -> FrameScorer:
    """An eval-mode, CPU FrameScorer of `model` (a copy: the model is left as it was); int8 Linear layers with
    quantize='int8'."""
    if model.config.get("head") not in ENCODER_HEADS and model.config.get("head") not in COMBINED_HEADS:
        raise ConfigError(f"a {model.config.get('head')!r} model has no encoder head to export")
    head = copy.deepcopy(model.head).cpu().eval()
    scorer = FrameScorer(head, feature_dim(model)).eval()
    if quantize == "int8":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.ao's deprecation notice (moving to torchao)
            scorer = torch.ao.quantization.quantize_dynamic(scorer, {nn.Linear}, dtype=torch.qint8)
    elif quantize != "none":
        raise ConfigError(f"--quantize {quantize}: use int8 or none")
    return scorer


def example_inputs(model: RewardModel, dim: int, batch: int = 4, seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    s = model.image_size
    before = (model.context - 1,) if model.context > 1 else ()  # a temporal head's K-1 predecessors
    return (torch.rand(batch, 3, s, s, generator=g), torch.randn(dim, generator=g), torch.randn(dim, generator=g),
            torch.randn(batch, *before, dim, generator=g))


def check_inputs(eager: FrameScorer, size: int, batch: int = 8, seed: int = 1, context: int = 1
                 ) -> tuple[torch.Tensor, ...]:
    """Inputs as scoring makes them: random frames, the first one's features as initial, the stored goal,
    and each frame's predecessor as motion partner (context K > 1: its K-1 predecessors, (B, K-1, D))."""
    frames = torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        z = eager.embed(frames)
    earlier = earlier_frames(torch.arange(batch), 0 if context > 1 else 1, context).clamp(min=0)  # (B,) | (B, K-1)
    return frames, z[0].clone(), eager.goal.clone(), z[earlier].clone()


def metadata(model: RewardModel, dim: int, quantize: str) -> dict[str, Any]:
    return {"format": "video2reward.inference.export", "head": model.config["head"], "image_size": model.image_size,
            "frame_fit": model.frame_fit, "motion_gap": model.motion_gap, "context": model.context, "dim": dim,
            "quantize": quantize,
            "inputs": "frames (B,3,S,S) float [0,1], initial (D,), goal (D,), previous "
                      + ("(B,K-1,D) with K = context" if model.context > 1 else "(B,D)"),
            "outputs": "mu (B,), sigma (B,), z (B,D)"}


def trace(scorer: FrameScorer, inputs: tuple[torch.Tensor, ...]) -> torch.jit.ScriptModule:
    """TorchScript of forward and embed by tracing (batch size stays free: checked in tests/inference/test_export.py)."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings of the input-shape checks, which pass for these inputs
        return torch.jit.trace_module(scorer, {"forward": inputs, "embed": inputs[:1]}, check_trace=False)


def max_difference(a: tuple[torch.Tensor, ...], b: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Largest absolute difference per output: {"mu": ..., "sigma": ..., "z": ...}."""
    return {name: float((x - y).abs().max()) for name, x, y in zip(ONNX_NAMES[1], a, b)}


def export_model(model: RewardModel, out: str | os.PathLike, fmt: str = "torchscript", quantize: str = "none",
                 ) -> dict[str, Any]:
    """Write `model`'s FrameScorer to `out`; returns the metadata with `max_abs_diff`: per output, the largest
    difference of the exported module from the eager float model on 8 random frames with the stored goal and
    the first frame as initial (int8: the quantisation error; None for ONNX without onnxruntime installed)."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    if fmt == "onnx" and quantize != "none":
        raise ConfigError("--quantize int8 is for --format torchscript; quantise an ONNX file with "
                          "onnxruntime.quantization.quantize_dynamic")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    eager = scorer_for(model)
    dim = int(eager.goal.shape[0])
    scorer = scorer_for(model, quantize)
    meta = metadata(model, dim, quantize)
    check = check_inputs(eager, model.image_size, context=model.context)
    with torch.inference_mode():
        reference = eager(*check)
    if fmt == "torchscript":
        traced = trace(scorer, example_inputs(model, dim))
        with torch.inference_mode():
            meta["max_abs_diff"] = max_difference(traced(*check), reference)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch points to torch.export; jit.load still works
            torch.jit.save(traced, str(out), _extra_files={"v2r.json": json.dumps(meta)})
        return meta
    meta["max_abs_diff"] = export_onnx(scorer, example_inputs(model, dim), out, meta, check, reference)
    return meta


def export_onnx(scorer: FrameScorer, inputs: tuple[torch.Tensor, ...], out: Path, meta: dict[str, Any],
                check: tuple[torch.Tensor, ...], reference: tuple[torch.Tensor, ...]) -> float | None:
    """ONNX through torch's TorchScript-based exporter (needs the `onnx` package: pip install onnx); checked
    against the eager outputs with onnxruntime when it is installed."""
    try:
        import onnx  # here: optional (the [export] extra)
    except ImportError:
        raise ConfigError("--format onnx needs the onnx package (pip install onnx, or the project's [export] "
                          "extra); --format torchscript works without it") from None
    names_in, names_out = ONNX_NAMES
    dynamic = {"frames": {0: "batch"}, "previous": {0: "batch"}, "mu": {0: "batch"}, "sigma": {0: "batch"},
               "z": {0: "batch"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice, TracerWarnings
        torch.onnx.export(scorer, inputs, str(out), dynamo=False, input_names=names_in, output_names=names_out,
                          dynamic_axes=dynamic, opset_version=17)
    proto = onnx.load(str(out))
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, json.dumps(value)
    onnx.save(proto, str(out))
    try:
        import onnxruntime  # here: optional (the [export] extra)
    except ImportError:
        return None
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    given = {name: x.numpy() for name, x in zip(names_in, check)}
    got = session.run(None, {i.name: given[i.name] for i in session.get_inputs()})  # unused inputs are dropped
    return max_difference(tuple(torch.from_numpy(g) for g in got), reference)
