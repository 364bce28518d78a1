"""The plots are written, open as PNGs of a sensible size, and survive edge cases (1-frame videos, no
thumbnails, optional bands and axes); every reward plot of a model has the same fixed reward axis, names the task
and the model and says what its numbers mean; eval.png draws near misses in their own colour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.helpers.tiny_model import tiny_model
from video2reward.evaluation.metrics import evaluate
from video2reward.evaluation.plots import (
    NEAR_MISS_COLOR,
    eval_summary_figure,
    plot_eval_summary,
)
from video2reward.inference import scoring
from video2reward.inference.plots import (
    plot_reward_curve,
    reward_curve_figure,
    thumbnail_indices,
)
from video2reward.inference.reward_axis import (
    UNBOUNDED_AXIS,
    RewardAxis,
    reward_axis,
    shared_folder,
)
from video2reward.testing.synthetic import moving_square
from video2reward.video.io import write_video


def _frames(n: int, size: int = 32) -> np.ndarray:
    frames = np.zeros((n, size, size, 3), np.uint8)
    for t in range(n):
        frames[t, ..., 0] = int(255 * t / max(1, n - 1))
        frames[t, size // 4 : size // 2, : size // 2, 1] = 255
    return frames


def _check_png(path: Path, min_w: int = 400, min_h: int = 250) -> None:
    assert path.is_file()
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        im.load()
    assert min_w <= w <= 4000 and min_h <= h <= 4000
    assert path.stat().st_size > 5_000
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temp file left behind


def test_thumbnail_indices() -> None:
    assert thumbnail_indices(100, 8) == [0, 14, 28, 42, 57, 71, 85, 99]
    assert thumbnail_indices(9, 3) == [0, 4, 8]
    assert thumbnail_indices(5, 8) == [0, 1, 2, 3, 4]
    assert thumbnail_indices(1, 8) == [0]
    assert thumbnail_indices(10, 1) == [0]
    assert thumbnail_indices(0, 8) == []
    assert thumbnail_indices(10, 0) == []
    for n in (2, 8, 9, 17, 1000):
        idx = thumbnail_indices(n, 8)
        assert idx[0] == 0 and idx[-1] == n - 1 and len(set(idx)) == len(idx) == min(n, 8)
        assert idx == sorted(idx)


def test_plot_reward_curve_plain(tmp_path: Path) -> None:
    n = 50
    frames = _frames(n)
    idx = thumbnail_indices(n, 6)
    out = plot_reward_curve(tmp_path / "a" / "b" / "curve.png", np.linspace(0, 1, n), frames[idx], idx, title="ep 0")
    assert out == tmp_path / "a" / "b" / "curve.png"
    _check_png(out)


def test_plot_reward_curve_with_sigma_success_and_fps(tmp_path: Path) -> None:
    n = 120
    frames = _frames(n, 48)
    idx = thumbnail_indices(n)
    mu = np.tanh(np.linspace(-2, 2, n))
    out = plot_reward_curve(
        tmp_path / "full.png", mu, frames[idx], idx,
        sigma=np.full(n, 0.1), title="with everything", success_prob=np.linspace(0, 1, n), fps=30.0,
    )
    _check_png(out)


def test_plot_reward_curve_one_frame(tmp_path: Path) -> None:
    out = plot_reward_curve(
        tmp_path / "one.png", np.array([0.4]), _frames(1), [0], sigma=np.array([0.05]), success_prob=np.array([0.7]), fps=10
    )
    _check_png(out)


def test_plot_reward_curve_without_thumbnails(tmp_path: Path) -> None:
    out = plot_reward_curve(tmp_path / "bare.png", np.arange(10.0), np.zeros((0, 8, 8, 3), np.uint8), [])
    _check_png(out, min_h=200)


def test_plot_reward_curve_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "curve.png"
    path.write_bytes(b"old")
    plot_reward_curve(path, np.arange(5.0), _frames(5)[[0, 4]], [0, 4])
    _check_png(path)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rewards": np.array([])},
        {"sigma": np.ones(3)},
        {"success_prob": np.ones(3)},
        {"thumb_indices": [0]},
        {"thumb_indices": [0, 10]},
        {"thumbnails": np.zeros((2, 8, 8), np.uint8)},
        {"thumbnails": np.zeros((2, 8, 8, 3), np.float32)},
        {"fps": 0.0},
    ],
)
def test_plot_reward_curve_rejects_bad_input(tmp_path: Path, kwargs: dict) -> None:
    args = {"rewards": np.arange(5.0), "thumbnails": _frames(5)[[0, 4]], "thumb_indices": [0, 4], **kwargs}
    with pytest.raises(ValueError):
        plot_reward_curve(tmp_path / "x.png", **args)
    assert not (tmp_path / "x.png").exists()


def test_plot_eval_summary(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    expert = {f"e{i}.mp4": np.linspace(0, 1, 20 + 5 * i) + 0.05 * rng.normal(size=20 + 5 * i) for i in range(4)}
    failed = {f"f{i}.mp4": 0.2 * rng.random(15 + i) for i in range(3)}
    failed["one_frame.mp4"] = np.array([0.1])
    res = evaluate(expert, failed, None)
    _check_png(plot_eval_summary(tmp_path / "sub" / "summary.png", res, expert, failed))


def test_plot_eval_summary_empty_groups(tmp_path: Path) -> None:
    expert = {"e.mp4": np.linspace(0, 1, 10)}
    res = evaluate(expert, {}, None)
    _check_png(plot_eval_summary(tmp_path / "only_expert.png", res, expert, {}), min_h=200)
    _check_png(plot_eval_summary(tmp_path / "empty.png", evaluate({}, {}, None), {}, {}), min_h=200)


def test_plots_do_not_touch_pyplot_or_backend(tmp_path: Path) -> None:
    code = (
        "import sys, numpy as np, matplotlib\n"
        "before = dict.__getitem__(matplotlib.rcParams, 'backend')\n"
        "from video2reward.inference.plots import plot_reward_curve\n"
        f"plot_reward_curve({str(tmp_path / 'p.png')!r}, np.arange(4.0), np.zeros((1, 4, 4, 3), np.uint8), [0])\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "assert dict.__getitem__(matplotlib.rcParams, 'backend') == before\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ the fixed reward axis (issue 22)


def _band_y(ax) -> np.ndarray:
    """The y values of the mu +- sigma band's outline (the one PolyCollection of the axes)."""
    (band,) = [c for c in ax.collections if c.get_label() == "mu ± sigma"]
    return np.concatenate([path.vertices[:, 1] for path in band.get_paths()])


