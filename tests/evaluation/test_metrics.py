"""Metrics against values worked out by hand (the arithmetic is in the comments)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from video2reward.errors import V2RError
from video2reward.evaluation.metrics import (
    EvalResult,
    add_near_misses,
    auroc,
    dense_correlation,
    dense_from_labels,
    evaluate,
    last_k_score,
    load_labels,
    rankdata,
    spearman,
    success_auroc,
    value_order_correlation,
    video_voc,
)

SQRT_09 = math.sqrt(0.9)  # spearman([1, 2, 2, 3], [1, 2, 3, 4]): dot 4.5 / sqrt(4.5 * 5)


# ---------------------------------------------------------------- ranks and Spearman
def test_rankdata_without_and_with_ties() -> None:
    assert rankdata([30, 10, 20]).tolist() == [3, 1, 2]
    assert rankdata([10, 20, 20, 5]).tolist() == [2, 3.5, 3.5, 1]
    assert rankdata([3, 1, 4, 1, 5]).tolist() == [3, 1.5, 4, 1.5, 5]
    assert rankdata([7, 7, 7]).tolist() == [2, 2, 2]
    assert rankdata([]).tolist() == []
    assert rankdata([-0.0, 0.0]).tolist() == [1.5, 1.5]


def test_rankdata_rejects_nan() -> None:
    with pytest.raises(ValueError, match="NaN"):
        rankdata([1.0, float("nan")])


def test_spearman_hand_computed() -> None:
    # no ties: rank differences [1, -1, 1, -1, 0] -> 1 - 6*4 / (5*24) = 0.8
    assert spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]) == pytest.approx(0.8)
    # ties: ranks [1, 2.5, 2.5, 4] vs [1, 3, 2, 4]; deviations [-1.5, 0, 0, 1.5] . [-1.5, .5, -.5, 1.5] = 4.5,
    # norms^2 4.5 and 5 -> 4.5 / sqrt(22.5) = sqrt(0.9)
    assert spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(SQRT_09)
    assert spearman([1, 2, 3], [30, 20, 10]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3], [1, 4, 9]) == pytest.approx(1.0)  # monotone, not linear


def test_spearman_undefined_is_nan() -> None:
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))
    assert math.isnan(spearman([1, 2, 3], [4, 4, 4]))
    assert math.isnan(spearman([1], [2]))
    assert math.isnan(spearman([], []))
    with pytest.raises(ValueError, match="equal lengths"):
        spearman([1, 2], [1, 2, 3])


def test_spearman_matches_scipy_when_available() -> None:
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 5, 40)  # many ties
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b)[0])
    assert rankdata(a).tolist() == stats.rankdata(a).tolist()


# ---------------------------------------------------------------- VOC
def test_voc_increasing_reversed_constant() -> None:
    assert value_order_correlation([np.linspace(0, 1, 10)]) == pytest.approx(1.0)
    assert value_order_correlation([np.exp(np.arange(6))]) == pytest.approx(1.0)
    assert value_order_correlation([np.linspace(1, 0, 10)]) == pytest.approx(-1.0)
    assert value_order_correlation([np.full(8, 0.3)]) == 0.0


def test_voc_mixed_videos_hand_computed() -> None:
    videos = [
        np.array([0.0, 1, 2, 3]),  # 1.0
        np.array([1.0, 2, 2, 3]),  # sqrt(0.9), see SQRT_09
        np.array([5.0, 5, 5]),  # constant: counts as 0.0
        np.array([9.0]),  # 1 frame: skipped
    ]
    assert value_order_correlation(videos) == pytest.approx((1.0 + SQRT_09 + 0.0) / 3)
    assert math.isnan(video_voc([9.0]))


def test_voc_nothing_left_is_nan() -> None:
    assert math.isnan(value_order_correlation([]))
    assert math.isnan(value_order_correlation([np.array([1.0]), np.array([2.0])]))


# ---------------------------------------------------------------- AUROC
def test_auroc_separation_reversed_ties() -> None:
    assert auroc([3, 4, 5], [0, 1, 2]) == 1.0
    assert auroc([0, 1, 2], [3, 4, 5]) == 0.0
    assert auroc([1, 1, 1], [1, 1]) == 0.5
    assert math.isnan(auroc([], [1.0]))
    assert math.isnan(auroc([1.0], []))


def test_auroc_hand_computed_with_ties() -> None:
    # pairs: 0.8 beats 0.5, 0.2, loses to 0.9 -> 2; 0.5 ties 0.5 (1/2), beats 0.2, loses to 0.9 -> 1.5; 3.5/6
    assert auroc([0.8, 0.5], [0.5, 0.2, 0.9]) == pytest.approx(3.5 / 6)


def test_last_k_score_short_videos() -> None:
    assert last_k_score([1, 2, 3, 4, 5, 6], last_k=5) == pytest.approx(4.0)
    assert last_k_score([1, 2], last_k=5) == pytest.approx(1.5)
    assert last_k_score([7], last_k=1) == 7.0
    with pytest.raises(ValueError):
        last_k_score([1, 2], last_k=0)
    with pytest.raises(ValueError):
        last_k_score([], last_k=3)


def test_success_auroc_uses_last_k_frames() -> None:
    expert = [np.array([9.0, 0.7, 0.9]), np.array([0.5])]  # last-2 means 0.8, 0.5 (short: all frames)
    failed = [np.array([0.4, 0.6]), np.array([0.0, 0.2, 0.2]), np.array([0.9] * 4)]  # 0.5, 0.2, 0.9
    assert success_auroc(expert, failed, last_k=2) == pytest.approx(3.5 / 6)
    # with last_k=3 the first expert video scores (9+0.7+0.9)/3 > 0.9: 3 wins + 1.5 = 4.5/6
    assert success_auroc(expert, failed, last_k=3) == pytest.approx(4.5 / 6)
    assert math.isnan(success_auroc(expert, []))


# ---------------------------------------------------------------- dense correlation
def test_dense_correlation_pooled_hand_computed() -> None:
    # pooled r = [0,1,2,1,0] -> ranks [1.5,3.5,5,3.5,1.5]; d = [0,1,3,2,0] -> ranks [1.5,3,5,4,1.5]
    # deviations . = 9, norms^2 9 and 9.5 -> 9 / sqrt(85.5) = 3 / sqrt(9.5)
    rho = dense_correlation([[0, 1, 2], [1, 0]], [[0, 1, 3], [2, 0]])
    assert rho == pytest.approx(3 / math.sqrt(9.5))
    assert math.isnan(dense_correlation([], []))


def test_dense_correlation_length_mismatch_names_video() -> None:
    with pytest.raises(ValueError, match="video 1"):
        dense_correlation([[0, 1], [0, 1, 2]], [[0, 1], [0, 1]])


# ---------------------------------------------------------------- evaluate / EvalResult
def _toy() -> tuple[dict, dict]:
    expert = {"data/test_expert/ep_000.mp4": np.array([0.0, 1, 2, 3]), "data/test_expert/ep_001.mp4": np.array([1.0, 2, 2, 3])}
    failed = {"data/test_failed/ep_000.mp4": np.array([2.0, 1, 0]), "data/test_failed/ep_001.mp4": np.array([0.5])}
    return expert, failed


def test_evaluate_numbers_and_per_video() -> None:
    expert, failed = _toy()
    res = evaluate(expert, failed, None, last_k=2)
    assert res.voc == pytest.approx((1.0 + SQRT_09) / 2)  # expert videos only
    assert res.auroc == 1.0  # expert last-2 means 2.5, 2.5 vs failed 0.5, 0.5
    assert res.dense_spearman is None
    assert (res.n_expert, res.n_failed) == (2, 2)
    rows = {r["video"]: r for r in res.per_video}
    assert rows["data/test_failed/ep_000.mp4"]["split"] == "failed"
    assert rows["data/test_failed/ep_000.mp4"]["voc"] == pytest.approx(-1.0)
    assert math.isnan(rows["data/test_failed/ep_001.mp4"]["voc"])
    assert rows["data/test_expert/ep_001.mp4"]["score_last_k"] == pytest.approx(2.5)
    table = res.table()
    assert "VOC" in table and "AUROC" in table and "n/a (no labels)" in table
    assert "data/test_expert/ep_000.mp4" in table


def test_evaluate_dense_matches_names_by_path_suffix() -> None:
    expert, failed = _toy()
    dense = {"test_expert/ep_000.mp4": [0, 1, 2, 3], "test_failed/ep_000.mp4": [0, 1, 2]}
    res = evaluate(expert, failed, dense)
    # pooled r = [0,1,2,3,2,1,0] vs d = [0,1,2,3,0,1,2]: computed with the tested primitive
    assert res.dense_spearman == pytest.approx(spearman([0, 1, 2, 3, 2, 1, 0], [0, 1, 2, 3, 0, 1, 2]))
    assert evaluate(expert, failed, {"other/x.mp4": [1.0]}).dense_spearman is None


def test_evaluate_dense_length_mismatch_names_video() -> None:
    expert, failed = _toy()
    with pytest.raises(V2RError, match="test_expert/ep_000.mp4"):
        evaluate(expert, failed, {"test_expert/ep_000.mp4": [0.0, 1.0]})


def test_evaluate_rejects_nan_rewards_naming_video() -> None:
    with pytest.raises(V2RError, match="bad.mp4"):
        evaluate({"bad.mp4": np.array([0.0, np.nan])}, {})


def test_eval_result_json_round_trip() -> None:
    expert, failed = _toy()
    res = evaluate(expert, failed, {"test_expert/ep_000.mp4": [0, 1, 2, 3]})
    text = res.to_json()
    json.loads(text)  # strict JSON
    back = EvalResult.from_json(text)
    assert back.voc == pytest.approx(res.voc) and back.auroc == pytest.approx(res.auroc)
    assert back.dense_spearman == pytest.approx(res.dense_spearman)
    assert (back.n_expert, back.n_failed, back.last_k) == (res.n_expert, res.n_failed, res.last_k)
    assert [r["video"] for r in back.per_video] == [r["video"] for r in res.per_video]
    assert math.isnan(back.per_video[-1]["voc"])  # 1-frame video: NaN -> null -> NaN


def test_eval_result_json_undefined_metrics() -> None:
    res = evaluate({"a.mp4": np.array([1.0])}, {}, None)
    assert math.isnan(res.voc) and math.isnan(res.auroc)
    d = json.loads(res.to_json())
    assert d["voc"] is None and d["auroc"] is None and d["dense_spearman"] is None
    back = EvalResult.from_json(res.to_json())
    assert math.isnan(back.voc) and math.isnan(back.auroc) and back.dense_spearman is None
    assert "n/a" in res.table()


# ---------------------------------------------------------------- near misses (test_partial)
def _near_misses() -> dict:
    # last-2 means: 2.5, 1.0, and 0.0 for the 1-frame video
    return {"data/test_partial/ep_000.mp4": np.array([3.0, 2, 3]), "data/test_partial/ep_001.mp4": np.array([0.0, 2, 0]),
            "data/test_partial/ep_002.mp4": np.array([0.0])}


def test_evaluate_near_miss_auroc_hand_computed() -> None:
    expert, failed = _toy()
    res = evaluate(expert, failed, None, last_k=2, partial=_near_misses())
    # expert last-2 means 2.5, 2.5 vs near misses 2.5, 1.0, 0.0: each expert wins 0.5 + 1 + 1 of 3 pairs -> 5/6
    assert res.auroc_near_miss == pytest.approx(5 / 6)
    assert res.n_partial == 3
    base = evaluate(expert, failed, None, last_k=2)
    assert (res.voc, res.auroc, res.n_expert, res.n_failed) == (base.voc, base.auroc, base.n_expert, base.n_failed)
    rows = {r["video"]: r for r in res.per_video}
    assert rows["data/test_partial/ep_001.mp4"]["split"] == "partial"
    assert rows["data/test_partial/ep_001.mp4"]["score_last_k"] == pytest.approx(1.0)
    assert [(r["video"], r["score_last_k"]) for r in res.per_video[: len(base.per_video)]] == [
        (r["video"], r["score_last_k"]) for r in base.per_video]  # the near misses' rows come after
    table = res.table()
    assert "near-miss AUROC (last 2)  0.833" in table and "2 expert, 2 failed, 3 near miss" in table
    assert add_near_misses(base, expert, _near_misses()).auroc_near_miss == pytest.approx(5 / 6)


def test_near_misses_stay_out_of_the_dense_spearman() -> None:
    expert, failed = _toy()
    dense = {"test_expert/ep_000.mp4": [0, 1, 2, 3], "test_failed/ep_000.mp4": [0, 1, 2],
             "test_partial/ep_000.mp4": [0, 1, 2], "test_partial/ep_001.mp4": [2, 1, 0]}
    with_partial = evaluate(expert, failed, dense, partial=_near_misses())
    assert with_partial.dense_spearman == evaluate(expert, failed, dense).dense_spearman  # same pooled frames


def test_near_miss_auroc_undefined_without_near_misses() -> None:
    expert, failed = _toy()
    for res in (evaluate(expert, failed), evaluate(expert, failed, partial={})):
        assert math.isnan(res.auroc_near_miss) and res.n_partial == 0
        assert json.loads(res.to_json())["auroc_near_miss"] is None
        assert "near-miss AUROC (last 5)  n/a (no near misses)" in res.table()
        assert "near miss," not in res.table() and res.table().count("2 expert, 2 failed\n") == 1


def test_near_miss_json_round_trip_and_older_results() -> None:
    expert, failed = _toy()
    res = evaluate(expert, failed, partial=_near_misses())
    back = EvalResult.from_json(res.to_json())
    assert back.auroc_near_miss == pytest.approx(res.auroc_near_miss) and back.n_partial == 3
    older = json.loads(evaluate(expert, failed).to_json())  # a result written before near misses existed
    del older["auroc_near_miss"], older["n_partial"]
    back = EvalResult.from_json(json.dumps(older))
    assert math.isnan(back.auroc_near_miss) and back.n_partial == 0


# ---------------------------------------------------------------- labels.json
def test_load_labels_missing_file(tmp_path: Path) -> None:
    assert load_labels(tmp_path) is None
    assert dense_from_labels(None) is None


def test_load_labels_valid(tmp_path: Path) -> None:
    labels = {
        "task": "reach",
        "dense_signal": "negative distance to goal",
        "videos": {"test_expert/ep_000.mp4": {"split": "test_expert", "success": True, "dense": [0, 0.5, 1], "num_frames": 3}},
    }
    (tmp_path / "labels.json").write_text(json.dumps(labels))
    assert load_labels(tmp_path) == labels
    assert dense_from_labels(load_labels(tmp_path)) == {"test_expert/ep_000.mp4": [0.0, 0.5, 1.0]}


def test_load_labels_corrupt_json_names_file(tmp_path: Path) -> None:
    path = tmp_path / "labels.json"
    path.write_text('{"videos": {')
    with pytest.raises(V2RError, match="labels.json") as info:
        load_labels(tmp_path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "content",
    [
        [1, 2, 3],
        {"task": "x"},
        {"videos": {"a.mp4": [1, 2]}},
        {"videos": {"a.mp4": {"dense": "nope"}}},
        {"videos": {"a.mp4": {"dense": [1, True]}}},
        {"videos": {"a.mp4": {"dense": [1, 2], "num_frames": 3}}},
        {"videos": {"a.mp4": {"dense": [1, 2], "success": "yes"}}},
    ],
)
def test_load_labels_wrong_structure(tmp_path: Path, content: object) -> None:
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(content))
    with pytest.raises(V2RError) as info:
        load_labels(tmp_path)
    assert str(path) in str(info.value)


def test_load_labels_nan_in_dense(tmp_path: Path) -> None:
    (tmp_path / "labels.json").write_text('{"videos": {"a.mp4": {"dense": [1, NaN]}}}')
    with pytest.raises(V2RError, match="NaN"):
        load_labels(tmp_path)
