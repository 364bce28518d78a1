"""`v2r demo`'s closing printout (demo/pipeline.py): a short table (task, VOC, AUROC vs failed, AUROC vs near miss,
dense, the floor's VOC) with one sentence per column, a training line per model, and the full table (camera
columns) in OUT/results.md."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from video2reward.demo.pipeline import (
    COLUMNS,
    SUMMARY_COLUMNS,
    QualityRow,
    closing_printout,
    final_losses,
    format_summary,
    format_table,
    results_markdown,
    training_line,
)

ROWS = [
    QualityRow("pendulum", "progress+rank", 0.984, 1.0, 0.724, 95.3, 812.0, 1.0, 0.61, 0.7, 0.55, 0.9,
               "progress+rank head, cnn encoder, 64px frames, encoder pretrained with rotation", 20, 1840,
               {"progress": 0.0123, "rank": 0.2345}),
    QualityRow("pendulum", "pixel-ridge", 0.917, 1.0, 0.696, 0.4, 5000.0, 0.95, 0.3, None, None, None,
               "pixel-ridge head, no encoder, 64px frames", 20, 1840, {}),
    QualityRow("mountaincar", "progress+rank", 0.962, 0.99, None, 88.1, 790.0, None,
               model="progress+rank head, cnn encoder, 64px frames", train_videos=20, train_frames=2400,
               final_loss={"progress": 0.02, "rank": 0.3}),
    QualityRow("mountaincar", "pixel-ridge", 0.757, 1.0, 0.793, 0.5, 6000.0, 1.0),
]


def table_lines(text: str) -> list[list[str]]:
    """The aligned table's rows (up to the first blank line), split on runs of 2+ spaces."""
    rows = []
    for line in text.splitlines():
        if not line.strip():
            break
        rows.append([cell for cell in line.split("  ") if cell.strip()])
    return [[cell.strip() for cell in row] for row in rows]


def test_the_short_table_has_one_row_per_task_with_the_floor_beside_it() -> None:
    header, pendulum, mountaincar = table_lines(format_summary(ROWS))
    assert header == SUMMARY_COLUMNS == ["task", "VOC", "AUROC vs failed", "AUROC vs near miss", "dense",
                                         "floor VOC"]
    assert pendulum == ["pendulum", "0.984", "1.000", "1.000", "0.724", "0.917"]
    assert mountaincar == ["mountaincar", "0.962", "0.990", "-", "-", "0.757"]  # not measured: "-"
    assert len(COLUMNS) > len(SUMMARY_COLUMNS) + 4  # the full table's eleven columns stay out of the terminal


def test_one_sentence_per_column_and_which_to_read_first() -> None:
    text = format_summary(ROWS)
    notes = text.split("\n\n", 1)[1]
    starts = [line.split(":")[0] for line in notes.splitlines() if not line.startswith("  ")]
    assert starts == ["VOC (read this first)", "AUROC vs failed", "AUROC vs near miss", "dense", "floor VOC"]
    assert all(len(line) <= 110 for line in notes.splitlines())


def test_a_head_column_only_when_several_learned_heads() -> None:
    other = QualityRow("pendulum", "progress", 0.97, 1.0, 0.7, 50.0, 900.0, 1.0)
    header, *rows = table_lines(format_summary([*ROWS[:2], other]))
    assert header[:2] == ["task", "head"] and len(rows) == 2
    assert rows[1][:2] == ["pendulum", "progress"] and rows[1][-1] == "0.917"


def test_training_lines_name_head_encoder_data_time_and_loss() -> None:
    assert training_line(ROWS[0]) == ("pendulum progress+rank: progress+rank head, cnn encoder, 64px frames, encoder "
                                      "pretrained with rotation; 20 videos, 1840 frames, 95.3 s; final loss 0.0123 "
                                      "(progress), 0.2345 (rank)")
    assert training_line(ROWS[1]).endswith("; 20 videos, 1840 frames, 0.4 s; closed-form fit (no loss)")


def test_final_losses_of_a_combined_head_an_ensemble_and_a_single_head() -> None:
    def trained(metrics: dict, config: dict) -> SimpleNamespace:
        return SimpleNamespace(metrics=metrics, model=SimpleNamespace(config=config))

    combined = {"head": "progress+rank", "members": [{"head": "progress"}, {"head": "rank"}]}
    assert final_losses(trained({"member0/loss": 0.5, "member0/mae": 0.1, "member1/loss": 0.25,
                                 "member1/rank_loss": 0.25}, combined)) == {"progress": 0.5, "rank": 0.25}
    assert final_losses(trained({"member0/loss": 1.0, "member1/loss": 2.0}, {"head": "progress", "ensemble": 2})) \
        == {"member 0": 1.0, "member 1": 2.0}
    assert final_losses(trained({"loss": 0.125}, {"head": "progress"})) == {"progress": 0.125}
    assert final_losses(trained({"train_rmse": 0.01, "components": 32.0}, {"head": "pixel-ridge"})) == {}


def test_the_printout_points_to_the_full_table_which_keeps_every_column(tmp_path: Path) -> None:
    text = closing_printout(ROWS, tmp_path)
    assert "progress+rank (v2r train's default)" in text
    assert f"camera columns (test_cam/), training time and scoring speed: {tmp_path / 'results.md'}" in text
    assert text.count("\n  pendulum ") == 2 and text.count("\n  mountaincar ") == 2  # a training line per model
    full = results_markdown(ROWS)
    assert full.startswith(format_table(ROWS, markdown=True) + "\n")
    notes = full.split("\n\n")[1]
    for column in COLUMNS[1:]:  # every column of the full table is explained under it
        assert column in notes, column
    assert training_line(ROWS[0]) in full
