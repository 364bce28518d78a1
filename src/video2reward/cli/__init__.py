"""The `v2r` command: one module per command group, each thin (parse, call the library, print)."""

from video2reward.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
