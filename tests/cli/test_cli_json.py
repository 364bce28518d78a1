"""`--json` for scripts: train, score and eval print exactly one JSON line on stdout (no progress bars, no text
summary), errors included; and `v2r --help` / each subcommand's help shows how to use it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from video2reward.cli import main
from video2reward.testing.synthetic import write_square_dataset

TINY = ["--pretrain", "none", "--steps", "3", "--image-size", "32", "--batch-size", "16", "--frames-per-video", "8",
        "--warmup-steps", "1", "--threads", "1"]


def one_json_line(capsys) -> dict:
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out
    assert "\r" not in captured.err  # no progress bar
    return json.loads(lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    data = write_square_dataset(tmp_path_factory.mktemp("json") / "data", n_train=2, n_test=1)
    return data, data.parent / "model"


@pytest.mark.slow
def test_train_score_eval_print_one_json_line(trained, tmp_path: Path, capsys) -> None:
    data, model = trained
    assert main(["train", str(data / "train"), "--out", str(model), *TINY, "--json"]) == 0
    summary = one_json_line(capsys)
    assert summary["command"] == "train" and summary["out"] == str(model) and summary["videos"] == 2
    assert summary["frames"] == 24 + 26 and summary["skipped"] == [] and "member0/loss" in summary["metrics"]  # the default head's two members

    (data / "test_expert" / "bad.mp4").write_bytes(b"")
    try:
        out = tmp_path / "r.jsonl"
        assert main(["score", str(model), str(data / "test_expert"), "--out", str(out), "--skip-bad", "--json"]) == 0
        summary = one_json_line(capsys)
    finally:
        (data / "test_expert" / "bad.mp4").unlink()
    assert (summary["command"], summary["videos"], summary["frames"]) == ("score", 1, 24)
    assert summary["skipped"] == [{"video": str(data / "test_expert" / "bad.mp4"),
                                   "reason": f"{data / 'test_expert' / 'bad.mp4'}: file is empty (0 bytes); "
                                             "re-encode it (ffmpeg -i IN -c:v libx264 OUT.mp4), remove it, or "
                                             "pass --skip-bad"}]
    assert len(out.read_text().splitlines()) == 1

    assert main(["eval", str(model), str(data), "--out", str(tmp_path / "e.json"), "--json"]) == 0
    summary = one_json_line(capsys)
    assert summary["command"] == "eval" and summary["n_expert"] == 1 and summary["n_failed"] == 1
    assert summary == {"command": "eval", "out": str(tmp_path / "e.json"), "plot": None,
                       **{k: v for k, v in json.loads((tmp_path / "e.json").read_text()).items()
                          if k not in ("model", "data")}}


def test_an_error_is_json_too(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["score", str(tmp_path / "nowhere"), str(tmp_path / "empty"), "--out", str(tmp_path / "r.jsonl"),
                 "--json"]) == 2
    summary = json.loads(capsys.readouterr().out)
    assert summary["command"] == "score" and "nowhere: not a model folder" in summary["error"]


def test_every_command_help_shows_examples() -> None:
    import argparse

    from video2reward.cli import build_parser

    parser = build_parser()
    assert "v2r train" in parser.format_help() and "v2r score" in parser.format_help()  # the workflow, top level
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        text = command.format_help()
        assert "\nexamples:\n" in text and f"\n  v2r {name} " in text, f"`v2r {name} --help` shows no example"
