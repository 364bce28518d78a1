"""How good is a reward? Three numbers, each computed from per-frame rewards alone (no RL needed):

* VOC, value-order correlation: does the reward rise through an expert video? (Spearman vs frame index.)
* Success AUROC: does the end of a successful video score higher than the end of a failed one?
* Dense Spearman: does the reward agree with the environment's own dense signal, where `labels.json` has one?

and, where the data has a `test_partial/` split of near misses (the expert stalling partway, see
`video2reward.demo.generate`), a fourth: near-miss AUROC, the success AUROC of expert vs near-miss videos.

Conventions: a video whose reward is constant has VOC 0.0 (it orders nothing; dropping it would flatter a
collapsed model), a 1-frame video has no order and is left out of VOC, and a metric with nothing to average
is NaN. The primitive functions raise `ValueError` on bad input; `evaluate` and `load_labels` raise
`V2RError` naming the video or file, so the CLI can print one clear line.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from video2reward.errors import V2RError

LABELS_FILE = "labels.json"
PARTIAL_SPLIT = "test_partial"  # near misses: the expert for part of the episode, then idle; never a success


def _vector(x: Any, what: str = "input") -> np.ndarray:
    """`x` as a 1-D float64 array of finite numbers, or ValueError."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim > 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} contains NaN or infinity")
    return arr


def rankdata(x: Sequence[float] | np.ndarray) -> np.ndarray:
    """1-based ranks of `x`; tied values share the average of the ranks they span
    (same as `scipy.stats.rankdata(x, method="average")`). [10, 20, 20, 5] -> [2, 3.5, 3.5, 1]."""
    arr = _vector(x)
    _, inverse, counts = np.unique(arr, return_inverse=True, return_counts=True)
    last = np.cumsum(counts).astype(np.float64)  # rank of the last copy of each distinct value
    return (last - (counts - 1) / 2.0)[inverse.reshape(-1)]  # average rank = mean of first..last


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman's rho: the Pearson correlation of the average ranks of `a` and `b`.
    NaN when there are fewer than 2 values or either input is constant (the correlation is undefined)."""
    ra, rb = rankdata(a), rankdata(b)
    if ra.shape != rb.shape:
        raise ValueError(f"spearman needs equal lengths, got {ra.size} and {rb.size}")
    if ra.size < 2 or np.ptp(ra) == 0 or np.ptp(rb) == 0:
        return float("nan")
    da, db = ra - ra.mean(), rb - rb.mean()
    # rho = sum(da*db) / sqrt(sum(da^2) * sum(db^2)) over rank deviations from their means
    rho = float(np.dot(da, db) / math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db))))
    return max(-1.0, min(1.0, rho))


def video_voc(rewards: Sequence[float] | np.ndarray) -> float:
    """VOC of one video: Spearman of reward vs frame index; 0.0 if the reward is constant, NaN for < 2 frames."""
    r = _vector(rewards, "rewards")
    if r.size < 2:
        return float("nan")
    if np.ptp(r) == 0:
        return 0.0  # a constant reward orders nothing: score it as no correlation, not as missing
    return spearman(r, np.arange(r.size))


def value_order_correlation(rewards: Sequence[Sequence[float] | np.ndarray]) -> float:
    """VOC = mean over videos of Spearman(reward, frame index).

    A constant-reward video counts as 0.0 (not dropped: dropping it would flatter a collapsed model);
    a 1-frame video has no order and is skipped; NaN if no video is left."""
    scores = [v for v in (video_voc(r) for r in rewards) if not math.isnan(v)]
    # VOC = (1/N) * sum_i rho_spearman(r_i, [0, 1, ..., T_i - 1])
    return float(np.mean(scores)) if scores else float("nan")


def last_k_score(rewards: Sequence[float] | np.ndarray, last_k: int = 5) -> float:
    """Mean reward of the last `last_k` frames (all frames when the video is shorter)."""
    if last_k < 1:
        raise ValueError(f"last_k must be >= 1, got {last_k}")
    r = _vector(rewards, "rewards")
    if r.size == 0:
        raise ValueError("a video with no frames has no score")
    return float(r[-last_k:].mean())


def auroc(positive: Sequence[float] | np.ndarray, negative: Sequence[float] | np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counting 1/2; NaN if a group is empty."""
    pos, neg = _vector(positive, "positive scores"), _vector(negative, "negative scores")
    if pos.size == 0 or neg.size == 0:
        return float("nan")
    ranks = rankdata(np.concatenate([pos, neg]))
    # Mann-Whitney: U = (sum of positive ranks) - n_pos (n_pos + 1) / 2 ; AUROC = U / (n_pos * n_neg)
    u = float(ranks[: pos.size].sum()) - pos.size * (pos.size + 1) / 2.0
    return u / (pos.size * neg.size)


