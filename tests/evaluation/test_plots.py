"""The plots are written, open as PNGs of a sensible size, and survive edge cases (1-frame videos, no
thumbnails, optional bands and axes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from video2reward.evaluation.metrics import evaluate
from video2reward.evaluation.plots import plot_eval_summary
from video2reward.inference.plots import plot_reward_curve, thumbnail_indices


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
