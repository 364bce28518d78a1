"""Causal sequence models over a window of K frame tokens, each reading tokens (B, K, d) oldest first and
returning one summary (B, d) at the last (current) frame. The temporal head (rewards/temporal.py) puts one
of them between per-frame embeddings and its progress MLP (`v2r train --head temporal --sequence ...`):

    transformer  pre-LN causal self-attention blocks with learned positions (Vaswani et al. 2017; causal
                 mask: token k attends to tokens <= k)
    ssm          a diagonal selective state-space layer in the spirit of S4 / Mamba (Gu et al. 2021, Gu & Dao
                 2023): per channel a diagonal A, and input-dependent step size Delta_t, B_t and C_t
                 (Mamba's "selection"), scanned left to right
    stack        the frame stack of DQN (Mnih et al. 2013): the K tokens concatenated, then an MLP
    infini       Infini-attention (Munkhdalai et al. 2024): the window cut into segments; causal softmax attention
                 inside a segment, and a compressive linear-attention memory of every earlier segment, mixed by
                 a learned gate per head: attention state stays (d_h x d_h) per head however long the window,
                 so a window can span a whole episode

Each reads only the K tokens it is given, so the reward at frame t depends on frames t-K+1 .. t alone and the
head is causal by construction; no state is carried between windows.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

SEQUENCES = ("transformer", "ssm", "stack", "infini")


class CausalBlock(nn.Module):
    """x + Attn(LN(x)) with a causal mask, then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"sequence width {dim} is not a multiple of {heads} attention heads")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape  # (B, K, d)
        q, key, v = self.qkv(self.norm1(x)).view(b, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        # Attention(Q, K, V) = softmax(Q K^T / sqrt(d_h) + M) V, M = -inf above the diagonal (causal)
        att = F.scaled_dot_product_attention(q, key, v, is_causal=True)  # (B, H, K, d_h)
        x = x + self.proj(att.transpose(1, 2).reshape(b, k, d))
        return x + self.mlp(self.norm2(x))


class CausalTransformer(nn.Module):
    """Learned position per window slot + `layers` causal blocks; the summary is the last token."""

    def __init__(self, dim: int, context: int, layers: int = 2, heads: int = 4):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(context, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(CausalBlock(dim, heads) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens + self.position  # (B, K, d)
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, -1])  # (B, d): the current frame's token


class SelectiveSSM(nn.Module):
    """One diagonal selective state-space layer (Mamba-style, without its short convolution):

        Delta_t = softplus(W_Delta u_t + b)          (B, d)      input-dependent step size
        B_t, C_t = W_B u_t, W_C u_t                  (B, N)      input-dependent input / output maps
        h_t = exp(Delta_t A) * h_{t-1} + Delta_t B_t u_t        (B, d, N), A = -exp(A_log) diagonal (stable)
        y_t = C_t . h_t + D * u_t,   out_t = y_t * silu(gate_t)

    (zero-order hold for A, Euler for B, as Mamba does), scanned over the K tokens from h = 0."""

    def __init__(self, dim: int, state: int = 16):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.in_proj = nn.Linear(dim, 2 * dim)  # u and the gate
        self.delta = nn.Linear(dim, dim)
        self.bc = nn.Linear(dim, 2 * state)
        # S4D-real initialisation: A_n = -(n + 1), so channels decay at different rates
        self.a_log = nn.Parameter(torch.log(torch.arange(1, state + 1, dtype=torch.float32)).repeat(dim, 1))
        self.d = nn.Parameter(torch.ones(dim))
        self.out = nn.Linear(dim, dim)
        # initial step sizes log-uniform on [1e-2, 1] (Mamba: [1e-3, 1e-1], for long sequences; a window is a few
        # frames, and with smaller steps the oldest frames barely reach the state)
        with torch.no_grad():
            dt = torch.exp(torch.linspace(math.log(1e-2), math.log(1.0), dim))
            self.delta.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # softplus^-1(dt)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u, gate = self.in_proj(self.norm(x)).chunk(2, dim=-1)  # (B, K, d) each
        u = F.silu(u)
        delta = F.softplus(self.delta(u))  # (B, K, d)
        b_t, c_t = self.bc(u).chunk(2, dim=-1)  # (B, K, N) each
        a = -torch.exp(self.a_log)  # (d, N)
        decay = torch.exp(delta[..., None] * a)  # (B, K, d, N): exp(Delta_t A)
        drive = (delta * u)[..., None] * b_t[:, :, None, :]  # (B, K, d, N): Delta_t B_t u_t
        h = torch.zeros_like(drive[:, 0])  # (B, d, N)
        ys = []
        for k in range(x.shape[1]):  # K is a few frames: a plain loop is the scan
            h = decay[:, k] * h + drive[:, k]  # h_t = exp(Delta_t A) h_{t-1} + Delta_t B_t u_t
            ys.append((h * c_t[:, k, None, :]).sum(-1))  # y_t = C_t . h_t   (B, d)
        y = torch.stack(ys, dim=1) + self.d * u  # (B, K, d)
        return x + self.out(y * F.silu(gate))


class SSMStack(nn.Module):
    """`layers` selective SSM layers; the summary is the last token."""

    def __init__(self, dim: int, context: int, layers: int = 2, state: int = 16):
        super().__init__()
        self.layers = nn.ModuleList(SelectiveSSM(dim, state) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens  # (B, K, d); order is carried by the scan itself, no position embedding
        for layer in self.layers:
            x = layer(x)
        return self.norm(x[:, -1])  # (B, d)


class FrameStack(nn.Module):
    """DQN's frame stack: the K tokens side by side -> Linear -> GELU -> Linear."""

    def __init__(self, dim: int, context: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(context * dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.norm(self.mlp(tokens.flatten(1)))  # (B, K * d) -> (B, d)


class InfiniBlock(nn.Module):
    """x + InfiniAttention(LN(x)), then x + MLP(LN(x)). Per head, segment by segment (s = 1, 2, ...):

        A_dot = softmax(Q_s K_s^T / sqrt(d_h) + causal mask) V_s            local attention inside the segment
        A_mem = sigma(Q_s) M_{s-1} / (sigma(Q_s) z_{s-1})                    read the memory of earlier segments
        A     = sigmoid(beta) A_mem + (1 - sigmoid(beta)) A_dot               learned gate beta per head
        M_s   = M_{s-1} + sigma(K_s)^T (V_s - sigma(K_s) M_{s-1} / (sigma(K_s) z_{s-1}))   delta-rule update
        z_s   = z_{s-1} + sum_t sigma(K_t),   sigma = ELU + 1,   M_0 = 0, z_0 = 0

    A token reads its own segment up to itself and earlier segments through M: causal by construction."""

    def __init__(self, dim: int, heads: int, segment: int):
        super().__init__()
        if dim % heads:
            raise ValueError(f"sequence width {dim} is not a multiple of {heads} attention heads")
        if segment < 1:
            raise ValueError(f"infini segment must be >= 1 token, got {segment}")
        self.heads, self.segment = heads, segment
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.gate = nn.Parameter(torch.zeros(heads))  # beta: sigmoid(0) = 1/2, memory and local alike at first
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    @staticmethod
    def _read(keys: torch.Tensor, memory: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
        """sigma(Q) M / (sigma(Q) z): (B, H, S, d_h) features against (B, H, d_h, d_h), (B, H, d_h)."""
        return (keys @ memory) / (keys @ norm[..., None]).clamp_min(1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, k, d = x.shape  # (B, K, d)
        q, key, v = self.qkv(self.norm1(x)).view(b, k, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        sq, sk = F.elu(q) + 1, F.elu(key) + 1  # sigma(.) > 0: (B, H, K, d_h)
        memory = q.new_zeros(b, self.heads, q.shape[-1], q.shape[-1])  # M: (B, H, d_h, d_h)
        norm = q.new_zeros(b, self.heads, q.shape[-1])  # z: (B, H, d_h)
        gate = torch.sigmoid(self.gate)[None, :, None, None]  # (1, H, 1, 1)
        parts = []
        for start in range(0, k, self.segment):
            seg = slice(start, start + self.segment)
            local = F.scaled_dot_product_attention(q[:, :, seg], key[:, :, seg], v[:, :, seg], is_causal=True)
            parts.append(gate * self._read(sq[:, :, seg], memory, norm) + (1 - gate) * local)  # (B, H, S, d_h)
            keys = sk[:, :, seg]
            memory = memory + keys.transpose(-1, -2) @ (v[:, :, seg] - self._read(keys, memory, norm))
            norm = norm + keys.sum(dim=2)
        att = torch.cat(parts, dim=2)  # (B, H, K, d_h)
        x = x + self.proj(att.transpose(1, 2).reshape(b, k, d))
        return x + self.mlp(self.norm2(x))


class InfiniTransformer(nn.Module):
    """Learned position per window slot + `layers` Infini-attention blocks; the summary is the last token."""

    def __init__(self, dim: int, context: int, layers: int = 2, heads: int = 4, segment: int = 16):
        super().__init__()
        self.position = nn.Parameter(torch.zeros(context, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(InfiniBlock(dim, heads, segment) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = tokens + self.position  # (B, K, d)
        for block in self.blocks:
            x = block(x)
        return self.norm(x[:, -1])  # (B, d)


def build_sequence(kind: str, dim: int, context: int, layers: int, heads: int, state: int,
                   segment: int = 16) -> nn.Module:
    """The sequence model `kind` (one of SEQUENCES) over windows of `context` tokens of width `dim`."""
    if kind == "infini":
        return InfiniTransformer(dim, context, layers, heads, segment)
    if kind == "transformer":
        return CausalTransformer(dim, context, layers, heads)
    if kind == "ssm":
        return SSMStack(dim, context, layers, state)
    if kind == "stack":
        return FrameStack(dim, context)
    raise ValueError(f"unknown sequence model {kind!r} (known: {', '.join(SEQUENCES)})")