def success_auroc(
    expert_rewards: Sequence[Sequence[float] | np.ndarray],
    fail_rewards: Sequence[Sequence[float] | np.ndarray],
    last_k: int = 5,
) -> float:
    """AUROC of expert (positive) vs failed (negative) videos, each scored by the mean reward of its last
    `last_k` frames (all frames if shorter). 1.0 = perfect separation, 0.5 = chance; NaN if a group is empty."""
    pos = [last_k_score(r, last_k) for r in expert_rewards]
    neg = [last_k_score(r, last_k) for r in fail_rewards]
    return auroc(pos, neg)


def dense_correlation(
    rewards: Sequence[Sequence[float] | np.ndarray], dense: Sequence[Sequence[float] | np.ndarray]
) -> float:
    """Spearman of reward vs the environment's dense per-frame signal, pooled over all frames of all videos.
    Raises ValueError naming the video index when a video's reward and dense lengths differ."""
    if len(rewards) != len(dense):
        raise ValueError(f"{len(rewards)} reward sequences but {len(dense)} dense sequences")
    rs, ds = [], []
    for i, (r, d) in enumerate(zip(rewards, dense)):
        r, d = _vector(r, f"rewards of video {i}"), _vector(d, f"dense signal of video {i}")
        if r.size != d.size:
            raise ValueError(f"video {i}: {r.size} rewards but {d.size} dense values")
        rs.append(r)
        ds.append(d)
    if not rs:
        return float("nan")
    # rho = Spearman(concat(rewards), concat(dense)) over every labelled frame
    return spearman(np.concatenate(rs), np.concatenate(ds))


