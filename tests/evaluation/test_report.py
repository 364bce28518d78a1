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
import pytest

from tests.helpers.browser import Browser, file_url, find_chromium
from video2reward.cli import main
from video2reward.testing.synthetic import write_square_dataset
from video2reward.video.io import read_frames

TINY = ["--steps", "10", "--image-size", "32", "--batch-size", "32", "--frames-per-video", "8", "--warmup-steps", "2",
        "--pretrain", "none", "--quiet"]


@pytest.fixture(scope="module")
def data_and_model(tmp_path_factory) -> tuple[Path, Path]:
    root = write_square_dataset(tmp_path_factory.mktemp("report") / "data")
    videos = {}
    for split in ("test_expert", "test_fail"):
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
