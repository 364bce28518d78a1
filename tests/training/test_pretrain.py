"""`v2r pretrain` -> encoder folder -> `v2r probe` and `v2r train --encoder [--freeze]`, end to end on tiny
generated videos; plus resume and the per-method options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from video2reward.cli import main
from video2reward.encoders.pretrained import load_encoder
from video2reward.testing.synthetic import write_square_dataset
from video2reward.training.config import PretrainConfig
from video2reward.training.pretrain import pretrain_encoder

TINY = ["--steps", "12", "--image-size", "32", "--batch-size", "16", "--frames-per-video", "4",
        "--warmup-steps", "2", "--quiet"]
TINY_TRAIN = ["--steps", "40", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "5", "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_square_dataset(tmp_path_factory.mktemp("squares") / "data")


@pytest.mark.parametrize("method,encoder", [("simclr", "cnn"), ("dcl", "cnn"), ("moco", "cnn"), ("dino", "cnn"),
                                            ("mae", "vit"), ("tcn", "cnn"), ("rotation", "cnn"), ("imagenet", "cnn")])
def test_every_method_pretrains_and_saves_a_loadable_encoder(data: Path, tmp_path: Path, method: str,
                                                             encoder: str) -> None:
    out = tmp_path / method
    extra = ["--moco-queue-size", "64"] if method == "moco" else []
    assert main(["pretrain", str(data / "train"), "--method", method, "--encoder", encoder, "--out", str(out),
                 *TINY, *extra]) == 0
    assert {p.name for p in out.iterdir()} == {"encoder.safetensors", "config.json"}  # checkpoint removed
    enc, _ = load_encoder(out)
    config = json.loads((out / "config.json").read_text())
    assert config["pretraining"]["method"] == method
    x = torch.rand(2, 3, 32, 32)
    assert enc(x).shape == (2, enc.dim) and torch.isfinite(enc(x)).all()


@pytest.mark.slow
def test_pretrained_encoder_trains_a_reward_model_frozen_and_fine_tuned(data: Path, tmp_path: Path) -> None:
    enc_dir = tmp_path / "enc"
    assert main(["pretrain", str(data / "train"), "--method", "tcn", "--out", str(enc_dir), *TINY]) == 0
    enc, _ = load_encoder(enc_dir)
    before = {k: v.clone() for k, v in enc.state_dict().items()}
    for freeze in ("--freeze", "--no-freeze"):
        model = tmp_path / f"model{freeze}"
        assert main(["train", str(data / "train"), "--encoder", str(enc_dir), freeze, "--out", str(model),
                     *TINY_TRAIN]) == 0
        config = json.loads((model / "config.json").read_text())
        assert config["image_size"] == 32  # the encoder's own frame size, not train's default 64
        assert config["encoder"]["pretrained_from"] == str(enc_dir)
        from video2reward.core.files import load_tensors
        weights = load_tensors(model / "model.safetensors")
        same = [all(torch.equal(weights[prefix + k], v) for k, v in before.items()) for prefix in encoder_copies(weights)]
        assert same == [freeze == "--freeze"] * 2  # each member's copy: frozen = exactly the pretrained encoder


def test_freeze_without_a_pretrained_encoder_is_a_clear_error(data: Path, tmp_path: Path, capsys) -> None:
    assert main(["train", str(data / "train"), "--freeze", "--out", str(tmp_path / "m"), *TINY_TRAIN]) == 2
    assert "--freeze needs a pretrained --encoder" in capsys.readouterr().err


@pytest.mark.slow
def test_train_pretrains_its_fresh_encoder_as_v2r_pretrain_would(data: Path, tmp_path: Path) -> None:
    """`v2r train --pretrain rotation` (the default) = `v2r pretrain --method rotation` + `v2r train --encoder`:
    with --freeze the model's encoder is bit-for-bit the one `v2r pretrain` makes with the same seed and steps."""
    assert main(["pretrain", str(data / "train"), "--method", "rotation", "--steps", "6", "--image-size", "32",
                 "--threads", "1", "--out", str(tmp_path / "enc"), "--quiet"]) == 0
    separate, _ = load_encoder(tmp_path / "enc")
    model = tmp_path / "m"
    assert main(["train", str(data / "train"), "--pretrain", "rotation", "--pretrain-steps", "6", "--freeze",
                 "--image-size", "32", "--threads", "1", "--out", str(model),
                 *[a for a in TINY_TRAIN if a not in ("--pretrain", "none")]]) == 0
    config = json.loads((model / "config.json").read_text())
    assert config["encoder"]["pretrained_with"]["method"] == "rotation"
    assert config["encoder"]["frozen"] is True
    assert not (model / "pretrain").exists()  # the intermediate encoder folder is removed once the model is saved
    from video2reward.core.files import load_tensors
    weights = load_tensors(model / "model.safetensors")
    assert len(encoder_copies(weights)) == 2  # the default head's two members, each on its own copy
    for prefix in encoder_copies(weights):
        for name, value in separate.state_dict().items():
            assert torch.equal(weights[prefix + name], value), prefix + name