def _nan_to_none(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _none_to_nan(x: float | None) -> float:
    return float("nan") if x is None else float(x)


@dataclass
class EvalResult:
    """The numbers of one evaluation. NaN means "undefined" (e.g. no failed videos for AUROC); in JSON it is
    written as null. `dense_spearman` is None when no video had dense labels. `auroc_near_miss` is the
    success AUROC of expert vs near-miss ("partial") videos, NaN when there were none."""

    voc: float
    auroc: float
    dense_spearman: float | None
    n_expert: int
    n_failed: int
    per_video: list[dict[str, Any]] = field(default_factory=list)  # {"video", "split", "voc", "score_last_k"}
    last_k: int = 5
    auroc_near_miss: float = float("nan")
    n_partial: int = 0
    # test_cam/ (the same kinds of videos seen from views training never used; see tasks/views.py): VOC,
    # success AUROC and dense Spearman there with the model's own goal, and VOC with each view's goal image
    voc_cam: float = float("nan")
    auroc_cam: float = float("nan")
    dense_cam: float | None = None
    voc_cam_goal: float = float("nan")
    voc_cam_relative: float = float("nan")  # relative goal progress to each view's goal image (relative_reward.py)
    auroc_cam_relative: float = float("nan")  # success AUROC of that reading (expert vs failed, other cameras)
    n_cam: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, NaN replaced by None (strict JSON has no NaN)."""
        d = asdict(self)
        for key in ("voc", "auroc", "dense_spearman", "auroc_near_miss", "voc_cam", "auroc_cam", "dense_cam",
                    "voc_cam_goal", "voc_cam_relative", "auroc_cam_relative"):
            d[key] = _nan_to_none(d[key])
        d["per_video"] = [{k: _nan_to_none(v) for k, v in row.items()} for row in d["per_video"]]
        return d

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_json(cls, text: str) -> EvalResult:
        """Inverse of `to_json`: null -> NaN for the metrics (null -> None for `dense_spearman`)."""
        d = json.loads(text)
        rows = [{**row, "voc": _none_to_nan(row.get("voc"))} for row in d.get("per_video", [])]
        dense = d.get("dense_spearman")
        return cls(
            voc=_none_to_nan(d.get("voc")),
            auroc=_none_to_nan(d.get("auroc")),
            dense_spearman=None if dense is None else float(dense),
            n_expert=int(d["n_expert"]),
            n_failed=int(d["n_failed"]),
            per_video=rows,
            last_k=int(d.get("last_k", 5)),
            auroc_near_miss=_none_to_nan(d.get("auroc_near_miss")),  # absent in results written before it
            n_partial=int(d.get("n_partial", 0)),
            voc_cam=_none_to_nan(d.get("voc_cam")),  # the test_cam fields: absent in results written before them
            auroc_cam=_none_to_nan(d.get("auroc_cam")),
            dense_cam=None if d.get("dense_cam") is None else float(d["dense_cam"]),
            voc_cam_goal=_none_to_nan(d.get("voc_cam_goal")),
            voc_cam_relative=_none_to_nan(d.get("voc_cam_relative")),
            auroc_cam_relative=_none_to_nan(d.get("auroc_cam_relative")),
            n_cam=int(d.get("n_cam", 0)),
        )

    def table(self) -> str:
        """A small aligned plain-text table: the summary metrics, then one row per video."""

        def fmt(x: float | None, missing: str = "n/a") -> str:
            return missing if x is None or math.isnan(x) else f"{x:.3f}"

        summary = [
            ("VOC (expert videos)", fmt(self.voc)),
            (f"success AUROC (last {self.last_k})", fmt(self.auroc)),
            ("dense Spearman", fmt(self.dense_spearman, "n/a (no labels)")),
            (f"near-miss AUROC (last {self.last_k})", fmt(self.auroc_near_miss, "n/a (no near misses)")),
            ("videos", f"{self.n_expert} expert, {self.n_failed} failed"
                       + (f", {self.n_partial} near miss" if self.n_partial else "")),
        ]
        if self.n_cam:  # test_cam/: other cameras
            summary[-1:-1] = [
                ("VOC, other cameras (test_cam)", fmt(self.voc_cam)),
                ("  with each camera's goal image", fmt(self.voc_cam_goal, "n/a (no goal images or goal-free head)")),
                ("  relative progress to that image", fmt(self.voc_cam_relative, "n/a (no goal images or encoder)")),
                ("  its success AUROC", fmt(self.auroc_cam_relative, "n/a (no goal images or encoder)")),
                ("success AUROC, other cameras", fmt(self.auroc_cam)),
                ("dense Spearman, other cameras", fmt(self.dense_cam, "n/a (no labels)")),
            ]
        width = max(len(k) for k, _ in summary)
        lines = [f"{k.ljust(width)}  {v}" for k, v in summary]
        if self.per_video:
            head = ("video", "split", "VOC", f"score(last {self.last_k})")
            rows = [(str(r["video"]), str(r["split"]), fmt(r["voc"]), fmt(r["score_last_k"])) for r in self.per_video]
            widths = [max(len(row[i]) for row in [head, *rows]) for i in range(4)]
            lines.append("")
            for row in [head, *rows]:
                left = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                cells = left + [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
                lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)


def _dense_for(name: str, dense: Mapping[str, Sequence[float]]) -> Sequence[float] | None:
    """The dense labels of video `name`: exact key, else the same path with forward slashes, else the longest
    label key that `name` ends with as whole path components ("data/test_expert/ep_000.mp4" finds
    "test_expert/ep_000.mp4")."""
    if name in dense:
        return dense[name]
    norm = name.replace("\\", "/")
    if norm in dense:
        return dense[norm]
    hits = [k for k in dense if norm.endswith("/" + k.replace("\\", "/").lstrip("/"))]
    return dense[max(hits, key=len)] if hits else None


def _checked(name: str, rewards: Any) -> np.ndarray:
    try:
        r = _vector(rewards, "rewards")
    except ValueError as e:
        raise V2RError(f"{name}: {e}") from None
    if r.size == 0:
        raise V2RError(f"{name}: no rewards (a video with no frames cannot be evaluated)")
    return r


def evaluate(
    expert: Mapping[str, np.ndarray],
    failed: Mapping[str, np.ndarray],
    dense: Mapping[str, Sequence[float]] | None = None,
    last_k: int = 5,
    partial: Mapping[str, np.ndarray] | None = None,
) -> EvalResult:
    """Score per-frame rewards (video name -> rewards) of expert and failed videos, and of near misses.

    VOC is averaged over the expert videos only (a failed video need not progress); every video gets its own
    VOC in `per_video`. AUROC separates expert from failed by the mean of the last `last_k` rewards. The dense
    Spearman pools every expert and failed video that has labels in `dense` (see `_dense_for` for how names
    are matched); it is None when `dense` is None or no video has labels.

    `partial` (the near misses of a test_partial/ split) only adds `auroc_near_miss`, expert vs near miss by
    the same last-`last_k` score, and their rows in `per_video` (split "partial"); see `add_near_misses`. The
    near misses are deliberately left out of the dense Spearman (and of VOC and AUROC), so those stay
    comparable with numbers measured before the split existed."""
    exp = {name: _checked(name, r) for name, r in expert.items()}
    fail = {name: _checked(name, r) for name, r in failed.items()}
    per_video = [
        {"video": name, "split": split, "voc": video_voc(r), "score_last_k": last_k_score(r, last_k)}
        for split, group in (("expert", exp), ("failed", fail))
        for name, r in group.items()
    ]
    dense_rho: float | None = None
    if dense is not None:
        rs, ds = [], []
        for name, r in [*exp.items(), *fail.items()]:
            d = _dense_for(name, dense)
            if d is None:
                continue
            if len(d) != r.size:
                raise V2RError(
                    f"{name}: {r.size} rewards but {len(d)} dense labels; were the labels made for another "
                    "version of this video, or was it evaluated with a frame stride?"
                )
            rs.append(r)
            ds.append(d)
        if rs:
            dense_rho = dense_correlation(rs, ds)
    result = EvalResult(
        voc=value_order_correlation(list(exp.values())),
        auroc=success_auroc(list(exp.values()), list(fail.values()), last_k),
        dense_spearman=dense_rho,
        n_expert=len(exp),
        n_failed=len(fail),
        per_video=per_video,
        last_k=last_k,
    )
    return result if partial is None else add_near_misses(result, exp, partial)


def add_near_misses(
    result: EvalResult, expert: Mapping[str, np.ndarray], partial: Mapping[str, np.ndarray]
) -> EvalResult:
    """`result` (of `evaluate` on these `expert` rewards) with the near misses added: `auroc_near_miss` =
    success AUROC of expert (positive) vs near-miss (negative) videos by the mean of the last `result.last_k`
    rewards (NaN if either group is empty), `n_partial`, and one `per_video` row per near miss. VOC, AUROC and
    the dense Spearman are left as they are."""
    exp = [_checked(name, r) for name, r in expert.items()]
    part = {name: _checked(name, r) for name, r in partial.items()}
    rows = [{"video": name, "split": "partial", "voc": video_voc(r), "score_last_k": last_k_score(r, result.last_k)}
            for name, r in part.items()]
    return replace(
        result,
        auroc_near_miss=success_auroc(exp, list(part.values()), result.last_k),
        n_partial=len(part),
        per_video=[*result.per_video, *rows],
    )


def load_labels(data_dir: Path) -> dict[str, Any] | None:
    """`data_dir/labels.json` parsed and checked, or None when there is no such file.

    Format: {"task": str, "dense_signal": str, "videos": {"test_expert/ep_000.mp4": {"split": str,
    "success": bool, "dense": [float, one per frame], "num_frames": int}, ...}} with keys relative to
    `data_dir`, forward slashes. Raises V2RError naming the file on unreadable/invalid JSON or a wrong structure."""
    path = Path(data_dir) / LABELS_FILE
    if not path.is_file():
        return None
    try:
        labels = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise V2RError(f"{path}: cannot read labels file ({e})") from None
    except json.JSONDecodeError as e:
        where = f"line {e.lineno}, column {e.colno}: {e.msg}"
        raise V2RError(f"{path}: not valid JSON ({where}); fix or delete it") from None

    def bad(what: str) -> V2RError:
        return V2RError(f"{path}: {what}; expected {{\"videos\": {{\"split/name.mp4\": {{\"dense\": [...], ...}}}}}}")

    if not isinstance(labels, dict) or not isinstance(labels.get("videos"), dict):
        raise bad('no "videos" object at the top level')
    for key, entry in labels["videos"].items():
        if not isinstance(entry, dict):
            raise bad(f'video "{key}" is not an object')
        d = entry.get("dense")
        if not isinstance(d, list) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in d):
            raise bad(f'video "{key}": "dense" must be a list of numbers')
        if not all(math.isfinite(v) for v in d):
            raise bad(f'video "{key}": "dense" contains NaN or infinity')
        n = entry.get("num_frames", len(d))
        if not isinstance(n, int) or isinstance(n, bool) or n != len(d):
            raise bad(f'video "{key}": "num_frames" is {n!r} but "dense" has {len(d)} values')
        if "success" in entry and not isinstance(entry["success"], bool):
            raise bad(f'video "{key}": "success" must be true or false')
        if "split" in entry and not isinstance(entry["split"], str):
            raise bad(f'video "{key}": "split" must be a string')
    return labels


def dense_from_labels(labels: Mapping[str, Any] | None) -> dict[str, list[float]] | None:
    """The `dense` argument of `evaluate` from what `load_labels` returned (None stays None)."""
    if labels is None:
        return None
    return {key: [float(v) for v in entry["dense"]] for key, entry in labels["videos"].items()}
