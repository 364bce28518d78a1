"""The model card: README.md in every model folder (every head, the default combined head, ensembles, distilled
students, refined models, any saved RewardModel), consistent with the weights beside it, printed by `v2r info`
(or rebuilt from config.json for a model written before cards), `--json` for the facts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import torch

from tests.helpers.tiny_model import tiny_model
from video2reward.cli import main
from video2reward.core.files import sha256
from video2reward.inference.card import NOT_RECORDED, card_facts
from video2reward.inference.model import RewardModel
from video2reward.rewards.registry import HEAD_NAMES
from video2reward.testing.bad_datasets import FPS, KEYS, LENGTHS, make_dataset
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


def _facts(folder: Path) -> dict:
    return card_facts(json.loads((folder / "config.json").read_text()))


def test_any_saved_model_gets_a_card(tmp_path: Path) -> None:
    tiny_model().save(tmp_path / "m")
    card = _card(tmp_path / "m")
    assert "| head | progress |" in card and f"| command | {NOT_RECORDED} |" in card
    assert f"| trained on | {NOT_RECORDED} |" in card and f"| training time | {NOT_RECORDED} |" in card


def test_saving_again_rewrites_the_card_with_the_new_weights(tmp_path: Path) -> None:
    model = tiny_model()
    model.save(tmp_path / "m")
    first = _card(tmp_path / "m")
    with torch.no_grad():
        model.head.goal.add_(1.0)
    model.save(tmp_path / "m")
    assert _card(tmp_path / "m") != first


@pytest.mark.parametrize("options", [*({"head": h} for h in HEAD_NAMES), {"head": "progress", "ensemble": 2}],
                         ids=[*HEAD_NAMES, "ensemble"])
def test_trained_models_cards_say_what_they_learned_from(data: Path, tmp_path: Path, options: dict) -> None:
    out = tmp_path / "model"
    train_reward_model([data / "train"], out, TrainConfig(**TINY, **options), progress=False)
    card, facts = _card(out), _facts(out)
    assert facts["num_videos"] == 3 and facts["num_frames"] > 0 and facts["inputs"] == [str(data / "train")]
    assert facts["fps"] == [10] and facts["resolutions"] == ["32x32"] and facts["image_size"] == 32
    assert facts["v2r_version"] and facts["date"] and facts["training_seconds"] > 0
    assert facts["command"] == "trained from Python: video2reward.training.train.train_reward_model(...)"
    assert "| trained on | 3 videos," in card and "| training time |" in card
    assert "| camera key | none (video files or frame folders) |" in card
    assert f"| head | {options['head']}" in card and "| encoder | " in card
    assert -1 <= facts["train_video_voc"] <= 1 and "| order on its training videos (VOC) | " in card
    assert 0 <= facts["train_end_vs_start_auroc"] <= 1 and "end-vs-start AUROC" in card
    if options["head"] == "success":
        assert "mean success probability" in card
    if options["head"] == "pixel-ridge":
        assert "| encoder | none (pixels) |" in card
    if options["head"] == "progress+rank":
        assert "members: progress, rank" in card
    if options.get("ensemble"):
        assert "ensemble of 2" in card


def test_a_lerobot_dataset_card_names_the_camera_episodes_and_native_size(tmp_path: Path) -> None:
    root, _ = make_dataset(tmp_path)
    out = tmp_path / "model"
    config = TrainConfig(**TINY, head="progress", camera_key=KEYS[1], episodes="0:3")
    train_reward_model([root], out, config, progress=False)
    card, facts = _card(out), _facts(out)
    assert facts["camera_key"] == KEYS[1] and facts["episodes"] == "0:3"
    assert facts["num_episodes"] == facts["num_videos"] == 3  # episodes 0, 1 and 2 (all successful)
    assert facts["fps"] == [FPS] and facts["resolutions"] == ["64x48"]  # native, not the model's 32 px
    assert f"| camera key | `{KEYS[1]}` |" in card and f"| trained on | 3 LeRobotDataset episodes, {sum(LENGTHS[:3])} frames |" in card
    assert "| native resolution(s), width x height | 64x48 |" in card and "| frames in | 32 px squares" in card


def test_distilled_student_card_names_its_teacher(data: Path, tmp_path: Path) -> None:
    train_reward_model([data / "train"], tmp_path / "teacher", TrainConfig(**TINY, head="progress"), progress=False)
    distill(tmp_path / "teacher", tmp_path / "student", DistillConfig(steps=3, threads=1), progress=False)
    card, facts = _card(tmp_path / "student"), _facts(tmp_path / "student")
    assert f"distilled from | {tmp_path / 'teacher'}" in card and "| trained on | 3 videos," in card
    assert facts["steps"] == 3 and facts["student"] == DistillConfig().student  # the student's run, not the teacher's
    assert facts["command"] == "distilled from Python: video2reward.training.distill.distill(...)"
    assert 0 <= facts["train_end_vs_start_auroc"] <= 1


def test_a_refined_model_card_says_so(tmp_path: Path) -> None:
    """As `v2r rl --refine` saves OUT/reward_model (rl/agents.py): the model's config plus its refinement."""
    model = tiny_model()
    refinement = {"refinements": 2, "gradient_steps": 40, "from": "models/x", "task": "mountaincar", "algo": "dqn",
                  "timesteps": 300, "command": "v2r rl mountaincar --reward models/x --refine"}
    RewardModel(model.head, {**model.config, "refinement": refinement}).save(tmp_path / "refined")
    card = _card(tmp_path / "refined")
    assert "| refined | by `v2r rl --refine`: 2 refinements (40 gradient steps)" in card
    assert "`v2r rl mountaincar --reward models/x --refine`" in card and "before refinement" in card


