"""`v2r demo`: the whole pipeline on the built-in demo tasks, under one folder.

    OUT/data/<task>/...            videos + labels (v2r demo-data)
    OUT/models/<task>-<head>/      trained models (v2r train)
    OUT/rewards/<task>.jsonl       per-frame rewards of the test videos (v2r score)
    OUT/plots/<task>/*.png         one reward curve per test video, plus eval.png
    OUT/results.json, results.md   the full eval table (v2r eval): camera columns, train time, scoring speed

The terminal gets a short table (`format_summary`: per task the default model's VOC, AUROCs and dense correlation
beside the floor's VOC, one sentence per column), a training line per model, and where the full table is.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from video2reward.core.files import write_json
from video2reward.core.progress import format_seconds, write
from video2reward.demo.generate import generate_demo_data
from video2reward.evaluation.camera import add_camera_shift
from video2reward.evaluation.data_dir import evaluate_data_dir_with_near_misses
from video2reward.evaluation.plots import plot_eval_summary
from video2reward.inference.scoring import score_to_jsonl
from video2reward.tasks.policies import PARTIAL_FRACTION
from video2reward.training.config import TrainConfig
from video2reward.training.train import TrainResult, train_reward_model

FLOOR = "pixel-ridge"
HEADS_COMPARED = (TrainConfig.head, FLOOR)  # v2r train's default head, and the floor


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
    model: str = ""  # what was trained: RewardModel.describe(), and the encoder's pretraining
    train_videos: int | None = None
    train_frames: int | None = None
    final_loss: dict[str, float] = field(default_factory=dict)  # per trained head (member); {} for a closed form

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
    return _aligned(cells)


def _aligned(cells: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in cells)


SUMMARY_COLUMNS = ["task", "VOC", "AUROC vs failed", "AUROC vs near miss", "dense", "floor VOC"]
MEANING = {  # what each number of the tables says, one sentence each
    "VOC": ("does the reward rise through held-out expert videos? The Spearman correlation of reward with time, "
            "averaged over them: 1 = it always rises, 0 = no order."),
    "AUROC vs failed": ("how often an expert video ends (its last 5 frames) with a higher reward than a failed "
                        "one: 1 = always, 0.5 = chance."),
    "AUROC vs near miss": (f"the same against near misses, which do {PARTIAL_FRACTION[0] * 100:.0f}-"
                           f"{PARTIAL_FRACTION[1]:.0%} of the task and then stall: the hardest test, does \"almost "
                           "done\" read lower than \"done\"?"),
    "dense": ("the Spearman correlation with the environment's own dense reward over every test frame (expert and "
              "failed)."),
    "floor VOC": (f"the VOC of the {FLOOR} floor (ridge regression of time on raw pixels) trained on the same "
                  "videos: the learned reward is worth what it adds above it."),
}
SUMMARY_NOTES = tuple(f"{name}{' (read this first)' if name == 'VOC' else ''}: {text}"
                      for name, text in MEANING.items())  # under the short table, one per column
FULL_TABLE_NOTES = (  # results.md: every column of the full table
    f"head: the reward head trained; {FLOOR} is the floor (ridge regression of time on raw pixels).",
    f"VOC (read this first): {MEANING['VOC']}",
    ("VOC cam, VOC cam goal, VOC cam rel, AUROC cam rel: the same test from cameras training never saw "
     "(test_cam/): with the model's own goal; with a goal image taken by each camera (`v2r score --goal`); as "
     "relative goal progress to that image (`v2r score --goal IMAGE --relative`), and that reading's AUROC vs "
     "failed."),
    f"AUROC: {MEANING['AUROC vs failed']}",
    f"AUROC near-miss: {MEANING['AUROC vs near miss']}",
    f"dense: {MEANING['dense']}",
    "train s: training time in seconds; score fps: frames scored per second (decoding + model) on the test videos.",
    "'-': not measured (no such split, no goal image, or a head without an encoder).",
)


def format_summary(rows: Sequence[QualityRow]) -> str:
    """The short table `v2r demo` ends with: per task and learned head its VOC, AUROC vs failed, AUROC vs near
    miss and dense correlation, beside the VOC of the task's pixel-ridge floor; then one sentence per column.
    A head column appears only when the rows hold more than one learned head."""
    floors = {r.task: r for r in rows if r.head == FLOOR}
    learned = [r for r in rows if r.head != FLOOR] or list(rows)  # floor-only rows: show the floor itself
    heads = list(dict.fromkeys(r.head for r in learned))
    with_head = len(heads) > 1

    def fmt(x: float | None) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"

    columns = SUMMARY_COLUMNS[:1] + (["head"] if with_head else []) + SUMMARY_COLUMNS[1:]
    cells = [columns]
    for r in learned:
        floor = floors.get(r.task)
        cells.append([r.task, *([r.head] if with_head else []), fmt(r.voc), fmt(r.auroc), fmt(r.auroc_near_miss),
                      fmt(r.dense), fmt(floor.voc) if floor is not None and r.head != FLOOR else "-"])
    notes = [textwrap.fill(note, width=110, subsequent_indent="  ") for note in SUMMARY_NOTES]
    return "\n".join([_aligned(cells), "", *notes])


def training_line(row: QualityRow) -> str:
    """One trained model: task and head, what it is, what it trained on, how long, its final loss."""
    data = ", ".join(part for part in (
        f"{row.train_videos} videos" if row.train_videos is not None else "",
        f"{row.train_frames} frames" if row.train_frames is not None else "",
        format_seconds(row.train_seconds)) if part)
    loss = ("final loss " + ", ".join(f"{value:.4f} ({name})" for name, value in row.final_loss.items())
            if row.final_loss else "closed-form fit (no loss)" if row.head == FLOOR else "no loss recorded")
    return f"{row.task} {row.head}: {row.model or row.head}; {data}; {loss}"


def final_losses(trained: TrainResult) -> dict[str, float]:
    """The smoothed final training loss of each trained head: {head: loss}, {member kind: loss} for a combined
    head (progress+rank), {"member k": loss} for an --ensemble; {} for a closed form (pixel-ridge)."""
    metrics, config = trained.metrics, trained.model.config
    if "loss" in metrics:
        return {config["head"]: float(metrics["loss"])}
    kinds = [m["head"] for m in config.get("members", [])]
    losses = {}
    for key, value in metrics.items():  # "member0/loss", "member1/loss", ...: in member order
        member, _, name = key.partition("/")
        if name == "loss" and member.startswith("member") and member[6:].isdigit():
            k = int(member[6:])
            losses[kinds[k] if k < len(kinds) else f"member {k}"] = float(value)
    return losses


def describe_model(trained: TrainResult) -> str:
    """RewardModel.describe() and how its encoder was pretrained, if it was: what the training line names."""
    encoder = trained.model.config.get("encoder") or {}
    pretrained = (encoder.get("pretrained_with") or {}).get("method")
    return trained.model.describe() + (f", encoder pretrained with {pretrained}" if pretrained else "")


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
    if progress:  # where the evaluation stage ended, in a log file too
        write(f"evaluating {task_dir.name} {config.head}: done in {format_seconds(time.perf_counter() - t0)}",
              file=sys.stderr)
    frames = sum(len(r) for group in (expert, failed, partial) for r in group.values())  # test_cam/ not timed
    write_json(model_dir / "eval.json", json.loads(result.to_json()))
    if plot_dir is not None:
        plot_eval_summary(plot_dir / "eval.png", result, expert, failed, partial, model=model, data_dir=task_dir)
    return QualityRow(task_dir.name, config.head, result.voc, result.auroc, result.dense_spearman,
                      trained.seconds, frames / seconds,
                      _number(result.auroc_near_miss), _number(result.voc_cam), _number(result.voc_cam_goal),
                      _number(result.voc_cam_relative), _number(result.auroc_cam_relative),
                      describe_model(trained), trained.num_videos, trained.num_frames, final_losses(trained))


def run_demo(out: Path, tasks: Sequence[str], steps: int | None = None, seed: int = 0,
             progress: bool = True) -> list[QualityRow]:
    out = Path(out)
    print(f"[1/3] generating demo videos for {', '.join(tasks)} in {out / 'data'}", flush=True)
    folders = generate_demo_data(out / "data", tasks=tasks, seed=seed, progress=progress)
    rows: list[QualityRow] = []
    for task, task_dir in folders.items():
        for head in HEADS_COMPARED:
            config = replace(TrainConfig(), head=head, seed=seed)
            if steps is not None:
                config = replace(config, steps=steps)
            main = head == TrainConfig.head
            print(f"[2/3] {task}: training the {head} reward model", flush=True)
            rows.append(run_task(
                task_dir, out / "models" / f"{task}-{head}", config,
                rewards_path=out / "rewards" / f"{task}.jsonl" if main else None,
                plot_dir=out / "plots" / task if main else None, progress=progress,
            ))
    write_json(out / "results.json", [asdict(r) for r in rows])
    (out / "results.md").write_text(results_markdown(rows), encoding="utf-8")
    print(closing_printout(rows, out))
    return rows


def results_markdown(rows: Sequence[QualityRow]) -> str:
    """OUT/results.md: the full table (camera columns, training time, scoring speed), what its columns mean, and
    the training line of every model."""
    notes = [f"- {note}" for note in FULL_TABLE_NOTES]
    models = [f"- {training_line(r)}" for r in rows]
    return "\n".join([format_table(rows, markdown=True), "", *notes, "", "Trained models:", "", *models]) + "\n"


def closing_printout(rows: Sequence[QualityRow], out: Path) -> str:
    """What `v2r demo` ends with: the short table with one sentence per column, a training line per model, and
    where the full table and everything else are."""
    heads = list(dict.fromkeys(r.head for r in rows if r.head != FLOOR))
    which = (f"{', '.join(heads)} (v2r train's default)" if heads == [TrainConfig.head] else ", ".join(heads)) \
        or FLOOR
    full = (f"full table, with the camera columns (test_cam/), training time and scoring speed: "
            f"{out / 'results.md'} (every number: {out / 'results.json'})")
    return "\n".join([
        f"\n[3/3] {which} on held-out videos (test_expert, test_fail, test_partial), floor VOC from {FLOOR}:", "",
        format_summary(rows), "", "trained models:", *(f"  {training_line(r)}" for r in rows), "", full,
        f"models in {out / 'models'}, per-frame rewards in {out / 'rewards'}, plots in {out / 'plots'}",
    ])
