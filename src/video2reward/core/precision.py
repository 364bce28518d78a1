"""Number formats: `--precision bf16` runs forward passes (training and scoring) under torch.autocast in
bfloat16 on CUDA: matrix products and convolutions on tensor cores, half the activation memory. Weights,
optimizer state and what autocast keeps in float32 (losses, log, softmax, norms) stay float32, and bf16 has
float32's exponent range, so no loss scaling is needed. `auto` (the default) is bf16 on a GPU that supports
it and fp32 everywhere else, so CPU results are exactly what they were.

bf16 pays with larger encoders and frames, where the arithmetic, not the kernel launches, is the cost;
bench/precision.py measures speed and the rewards' difference from fp32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from video2reward.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")
PRECISION_HELP = ("'bf16' (autocast forward passes to bfloat16: faster on GPUs), 'fp32', or 'auto': bf16 on a CUDA "
                  "GPU that supports it, fp32 on CPU")


def autocast_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, or None for plain float32."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision {precision}: unknown (use {', '.join(PRECISIONS)})")
    if precision == "fp32":
        return None
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if precision == "bf16":
            raise ConfigError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; "
                              f"use --precision fp32")
        return None
    if precision == "bf16":  # asked for on CPU: autocast supports it (slow without AVX-512 BF16)
        return torch.bfloat16
    return None  # auto on CPU: float32, exactly as before


def autocast(device: torch.device | str, dtype: torch.dtype | None) -> AbstractContextManager:
    """torch.autocast on `device` with `dtype`, or a no-op for float32."""
    if dtype is None:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
