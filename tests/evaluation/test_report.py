"""`v2r report`: one self-contained HTML page; its embedded videos have one frame per reward at the reward's
frame rate; the evaluation table appears with labels; and in headless Chromium the page loads without errors,
draws every curve and moves the cursor when the video seeks (skipped where Chromium is not installed)."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from pathlib import Path

import av
import numpy as np
import pytest

from video2reward.cli import main
from video2reward.evaluation.report import label_videos
from video2reward.inference.scorer import Rewards
from video2reward.inference.scoring import ScoredVideo
from video2reward.testing.browser import Browser, file_url, find_chromium
from video2reward.testing.synthetic import moving_square, write_square_dataset
from video2reward.video.io import VideoSource, read_frames, write_video

TINY = ["--steps", "10", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "2",
        "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory) -> tuple[Path, Path]:
    root = write_square_dataset(tmp_path_factory.mktemp("report") / "data")
    for i in range(2):  # near misses: the square stops at 70% of the way
        write_video(root / "test_partial" / f"ep_{i}.mp4", moving_square(24, 32, stop=0.7), fps=10)
    videos = {}
    for split in ("test_expert", "test_fail", "test_partial"):
        for path in sorted((root / split).glob("*.mp4")):
            n = len(read_frames(path))
            videos[f"{split}/{path.name}"] = {"split": split, "success": split == "test_expert",
                                              "dense": [k / n for k in range(n)], "num_frames": n}
    (root / "labels.json").write_text(json.dumps({"videos": videos}))
    model = root.parent / "model"
    assert main(["train", str(root / "train"), "--out", str(model), *TINY]) == 0
    return root, model


@pytest.fixture(scope="module")
def page(data_and_model) -> Path:
    root, model = data_and_model
    out = root.parent / "report"
    assert main(["report", str(model), str(root / "test_expert"), str(root / "test_fail"), "--out", str(out),
                 "--quiet"]) == 0
    return out / "index.html"


@pytest.fixture(scope="module")
def success_page(data_and_model) -> Path:
    """The page of a model with a success detector, for one video."""
    root, _ = data_and_model
    model = root.parent / "success-model"
    assert main(["train", str(root / "train"), "--out", str(model), "--head", "success", *TINY]) == 0
    out = root.parent / "success-report"
    assert main(["report", str(model), str(root / "test_expert" / "ep_1.mp4"), "--out", str(out), "--quiet"]) == 0
    return out / "index.html"


@pytest.fixture(scope="module")
def near_miss_page(data_and_model) -> Path:
    """The page of expert, failed and near-miss videos, with their labels."""
    root, model = data_and_model
    out = root.parent / "near-miss-report"
    assert main(["report", str(model), *(str(root / s) for s in ("test_expert", "test_fail", "test_partial")),
                 "--out", str(out), "--quiet"]) == 0
    return out / "index.html"


def page_data(path: Path) -> dict:
    text = path.read_text()
    match = re.search(r'<script type="application/json" id="v2r-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


@pytest.mark.slow
def test_the_page_is_self_contained_and_its_videos_match_the_rewards(page: Path, data_and_model) -> None:
    root, _ = data_and_model
    text = page.read_text()
    assert not re.search(r'(src|href)="(?!data:)', text)  # nothing loaded from elsewhere
    data = page_data(page)
    assert [v["name"] for v in data["videos"]] == [str(root / s / f"ep_{i}.mp4") for s in ("test_expert", "test_fail")
                                                   for i in (0, 1)]
    for video in data["videos"]:
        assert len(video["mu"]) == len(video["sigma"]) == len(read_frames(video["name"]))
        assert video["mime"] == "video/mp4" and video["fps"] == pytest.approx(10)
        with av.open(io.BytesIO(base64.b64decode(video["data"]))) as container:  # what the browser will play
            stream = container.streams.video[0]
            frames = list(container.decode(stream))
            assert len(frames) == len(video["mu"])  # one encoded frame per reward ...
            assert float(stream.average_rate) == pytest.approx(video["fps"])  # ... at the rate the cursor assumes
            assert [round(f.time * video["fps"]) for f in frames] == list(range(len(frames)))


@pytest.mark.slow
def test_labels_next_to_the_videos_give_the_eval_table(page: Path, data_and_model, tmp_path: Path) -> None:
    data = page_data(page)
    assert data["eval"]["n_expert"] == 2 and data["eval"]["n_failed"] == 2
    assert data["eval"]["dense_spearman"] is not None and data["labels_file"].endswith("labels.json")
    groups = [v["label"]["group"] for v in data["videos"]]
    assert groups == ["expert", "expert", "failed", "failed"]
    assert all(len(v["dense"]) == len(v["mu"]) for v in data["videos"])

    root, model = data_and_model
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(root / "test_expert" / "ep_0.mp4", alone / "ep_0.mp4")  # no labels.json anywhere near
    assert main(["report", str(model), str(alone), "--out", str(tmp_path / "r"), "--quiet"]) == 0
    bare = page_data(tmp_path / "r" / "index.html")
    assert bare["eval"] is None and bare["videos"][0]["label"] is None and bare["videos"][0]["dense"] is None


@pytest.mark.slow
def test_workers_give_the_same_page_data(page: Path, data_and_model, tmp_path: Path) -> None:
    root, model = data_and_model
    assert main(["report", str(model), str(root / "test_expert"), str(root / "test_fail"), "--out", str(tmp_path),
                 "--workers", "2", "--quiet"]) == 0
    a, b = page_data(page), page_data(tmp_path / "index.html")
    assert [(v["mu"], v["sigma"], v["data"]) for v in a["videos"]] == [(v["mu"], v["sigma"], v["data"])
                                                                       for v in b["videos"]]


@pytest.mark.slow
def test_a_success_model_page_carries_its_probability_per_frame(success_page: Path) -> None:
    (video,) = page_data(success_page)["videos"]
    assert len(video["success_prob"]) == len(video["mu"]) and all(0 <= p <= 1 for p in video["success_prob"])


SEEK_CHECK = """(async () => {
  const out = [];
  for (const card of document.querySelectorAll(".card")) {
    const video = card.querySelector("video"), svg = card.querySelector("svg");
    if (video.readyState < 1) await new Promise(r => video.addEventListener("loadedmetadata", r, {once: true}));
    const path = svg.querySelector("path.mu").getAttribute("d");
    const points = path.match(/[ML][^ML]+/g).map(c => c.slice(1).split(",").map(Number));
    const cursor = () => Number(svg.querySelector("line.cursor").getAttribute("x1"));
    const before = cursor();
    const fps = JSON.parse(document.getElementById("v2r-data").textContent).videos[out.length].fps;
    const frame = Math.floor(points.length * 0.6);
    video.currentTime = (frame + 0.5) / fps;
    await new Promise(r => video.addEventListener("seeked", r, {once: true}));
    out.push({points: points.length, before, after: cursor(), expected: points[frame][0],
              error: video.error && video.error.message, duration: video.duration});
  }
  return out;
})()"""


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_in_headless_chromium_the_curves_draw_and_the_cursor_follows_seeking(page: Path, success_page: Path) -> None:
    data = page_data(page)
    with Browser() as browser:
        browser.open(file_url(page))
        cards = browser.evaluate(SEEK_CHECK)
        table = browser.evaluate("[...document.querySelectorAll('#eval-table tr')].length")
        browser.open(file_url(success_page))
        success_cards = browser.evaluate(SEEK_CHECK)
        success_points = browser.evaluate("document.querySelector('path.success').getAttribute('d').split('L').length")
        errors = browser.errors
    assert errors == []
    assert success_cards[0]["after"] > success_cards[0]["before"]
    assert success_points == len(page_data(success_page)["videos"][0]["mu"])
    assert len(cards) == len(data["videos"]) == 4
    for card, video in zip(cards, data["videos"]):
        assert card["error"] is None and card["duration"] == pytest.approx(len(video["mu"]) / video["fps"], abs=0.05)
        assert card["points"] == len(video["mu"])  # the curve has a point per frame
        assert card["after"] == pytest.approx(card["expected"], abs=0.01) and card["after"] > card["before"]
    assert table == 6  # header + five metrics


def test_failed_and_near_miss_videos_get_their_final_reward_and_no_voc(tmp_path: Path) -> None:
    """VOC scores the order of a success: only expert videos carry one; every labelled video its final reward."""
    curves = {"test_expert/e.mp4": [0.1, 0.4, 0.9], "test_fail/f.mp4": [0.3, 0.2, 0.25],
              "test_partial/p.mp4": [0.1, 0.5, 0.6]}
    labels = {name: {"split": name.split("/")[0], "success": name.startswith("test_expert"), "dense": [0, 1, 2],
                     "num_frames": 3} for name in curves}
    (tmp_path / "labels.json").write_text(json.dumps({"videos": labels}))
    videos = [ScoredVideo(VideoSource(tmp_path / name, name), Rewards(np.array(mu), np.full(3, 0.1), fps=10.0))
              for name, mu in curves.items()]
    result, per_video = label_videos(videos, tmp_path / "labels.json")
    assert result.n_expert == result.n_failed == result.n_partial == 1
    expert, failed, near = (per_video[name] for name in curves)
    assert (expert["group"], failed["group"], near["group"]) == ("expert", "failed", "near miss")
    assert expert["voc"] == pytest.approx(1.0) and "voc" not in failed and "voc" not in near
    assert failed["final"] == pytest.approx(0.25) and near["final"] == pytest.approx(0.4)  # mean of the last 5 (3)
    assert failed["last_k"] == 5


@pytest.mark.slow
def test_the_page_has_the_models_fixed_axis_and_no_voc_for_failures(near_miss_page: Path) -> None:
    data = page_data(near_miss_page)
    assert data["axis"]["low"] == 0.0 and data["axis"]["high"] == 1.0  # the default head: a [0, 1] progress
    assert data["axis"]["caption"].startswith("mu: predicted progress")
    assert data["heading"].startswith("task data") and "progress+rank head" in data["heading"]
    groups = {v["label"]["group"]: v["label"] for v in data["videos"]}
    assert set(groups) == {"expert", "failed", "near miss"}
    assert "voc" in groups["expert"] and "voc" not in groups["failed"] and "voc" not in groups["near miss"]
    assert data["eval"]["n_partial"] == 2


PAGE_CHECK = """(() => {
  const cards = [...document.querySelectorAll(".card")].map(card => {
    const video = card.querySelector("video"), controls = card.querySelector(".controls");
    const v = video.getBoundingClientRect(), c = controls.getBoundingClientRect();
    const ticks = [...card.querySelectorAll("svg.chart text.tick")].filter(t => t.getAttribute("text-anchor") === "end")
      .map(t => t.textContent);
    return {tag: card.querySelector(".tag").textContent, nativeControls: video.controls,
            controlsTop: c.top, videoBottom: v.bottom, videoHeight: v.height, ticks};
  });
  const overview = document.getElementById("overview");
  const curves = [...overview.querySelectorAll("path.curve")].map(p => [p.dataset.group, p.getAttribute("stroke")]);
  const means = [...overview.querySelectorAll("path.mean")].map(p => p.dataset.group);
  return {cards, curves, means, legend: document.getElementById("overview-legend").textContent,
          top: overview.getBoundingClientRect().top,
          firstCard: document.querySelector(".card").getBoundingClientRect().top};
})()"""


@pytest.mark.slow
@pytest.mark.skipif(find_chromium() is None, reason="Chromium is not installed (apt-get install chromium)")
def test_in_headless_chromium_the_overview_tags_axis_and_controls_read_right(near_miss_page: Path) -> None:
    data = page_data(near_miss_page)
    with Browser() as browser:
        browser.open(file_url(near_miss_page))
        page = browser.evaluate(PAGE_CHECK)
        errors = browser.errors
    assert errors == []
    assert len(page["cards"]) == len(data["videos"]) == 6
    for card, video in zip(page["cards"], data["videos"]):
        group = video["label"]["group"]
        assert card["tag"].startswith(group) and "final reward" in card["tag"]
        assert ("VOC" in card["tag"]) == (group == "expert")  # no VOC badge on a failed video or a near miss
        assert card["nativeControls"] is False  # the browser's controls would cover the picture's lower part ...
        assert card["controlsTop"] >= card["videoBottom"] and card["videoHeight"] > 0  # ... the buttons sit below it
        assert card["ticks"] == page["cards"][0]["ticks"] == ["0", "0.2", "0.4", "0.6", "0.8", "1"]  # one fixed axis
    # the overview, above the videos: one curve per video in its group's colour, and each group's mean
    assert page["top"] < page["firstCard"]
    assert sorted(group for group, _ in page["curves"]) == ["expert"] * 2 + ["failed"] * 2 + ["near miss"] * 2
    assert len({stroke for _, stroke in page["curves"]}) == 3
    assert sorted(page["means"]) == ["expert", "failed", "near miss"]
    assert "near miss (2" in page["legend"]