def test_v2r_info_prints_the_card_and_json(data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "my model"  # a space: the recorded command is shell-quoted
    argv = ["train", str(data / "train"), "--out", str(out), "--head", "progress", "--pretrain", "none",
            "--steps", "3", "--image-size", "32", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed == (out / "README.md").read_text()
    assert f"| command | `{shlex.join(['v2r', *argv])}` |" in printed
    assert main(["info", str(out), "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["weights_sha256"] == sha256(out / "model.safetensors") and facts["head"] == "progress"
    assert facts["command"] == shlex.join(["v2r", *argv]) and facts["num_videos"] == 3
    (out / "README.md").unlink()  # a model from before cards: rebuilt from config.json
    assert main(["info", str(out)]) == 0
    assert capsys.readouterr().out == printed


def test_info_on_a_model_from_before_the_card_says_not_recorded(tmp_path: Path, capsys) -> None:
    tiny_model().save(tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    config["training"] = {"seconds": 12.5, "videos": ["a.mp4", "b.mp4"], "num_frames": 40, "voc": 0.9}
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    (tmp_path / "old" / "README.md").unlink()
    assert main(["info", str(tmp_path / "old")]) == 0
    card = capsys.readouterr().out
    assert "| trained on | 2 videos, 40 frames |" in card and "| training time | 12.5 s" in card
    assert "| order on its training videos (VOC) | 0.900 |" in card
    assert f"| camera key | {NOT_RECORDED} |" in card and f"| command | {NOT_RECORDED} |" in card


@pytest.mark.parametrize("case", ["missing", "not a model"])
def test_info_on_a_missing_folder_is_one_line(tmp_path: Path, capsys, case: str) -> None:
    folder = tmp_path / "nope"
    if case == "not a model":
        folder.mkdir()
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(folder) in err and "Traceback" not in err


def test_info_warns_when_the_weights_changed(tmp_path: Path, capsys) -> None:
    tiny_model().save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    weights.write_bytes(weights.read_bytes() + b" ")
    assert main(["info", str(tmp_path / "m"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["weights_sha256"] == sha256(weights)
    assert "changed after the model was written" in captured.err
