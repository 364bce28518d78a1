"""Fitting: `v2r train` (reward heads), `v2r pretrain` (encoders), `v2r distill` (students), the one training loop with its checkpoints, and distributed runs."""
