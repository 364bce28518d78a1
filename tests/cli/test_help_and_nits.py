"""What a first look at the command shows: bare `v2r` prints the overview, no help text has an empty
"(default: )", `--device` says what it takes, `pretrain --method mae` picks the ViT itself, and a model's repr."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from video2reward.cli import build_parser, main
from video2reward.cli.score import _device
from video2reward.cli.train import pretrain_encoder_name


def command_helps() -> dict[str, str]:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    return {"v2r": parser.format_help(), **{name: command.format_help() for name, command in commands.items()}}


def test_bare_v2r_prints_the_overview_and_exits_2(capsys) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    assert out == build_parser().format_help()
    assert "usage: v2r" in out and "v2r train" in out and "v2r score" in out and "required" not in out


def test_no_help_text_shows_an_empty_default() -> None:
    for name, text in command_helps().items():
        flat = " ".join(text.split())  # argparse wraps lines anywhere, "(default:" and ")" included
        assert not re.search(r"\(default:\s*\)", flat), f"`{name} --help` shows an empty default"
        assert "(default: None)" not in flat, f"`{name} --help` shows a default of None"
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name, command in commands.items():
        for action in command._actions:
            assert (action.help or "").count("default:") <= 1, f"`{name} {action.option_strings}`: two defaults"


def test_empty_defaults_say_what_empty_means() -> None:
    helps = {name: " ".join(text.split()) for name, text in command_helps().items()}
    assert "(all of them when it marks none) (default: none)" in helps["train"]  # --negatives
    assert "default: the model's own training videos" in helps["rl"]  # --refine-videos
    assert "(default: the teacher's own training videos" in helps["distill"]  # --videos


def test_device_help_names_auto_and_auto_works() -> None:
    helps = command_helps()
    for name in ("score", "report", "eval"):
        assert "--device DEVICE cpu, cuda or auto" in " ".join(helps[name].split()), name
    assert _device("auto").type in ("cpu", "cuda")
    assert _device("cpu").type == "cpu"


@pytest.mark.parametrize(("argv", "encoder", "said"), [
    (["--method", "mae"], "vit", True),  # chosen for the user, and said so
    (["--method", "mae", "--encoder", "vit"], "vit", False),
    (["--method", "mae", "--encoder", "cnn"], "cnn", False),  # left as given: the objective's error explains
    (["--method", "dino"], "cnn", False),  # PretrainConfig's default
])
def test_pretrain_mae_picks_the_vit_when_no_encoder_is_given(argv, encoder, said) -> None:
    args = build_parser().parse_args(["pretrain", "videos", "--out", "enc", *argv])
    line = pretrain_encoder_name(args)
    assert args.encoder == encoder and (line is not None) == said
    if said:
        assert "--encoder vit" in line


def test_pretrain_mae_with_an_explicit_cnn_is_an_error_with_the_fix(tmp_path: Path, capsys) -> None:
    assert main(["pretrain", str(tmp_path / "videos"), "--method", "mae", "--encoder", "cnn",
                 "--out", str(tmp_path / "enc"), "--quiet"]) == 2
    assert "pass --encoder vit" in capsys.readouterr().err


def test_pretrain_help_says_mae_gets_the_vit() -> None:
    assert "(default: cnn; vit with --method mae" in " ".join(command_helps()["pretrain"].split())


def test_a_model_reads_as_what_it_is() -> None:
    from tests.helpers.tiny_model import tiny_model  # here: builds a torch model

    model = tiny_model()
    assert repr(model) == "RewardModel(progress head, cnn encoder, 32px frames, device=cpu)"
    assert "object at 0x" not in repr(model)