def encoder_copies(weights: dict) -> list[str]:
    """The prefixes of the encoder copies in a model file's weights ('members.0.encoder.', ...)."""
    return sorted({k[: k.index("encoder.") + len("encoder.")] for k in weights if "encoder." in k})


def test_option_of_another_method_is_refused(data: Path, tmp_path: Path, capsys) -> None:
    assert main(["pretrain", str(data / "train"), "--method", "simclr", "--dino-teacher-temp", "0.05",
                 "--out", str(tmp_path / "e"), *TINY]) == 2
    assert "--dino-teacher-temp belongs to --method dino" in capsys.readouterr().err


@pytest.mark.slow
def test_interrupted_pretraining_resumes_to_the_same_weights(data: Path, tmp_path: Path, monkeypatch) -> None:
    config = PretrainConfig(method="dino", image_size=32, steps=8, batch_size=8, frames_per_video=4,
                            warmup_steps=2, checkpoint_every=3)
    whole = pretrain_encoder([data / "train"], tmp_path / "a", config, progress=False).encoder

    import video2reward.training.loop as train_module
    real_save = train_module.Checkpointer.save

    def save_then_die(self, step, *args):  # a kill right after the step-6 checkpoint is written
        real_save(self, step, *args)
        if step == 6:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module.Checkpointer, "save", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        pretrain_encoder([data / "train"], tmp_path / "b", config, progress=False)
    monkeypatch.setattr(train_module.Checkpointer, "save", real_save)
    resumed = pretrain_encoder([data / "train"], tmp_path / "b", config, resume=True, progress=False).encoder
    for (k, p), q in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(p, q), k  # teacher, center and schedules restored: bit for bit


def test_probe_reports_time_probes_and_collapse(data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "probe.json"
    assert main(["probe", "cnn", str(data), "--image-size", "32", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "kNN probe VOC" in printed and "linear probe VOC" in printed
    result = json.loads(out.read_text())
    assert result["feature_std"] > 0.1 and not result["collapsed"]
    assert main(["probe", "cnn", str(tmp_path / "nowhere")]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("head", ["progress", "progress+rank"])
def test_train_stopped_after_pretraining_resumes(data: Path, tmp_path: Path, monkeypatch, capsys, head: str) -> None:
    """Ctrl-C after `v2r train`'s pretraining finished but before the head's first checkpoint: `--resume` reuses
    the pretrained encoder and trains the head from its start (no head checkpoint is not an error then); with
    nothing at all in OUT, `--resume` is a clear error."""
    import video2reward.training.train as train_module

    out = tmp_path / "m"
    args = ["train", str(data / "train"), "--out", str(out), "--head", head, "--pretrain", "rotation",
            "--pretrain-steps", "4", "--image-size", "32", "--threads", "1",
            *[a for a in TINY_TRAIN if a not in ("--pretrain", "none")]]
    assert main([*args, "--resume"]) == 2
    assert "nothing to resume" in capsys.readouterr().err

    def stop(*args, **kwargs):
        raise KeyboardInterrupt

    name = "_fit_head" if head == "progress" else "_fit_ensemble"
    real = getattr(train_module, name)
    monkeypatch.setattr(train_module, name, stop)
    assert main(args) == 130  # the CLI's answer to Ctrl-C
    assert (out / "pretrain").is_dir() and not (out / "model.safetensors").exists()
    monkeypatch.setattr(train_module, name, real)
    assert main([*args, "--resume"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["head"] == head and config["encoder"]["pretrained_with"]["method"] == "rotation"
