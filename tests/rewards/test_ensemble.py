"""Ensembles (`--ensemble K`): the combination rule against a hand computation, members that really differ,
an epistemic uncertainty that is larger off the demonstrations than on them, files and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from video2reward.cli import main
from video2reward.encoders import build_encoder
from video2reward.inference.model import RewardModel, load
from video2reward.rewards.ensemble import HeadEnsemble, combine
from video2reward.rewards.progress import ProgressConfig, ProgressHead
from video2reward.testing.synthetic import moving_square, write_square_dataset

# 120 steps: at 40 the members are barely trained (|mu - t| ~0.23) and their disagreement on noise vs on the
# demonstrations' frames is a coin toss (0.014 vs 0.015); at 120 it is clear (0.15 vs 0.08)
TINY = ["--steps", "120", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps",
        "4", "--triplets-per-video", "8", "--threads", "1", "--pretrain", "none", "--quiet"]


def test_combine_matches_a_hand_computation() -> None:
    mus = torch.tensor([[0.2, 0.5], [0.4, 0.5], [0.9, 0.5]])  # (K=3, B=2)
    sigmas = torch.tensor([[0.1, 0.1], [0.2, 0.1], [0.3, 0.1]])
    mu, sigma, epistemic = combine(mus, sigmas)
    m0 = (0.2 + 0.4 + 0.9) / 3
    var0 = ((0.2 - m0) ** 2 + (0.4 - m0) ** 2 + (0.9 - m0) ** 2) / 3
    assert mu.tolist() == pytest.approx([m0, 0.5])
    assert epistemic.tolist() == pytest.approx([var0 ** 0.5, 0.0], abs=1e-7)
    assert sigma.tolist() == pytest.approx([((0.01 + 0.04 + 0.09) / 3 + var0) ** 0.5, 0.1])


def _member(seed: int) -> ProgressHead:
    torch.manual_seed(seed)
    head = ProgressHead(build_encoder("cnn", 32, channels=(8, 16, 32), dim=32), ProgressConfig(motion_gap=2))
    head.goal.normal_()
    return head.eval()


def test_ensemble_of_heads_scores_like_the_mean_of_its_members() -> None:
    members = [_member(s) for s in (0, 1, 2)]
    config = {"head": "progress", "image_size": 32}
    frames = moving_square(12, 32, y=9)
    singles = [RewardModel(m, config).score(frames).mu for m in members]
    ensemble = RewardModel(HeadEnsemble(members), {**config, "ensemble": 3}).score(frames)
    np.testing.assert_allclose(ensemble.mu, np.mean(singles, axis=0), atol=1e-5)
    np.testing.assert_allclose(ensemble.epistemic, np.std(singles, axis=0), atol=1e-5)
    assert np.all(ensemble.sigma >= ensemble.epistemic - 1e-6)


def test_mixed_or_single_members_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        HeadEnsemble([_member(0)])


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ens")
    data = write_square_dataset(root / "data", n_train=4, n_test=1)
    model = root / "model"
    assert main(["train", str(data / "train"), "--out", str(model), "--head", "progress", "--ensemble", "3", *TINY]) == 0
    return data, model


@pytest.mark.slow
def test_trained_ensemble_saves_loads_and_scores_with_epistemic(trained, tmp_path: Path) -> None:
    data, model_dir = trained
    config = json.loads((model_dir / "config.json").read_text())
    assert config["ensemble"] == 3
    assert not (model_dir / "members").exists()  # per-member scratch is removed once the run finished
    model = load(model_dir)
    video = data / "test_expert" / "ep_0.mp4"
    first, again = model.score(video), load(model_dir).score(video)
    np.testing.assert_array_equal(first.mu, again.mu)
    assert first.epistemic is not None and first.epistemic.shape == first.mu.shape
    assert float(first.epistemic.max()) > 0  # different seeds give different members
    out = tmp_path / "r.jsonl"
    assert main(["score", str(model_dir), str(video), "--out", str(out), "--quiet"]) == 0
    record = json.loads(out.read_text())
    assert len(record["epistemic"]) == len(record["rewards"])


@pytest.mark.slow
def test_members_disagree_more_off_the_demonstrations(trained) -> None:
    """Frames like the demos (a square moving down) vs frames no video showed (noise): the epistemic std
    must be larger on the latter, which is what makes it useful against reward hacking in RL."""
    _, model_dir = trained
    model = load(model_dir)
    seen = model.score(moving_square(20, 32, y=12)).epistemic.mean()
    rng = np.random.default_rng(0)
    unseen = model.score(rng.integers(0, 256, size=(20, 32, 32, 3), dtype=np.uint8)).epistemic.mean()
    assert unseen > seen


@pytest.mark.slow
def test_ensemble_refused_for_the_pixel_floor(trained, tmp_path: Path, capsys) -> None:
    data, _ = trained
    args = ["train", str(data / "train"), "--out", str(tmp_path / "m"), "--head", "pixel-ridge", "--ensemble", "2"]
    assert main(args) == 2
    assert "deterministic" in capsys.readouterr().err
    default = ["train", str(data / "train"), "--out", str(tmp_path / "d"), "--ensemble", "2"]  # progress+rank
    assert main(default) == 2
    err = capsys.readouterr().err
    assert "already an ensemble" in err and "--head progress --ensemble 2" in err


@pytest.mark.slow
def test_interrupted_ensemble_resumes_to_the_same_weights(trained, tmp_path: Path, monkeypatch) -> None:
    """Stop the run while the second member trains, resume: the same weights as the uninterrupted run."""
    data, model_dir = trained
    import video2reward.training.train as train_module

    calls = {"n": 0}
    real_fit = train_module._fit_head

    def failing_fit(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_fit(*args, **kwargs)

    out = tmp_path / "m"
    args = ["train", str(data / "train"), "--out", str(out), "--head", "progress", "--ensemble", "3", *TINY]
    monkeypatch.setattr(train_module, "_fit_head", failing_fit)
    with pytest.raises(KeyboardInterrupt):
        train_module.train_reward_model([data / "train"], out, _config_from(args), progress=False)
    assert (out / "members" / "0" / "done.safetensors").exists()
    monkeypatch.setattr(train_module, "_fit_head", real_fit)
    assert main([*args, "--resume"]) == 0
    from safetensors.torch import load_file

    a, b = load_file(str(out / "model.safetensors")), load_file(str(model_dir / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def _config_from(args: list[str]):
    """The TrainConfig that the CLI arguments `args` (built from TINY) give."""
    from video2reward.training.config import TrainConfig

    assert args[args.index("--steps") + 1] == "120"
    return TrainConfig(head="progress", ensemble=3, steps=120, image_size=32, batch_size=32, frames_per_video=8, warmup_steps=4,
                       triplets_per_video=8, threads=1, pretrain="none")


@pytest.mark.slow
def test_exported_ensemble_equals_eager(trained) -> None:
    """TorchScript of the ensemble (export.py) scores like the eager model, stored goals included."""
    from video2reward.inference.export import check_inputs, scorer_for, trace

    _, model_dir = trained
    model = load(model_dir)
    eager = scorer_for(model)
    assert torch.equal(eager.goal, model.head.goal)
    inputs = check_inputs(eager, model.image_size)
    traced = trace(scorer_for(model), inputs)
    with torch.inference_mode():
        for a, b in zip(eager(*inputs), traced(*inputs)):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_progress_plus_rank_is_the_mean_of_its_two_members(trained, tmp_path: Path) -> None:
    """`--head progress+rank`: a progress and a rank member, each with half the steps; the reward is their
    mean; the model distils into one progress student and exports."""
    data, _ = trained
    model_dir = tmp_path / "pr"
    assert main(["train", str(data / "train"), "--out", str(model_dir), "--head", "progress+rank", *TINY]) == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert [m["head"] for m in config["members"]] == ["progress", "rank"]
    assert config["training"]["final_metrics"]  # both members report
    model = load(model_dir)
    video = data / "test_expert" / "ep_0.mp4"
    rewards = model.score(video)
    members = [RewardModel(m, {"head": kind, "image_size": 32})
               for m, kind in zip(model.head.members, ("progress", "rank"))]
    np.testing.assert_allclose(rewards.mu, np.mean([m.score(video).mu for m in members], axis=0), atol=1e-5)
    student = tmp_path / "student"
    assert main(["distill", str(model_dir), "--out", str(student), "--steps", "3", "--threads", "1", "--quiet"]) == 0
    assert json.loads((student / "config.json").read_text())["head"] == "progress"
    assert len(load(student).score(video).mu) == len(rewards.mu)
    assert main(["export", str(model_dir), "--format", "torchscript", "--out", str(tmp_path / "m.pt"),
                 "--quiet"]) == 0
    # the goal an export stores (and feeds back) must score like the members' own stored goals
    from video2reward.inference.export import scorer_for

    frames = torch.rand(6, 3, 32, 32)
    with torch.inference_mode():
        z = model.head.embed(frames)
        stored = model.head.predict(z, z[0], None, z)[0]
        scorer = scorer_for(model)
        exported = scorer(frames, z[0], scorer.goal, z)[0]
    torch.testing.assert_close(exported, stored)


@pytest.mark.slow
def test_temporal_plus_rank_reads_the_temporal_members_context(trained, tmp_path: Path) -> None:
    """`--head temporal+rank`: the scorer keeps the temporal member's K-frame context, the rank member reads the
    current frame alone, and the reward is their mean, streamed or not."""
    data, _ = trained
    model_dir = tmp_path / "tr"
    assert main(["train", str(data / "train"), "--out", str(model_dir), "--head", "temporal+rank",
                 "--temporal-context", "4", *TINY]) == 0
    config = json.loads((model_dir / "config.json").read_text())
    assert [m["head"] for m in config["members"]] == ["temporal", "rank"]
    model = load(model_dir)
    assert model.context == 4
    video = data / "test_expert" / "ep_0.mp4"
    rewards = model.score(video)
    members = [RewardModel(m, {"head": kind, "image_size": 32})
               for m, kind in zip(model.head.members, ("temporal", "rank"))]
    member_rewards = [m.score(video).mu for m in members]
    assert not np.allclose(member_rewards[0], member_rewards[1], atol=1e-3)  # two different readings
    np.testing.assert_allclose(rewards.mu, np.mean(member_rewards, axis=0), atol=1e-5)
