"""Shared by the RL tests: one torch thread per module (restored after)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One-frame batches gain nothing from intra-op threads, and on a busy machine they spin for ~0.2 s."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
