"""The model card: README.md in every model folder (single heads, the default combined head, ensembles, distilled
students, any saved RewardModel), consistent with the weights it describes, printed by `v2r info`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.tiny_model import tiny_model
from video2reward.cli import main
from video2reward.core.files import sha256
from video2reward.inference.card import NOT_RECORDED, card_facts
from video2reward.testing.synthetic import write_square_dataset
from video2reward.training.config import DistillConfig, TrainConfig
from video2reward.training.distill import distill
from video2reward.training.train import train_reward_model

TINY = dict(pretrain="none", steps=4, warmup_steps=1, image_size=32, batch_size=16, frames_per_video=8, threads=1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("card") / "data", n_train=3, n_test=1)


def _card(folder: Path) -> str:
    card = (folder / "README.md").read_text()
    assert f"`{sha256(folder / 'model.safetensors')}`" in card  # the hash of the weights beside it
    return card


def test_any_saved_model_gets_a_card(tmp_path: Path) -> None:
    tiny_model().save(tmp_path / "m")
    card = _card(tmp_path / "m")
    assert "| head | progress |" in card and f"| command | {NOT_RECORDED} |" in card


@pytest.mark.slow
@pytest.mark.parametrize("options", [dict(head="progress"), dict(), dict(head="progress", ensemble=2),
                                     dict(head="success")], ids=["progress", "default", "ensemble", "success"])
def test_trained_models_cards_say_what_they_learned_from(data: Path, tmp_path: Path, options: dict) -> None:
    out = tmp_path / "model"
    train_reward_model([data / "train"], out, TrainConfig(**TINY, **options), progress=False)
    card = _card(out)
    facts = card_facts(json.loads((out / "config.json").read_text()))
    assert facts["num_videos"] == 3 and facts["num_frames"] > 0 and facts["inputs"] == [str(data / "train")]
    assert facts["fps"] == [10] and facts["resolutions"] == ["32x32"]
    assert facts["v2r_version"] and facts["date"] and facts["training_seconds"] > 0
    assert facts["command"].startswith("from Python")  # not run as `v2r train`
    assert "| trained on | 3 videos," in card and "| training time |" in card
    if options.get("head") == "success":
        assert "success probability" in card
    else:
        assert 0 <= facts["train_end_vs_start_auroc"] <= 1 and "AUROC" in card
    if options.get("ensemble"):
        assert "ensemble of 2" in card


@pytest.mark.slow
def test_distilled_student_card_names_its_teacher(data: Path, tmp_path: Path) -> None:
    train_reward_model([data / "train"], tmp_path / "teacher", TrainConfig(**TINY, head="progress"), progress=False)
    distill(tmp_path / "teacher", tmp_path / "student", DistillConfig(steps=3, threads=1), progress=False)
    card = _card(tmp_path / "student")
    assert f"distilled from | {tmp_path / 'teacher'}" in card and "| trained on | 3 videos," in card


@pytest.mark.slow
def test_v2r_info_prints_the_card_and_json(data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "model"
    assert main(["train", str(data / "train"), "--out", str(out), "--head", "progress", "--pretrain", "none",
                 "--steps", "3", "--image-size", "32", "--threads", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == (out / "README.md").read_text()
    assert f"| command | `v2r train {data / 'train'} --out {out}" in printed
    assert main(["info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["weights_sha256"] == sha256(out / "model.safetensors") and facts["head"] == "progress"
    (out / "README.md").unlink()  # a model from before cards: rebuilt from config.json
    assert main(["info", str(out)]) == 0
    assert capsys.readouterr().out == printed


def test_info_on_a_missing_folder_is_one_line(tmp_path: Path, capsys) -> None:
    assert main(["info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "not a model folder" in err
