"""Number formats: `--precision bf16` runs forward passes in bfloat16. On CUDA (training and scoring) under
torch.autocast: matrix products and convolutions on tensor cores, half the activation memory. Weights,
optimizer state and what autocast keeps in float32 (losses, log, softmax, norms) stay float32, and bf16 has
float32's exponent range, so no loss scaling is needed. When a CPU scores in bf16, the encoder runs as a
bf16 copy instead (autocast on CPU casts the weights again at every call and ran slower than float32).

`auto` (the default) is bf16 where the hardware does bf16 arithmetic natively: a CUDA GPU that supports it, and
for scoring a CPU with AVX-512 BF16 or AMX instructions (convolutions about twice as fast; rewards within a
few thousandths of float32's, measured by bench/precision.py), as inference runtimes do on such CPUs. Training
on a CPU stays float32 under `auto`; `fp32` gives float32 everywhere.

bench/precision.py measures speed and the rewards' difference from fp32.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

from video2reward.errors import ConfigError

PRECISIONS = ("auto", "bf16", "fp32")
PRECISION_HELP = ("'bf16' (forward passes in bfloat16: faster on GPUs and on CPUs with AVX-512 BF16 / AMX), "
                  "'fp32' (exact float32), or 'auto': bf16 on a CUDA GPU that supports it and, for scoring, on a CPU "
                  "with native bf16 instructions; fp32 otherwise")


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


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX-512 BF16 or AMX tiles), where bf16 convolutions run
    about twice as fast as float32 ones; without them bf16 is emulated and slower."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check is not None and check() for check in checks)


def scoring_dtype(precision: str, device: torch.device | str) -> torch.dtype | None:
    """The dtype a reward model scores in: `autocast_dtype`, except that `auto` on a CPU with native bf16
    instructions scores in bf16 (training there stays float32)."""
    dtype = autocast_dtype(precision, device)
    if dtype is None and precision == "auto" and torch.device(device).type == "cpu" and cpu_has_native_bf16():
        return torch.bfloat16
    return dtype