def test_a_failed_videos_plot_has_the_same_reward_axis_as_an_experts() -> None:
    n = 40
    frames = _frames(n)
    idx = thumbnail_indices(n)
    axis = reward_axis({"head": "progress+rank"})
    expert = reward_curve_figure(np.linspace(0.0, 1.0, n), frames[idx], idx, sigma=np.full(n, 0.3), axis=axis)
    failed = reward_curve_figure(0.3 + 0.1 * np.sin(np.arange(n)), frames[idx], idx, sigma=np.full(n, 0.2),
                                 axis=axis)
    low, high = expert.axes[0].get_ylim()
    assert failed.axes[0].get_ylim() == (low, high) == axis.limits
    assert -0.1 < low < 0.0 and 1.0 < high < 1.1  # [0, 1] with a little room, not the failed video's 0.2-0.4
    for fig in (expert, failed):  # the band stays on the reward's range, though mu +- sigma leaves it
        band = _band_y(fig.axes[0])
        assert band.min() >= 0.0 and band.max() <= 1.0
    assert _band_y(expert.axes[0]).max() == 1.0 and _band_y(expert.axes[0]).min() == 0.0  # clipped, not dropped


def test_the_axis_is_the_heads_range_and_fixed_per_model_for_unbounded_heads() -> None:
    for head in ("progress", "rank", "success", "temporal", "progress+rank"):
        assert (reward_axis({"head": head}).low, reward_axis({"head": head}).high) == (0.0, 1.0)
    ridge = reward_axis({"head": "pixel-ridge"})  # a regression: unbounded, so one wide axis for every video
    assert (ridge.low, ridge.high) == UNBOUNDED_AXIS and not ridge.bounded
    assert "unbounded" in ridge.caption() and "unbounded" not in reward_axis({"head": "progress"}).caption()
    assert reward_axis({"head": "goal-distance"}).bounded is False
    assert (reward_axis({"head": "temporal-distance"}).low, reward_axis({"head": "temporal-distance"}).high) == (-1, 1)
    n = 30
    far = reward_curve_figure(np.linspace(-2.0, 3.0, n), np.zeros((0, 4, 4, 3), np.uint8), [], axis=ridge)
    near = reward_curve_figure(np.linspace(0.4, 0.5, n), np.zeros((0, 4, 4, 3), np.uint8), [], axis=ridge)
    assert far.axes[0].get_ylim() == near.axes[0].get_ylim() == ridge.limits
    caption = far.get_supxlabel()
    assert "frames beyond the axis" in caption and "frames beyond" not in near.get_supxlabel()


