"""Infini-attention (`--temporal-sequence infini`): the segment-by-segment computation against a hand-written
reference, causality, and information from early segments reaching the last token only through the memory."""

import torch
import torch.nn.functional as F

from video2reward.rewards.sequence_layers import InfiniBlock, InfiniTransformer

torch.set_num_threads(1)


def reference_attention(block: InfiniBlock, x: torch.Tensor) -> torch.Tensor:
    """The attention output (before the projection) written token by token from the paper's equations."""
    b, k, d = x.shape
    h, dh, s = block.heads, d // block.heads, block.segment
    q, key, v = block.qkv(block.norm1(x)).view(b, k, 3, h, dh).unbind(2)  # (B, K, H, d_h) each
    sigma = lambda t: F.elu(t) + 1  # noqa: E731
    gate = torch.sigmoid(block.gate)
    out = torch.zeros(b, k, h, dh)
    for bi in range(b):
        for hi in range(h):
            memory, norm = torch.zeros(dh, dh), torch.zeros(dh)
            for start in range(0, k, s):
                idx = range(start, min(start + s, k))
                for t in idx:  # local causal softmax attention inside the segment
                    scores = torch.stack([q[bi, t, hi] @ key[bi, j, hi] / dh**0.5 for j in idx if j <= t])
                    weights = torch.softmax(scores, 0)
                    local = sum(w * v[bi, j, hi] for w, j in zip(weights, [j for j in idx if j <= t]))
                    read = sigma(q[bi, t, hi]) @ memory / max(float(sigma(q[bi, t, hi]) @ norm), 1e-6)
                    out[bi, t, hi] = gate[hi] * read + (1 - gate[hi]) * local
                new_memory = memory.clone()
                for j in idx:  # delta rule, with the memory as it was before this segment
                    kj = sigma(key[bi, j, hi])
                    prior = kj @ memory / max(float(kj @ norm), 1e-6)
                    new_memory += torch.outer(kj, v[bi, j, hi] - prior)
                norm = norm + sum(sigma(key[bi, j, hi]) for j in idx)
                memory = new_memory
    return out.reshape(b, k, d)


@torch.no_grad()
def test_segments_and_memory_match_the_equations():
    torch.manual_seed(0)
    block = InfiniBlock(8, heads=2, segment=3)
    block.gate.copy_(torch.tensor([0.7, -0.4]))
    x = torch.randn(2, 7, 8)  # segments of 3, 3 and 1 tokens
    expected = x + block.proj(reference_attention(block, x))
    expected = expected + block.mlp(block.norm2(expected))
    torch.testing.assert_close(block(x), expected, rtol=1e-4, atol=1e-5)


def test_a_token_never_reads_later_tokens():
    torch.manual_seed(0)
    block = InfiniBlock(8, heads=2, segment=4)
    x = torch.randn(1, 10, 8)
    changed = x.clone()
    changed[:, 6:] += 1.0
    torch.testing.assert_close(block(x)[:, :6], block(changed)[:, :6])


def test_early_segments_reach_the_last_token_only_through_the_memory():
    torch.manual_seed(0)
    model = InfiniTransformer(16, context=12, layers=1, heads=2, segment=4)
    x = torch.randn(1, 12, 16)
    changed = x.clone()
    changed[:, :4] = torch.randn(1, 4, 16)  # the first segment only (not a constant shift: LayerNorm removes it)
    assert not torch.allclose(model(x), model(changed), atol=1e-4)  # the memory carried it
    with torch.no_grad():
        model.blocks[0].gate.fill_(-30.0)  # gate closed: local attention alone
    torch.testing.assert_close(model(x), model(changed))  # the first segment cannot reach the last token
