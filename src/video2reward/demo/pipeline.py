"""`v2r demo`: the whole pipeline on the built-in demo tasks, under one folder.

    OUT/data/<task>/...            videos + labels (v2r demo-data)
    OUT/models/<task>-<head>/      trained models (v2r train)
    OUT/rewards/<task>.jsonl       per-frame rewards of the test videos (v2r score)
    OUT/plots/<task>/*.png         one reward curve per test video, plus eval.png
    OUT/results.json, results.md   the eval table (v2r eval), with train time and scoring speed
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from video2reward.core.files import write_json
from video2reward.demo.generate import generate_demo_data
from video2reward.evaluation.camera import add_camera_shift
from video2reward.evaluation.data_dir import evaluate_data_dir_with_near_misses
from video2reward.evaluation.plots import plot_eval_summary
from video2reward.inference.scoring import score_to_jsonl
from video2reward.training.config import TrainConfig
from video2reward.training.train import train_reward_model

HEADS_COMPARED = (TrainConfig.head, "pixel-ridge")  # v2r train's default head, and the floor


@dataclass
class QualityRow:
    task: str
    head: str
    voc: float
    auroc: float
    dense: float | None
    train_seconds: float
    score_fps: float
    auroc_near_miss: float | None = None  # expert vs test_partial; None for data without near misses
    voc_cam: float | None = None  # VOC on test_cam (other cameras); None for data without that split
    voc_cam_goal: float | None = None  # the same with each camera's goal image; None without one or for goal-free heads
    voc_cam_relative: float | None = None  # relative goal progress to that image (relative_reward.py)
    auroc_cam_relative: float | None = None  # its success AUROC, expert vs failed from the other cameras

    def cells(self) -> list[str]:
        def fmt(x: float | None) -> str:
            return "-" if x is None else f"{x:.3f}"

        return [self.task, self.head, f"{self.voc:.3f}", fmt(self.voc_cam), fmt(self.voc_cam_goal),
                fmt(self.voc_cam_relative), fmt(self.auroc_cam_relative), f"{self.auroc:.3f}",
                fmt(self.auroc_near_miss), fmt(self.dense),
                f"{self.train_seconds:.1f}", f"{self.score_fps:.0f}"]


COLUMNS = ["task", "head", "VOC", "VOC cam", "VOC cam goal", "VOC cam rel", "AUROC cam rel", "AUROC",
           "AUROC near-miss", "dense", "train s", "score fps"]


def _number(x: float) -> float | None:
    return None if math.isnan(x) else x


def format_table(rows: Sequence[QualityRow], markdown: bool = False) -> str:
    cells = [COLUMNS] + [r.cells() for r in rows]
    if markdown:
        lines = ["| " + " | ".join(c) + " |" for c in cells]
        lines.insert(1, "|" + "|".join("---" for _ in COLUMNS) + "|")
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells)


def run_task(
    task_dir: Path, model_dir: Path, config: TrainConfig, rewards_path: Path | None = None,
    plot_dir: Path | None = None, progress: bool = True,
) -> QualityRow:
    """Train on task_dir/train, score the test splits, evaluate: one row of the quality table."""
    trained = train_reward_model([task_dir / "train"], model_dir, config, progress=progress)
    model = trained.model
    if rewards_path is not None:
        score_to_jsonl(model, [task_dir / "test_expert", task_dir / "test_fail"], rewards_path,
                       plot_dir=plot_dir, progress=progress)
    t0 = time.perf_counter()  # scoring speed end to end: decode + model, every test video
    result, expert, failed, partial = evaluate_data_dir_with_near_misses(model, task_dir, progress=progress,
                                                                         camera_shift=False)
    seconds = time.perf_counter() - t0
    result = add_camera_shift(result, model, task_dir, progress=progress)  # test_cam/: outside the timing
    frames = sum(len(r) for group in (expert, failed, partial) for r in group.values())  # test_cam/ not timed
    write_json(model_dir / "eval.json", json.loads(result.to_json()))
    if plot_dir is not None:
        plot_eval_summary(plot_dir / "eval.png", result, expert, failed)
    return QualityRow(task_dir.name, config.head, result.voc, result.auroc, result.dense_spearman,
                      trained.seconds, frames / seconds,
                      _number(result.auroc_near_miss), _number(result.voc_cam), _number(result.voc_cam_goal),
                      _number(result.voc_cam_relative), _number(result.auroc_cam_relative))


def run_demo(out: Path, tasks: Sequence[str], steps: int | None = None, seed: int = 0,
             progress: bool = True) -> list[QualityRow]:
    out = Path(out)
    print(f"[1/3] generating demo videos for {', '.join(tasks)} in {out / 'data'}")
    folders = generate_demo_data(out / "data", tasks=tasks, seed=seed, progress=progress)
    rows: list[QualityRow] = []
    for task, task_dir in folders.items():
        for head in HEADS_COMPARED:
            config = replace(TrainConfig(), head=head, seed=seed)
            if steps is not None:
                config = replace(config, steps=steps)
            main = head == TrainConfig.head
            print(f"[2/3] {task}: training the {head} reward model")
            rows.append(run_task(
                task_dir, out / "models" / f"{task}-{head}", config,
                rewards_path=out / "rewards" / f"{task}.jsonl" if main else None,
                plot_dir=out / "plots" / task if main else None, progress=progress,
            ))
    table = format_table(rows)
    print("[3/3] results on held-out videos (test_expert / test_fail / test_partial):\n" + table)
    write_json(out / "results.json", [asdict(r) for r in rows])
    (out / "results.md").write_text(format_table(rows, markdown=True) + "\n", encoding="utf-8")
    print(f"\nmodels in {out / 'models'}, per-frame rewards in {out / 'rewards'}, plots in {out / 'plots'}")
    return rows