def test_the_plot_names_the_video_task_and_model_and_says_what_the_numbers_mean() -> None:
    fig = reward_curve_figure(np.linspace(0, 1, 10), np.zeros((0, 4, 4, 3), np.uint8), [], sigma=np.full(10, 0.1),
                              title="data/reach/test_fail/ep_0.mp4", axis=RewardAxis(),
                              subtitle="task reach   ·   model reach-progress (progress head)")
    assert fig.get_suptitle() == "data/reach/test_fail/ep_0.mp4"
    assert fig.axes[0].get_title() == "task reach   ·   model reach-progress (progress head)"
    assert fig.get_supxlabel().startswith("mu: predicted progress, 0 = start, 1 = task done")
    assert "band: mu ± sigma" in fig.get_supxlabel()


def test_v2r_score_plots_every_video_of_a_model_on_one_axis_titled_with_task_and_model(tmp_path: Path,
                                                                                        monkeypatch) -> None:
    for split, stop in (("test_expert", 1.0), ("test_fail", 0.15)):
        write_video(tmp_path / "reach" / split / "ep_0.mp4", moving_square(12, 32, stop=stop), fps=10)
    drawn = {}

    def record(path, *args, **kwargs):
        fig = reward_curve_figure(*args, **kwargs)
        drawn[Path(path).name] = (fig.axes[0].get_ylim(), fig.axes[0].get_title())
        return path

    monkeypatch.setattr(scoring, "plot_reward_curve", record)
    model = tiny_model()
    scoring.score_videos(model, [tmp_path / "reach"], plot_dir=tmp_path / "plots", progress=False)
    assert sorted(drawn) == ["reach__test_expert__ep_0.png", "reach__test_fail__ep_0.png"]
    (expert_ylim, title), (failed_ylim, _) = drawn.values()
    assert expert_ylim == failed_ylim == reward_axis(model.config).limits
    assert title == f"task reach   ·   model progress ({model.describe()})"  # made in memory: named by its head


def test_the_task_is_the_folder_above_the_split_folders() -> None:
    assert shared_folder(["d/pendulum/test_fail/ep_0.mp4", "d/pendulum/test_expert/ep_1.mp4"]) == "pendulum"
    assert shared_folder(["runs/mytask/train/a.mp4", "runs/mytask/train/b.mp4"]) == "mytask"
    assert shared_folder(["a.mp4"]) is None and shared_folder([]) is None


def _groups() -> tuple[dict, dict, dict]:
    rng = np.random.default_rng(0)
    expert = {f"e{i}.mp4": np.linspace(0, 1, 20 + i) + 0.02 * rng.normal(size=20 + i) for i in range(3)}
    failed = {f"f{i}.mp4": 0.2 + 0.1 * rng.random(18) for i in range(2)}
    partial = {f"p{i}.mp4": np.minimum(np.linspace(0, 1, 20), 0.7) for i in range(2)}
    return expert, failed, partial


def test_eval_png_draws_near_misses_in_their_own_colour() -> None:
    expert, failed, partial = _groups()
    fig = eval_summary_figure(evaluate(expert, failed, None, partial=partial), expert, failed, partial)
    legend = fig.axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert "near miss (n=2)" in labels and "near miss mean" in labels
    near = [line for line in fig.axes[0].get_lines() if line.get_label() == "near miss mean"]
    assert near[0].get_color() == NEAR_MISS_COLOR
    assert "near-miss AUROC 1.000" in fig.axes[0].get_title()
    without = eval_summary_figure(evaluate(expert, failed, None), expert, failed)
    assert not [t for t in without.axes[0].get_legend().get_texts() if "near miss" in t.get_text()]


def test_eval_png_names_task_and_model_and_explains_the_auroc(tmp_path: Path) -> None:
    expert, failed, partial = _groups()
    model = tiny_model()
    result = evaluate(expert, failed, None, partial=partial)
    fig = eval_summary_figure(result, expert, failed, partial, model=model, data_dir=tmp_path / "pendulum")
    assert fig.get_suptitle() == f"task pendulum   ·   model progress ({model.describe()})"
    assert fig.axes[0].get_ylim() == reward_axis(model.config).limits
    caption = fig.get_supxlabel()
    assert "success AUROC (last 5): the chance that an expert video's mean reward over its last 5 frames beats a " \
           "failed video's" in caption
    assert "VOC: how steadily the reward rises" in caption and "near-miss AUROC: the same" in caption
    _check_png(plot_eval_summary(tmp_path / "eval.png", result, expert, failed, partial, model=model,
                                 data_dir=tmp_path / "pendulum"))
