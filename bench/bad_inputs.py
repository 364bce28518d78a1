"""What `v2r score` makes of each bad or unusual input of `video2reward.testing.bad_videos`, as the README's table: the
rewards it writes, or its one-line error (the file's name, then the reason). Then the same inputs in one
folder with --skip-bad. tests/video/test_bad_inputs.py asserts the same outcomes on every test run.

    python bench/bad_inputs.py          # ~30 s on one core
    python bench/bad_inputs.py --write docs/troubleshooting.md     # also write the docs' troubleshooting page

A second table does the same for damaged model folders and unwritable outputs. With --write, both tables, each
message's fix and the faults that need no generated input go into the troubleshooting page of the docs site.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
from pathlib import Path

from video2reward.cli import main
from video2reward.testing.bad_datasets import DATASET_CASES
from video2reward.testing.bad_videos import CASES
from video2reward.testing.synthetic import write_square_dataset
from video2reward.video.io import _FIX

TRAIN = ["--pretrain", "none", "--steps", "3", "--image-size", "32", "--batch-size", "16", "--frames-per-video", "8",
         "--warmup-steps", "1", "--threads", "1", "--quiet"]


def v2r(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


def outcome(code: int, err: str, out_file: Path, root: Path) -> str:
    if code == 0:
        lengths = [len(json.loads(line)["rewards"]) for line in out_file.read_text().splitlines()]
        return f"works: {', '.join(map(str, lengths))} reward(s), one per frame"
    line = err.strip().splitlines()[-1].replace(f"{root}/", "").replace("v2r score: error: ", "")
    return f"exit 2: {code_span(line.replace('; ' + _FIX, ' ...'))}"


def code_span(text: str) -> str:
    """`text` as a markdown code span (with double backticks when the text holds one)."""
    return f"`` {text} ``" if "`" in text else f"`{text}`"


# What to do about each message, found by a piece of its text (first match wins).
FIXES = (
    ("file is empty", "The recording or copy failed: record or copy the video again, or remove it."),
    ("cannot open as a video", "Not a video FFmpeg can read, or an mp4/mov cut short (it lost its index): copy the "
                               "whole file again, re-encode it, or remove it."),
    ("the file is truncated", "The file stops well before the length its header announces; a demonstration that "
                              "ends before its goal would teach wrong progress. Copy the whole file again or "
                              "remove it."),
    ("cannot decode any frame", "The picture data is damaged: re-encode it from the original, or remove it."),
    ("has no video stream", "An audio-only file: remove it from the video folder."),
    ("not a regular file", "A pipe or device: save the stream to a file first, then score the file."),
    ("cannot read frame", "One image of the frame folder is unreadable: replace or remove that image."),
    ("no such file", "Check the path."),
    ("holds no image frames", "Put the frames (png/jpg) in the folder, or point at the folder that holds them."),
    ("no video", "Point at a folder that holds videos (mp4/webm/avi/mov/mkv/gif or frame folders)."),
    ("is missing; download", "Copy or download the dataset again, or leave the episode out with --episodes."),
    ("cannot read episode metadata", "The dataset's metadata is cut short: copy or download the dataset again."),
    ("no camera key", "Pick one of the camera keys the message lists with --camera-key."),
    ("pick one with --camera-key", "Pick one of the camera keys the message lists with --camera-key."),
    ("timestamps run from", "The mp4 is cut short, or the metadata belongs to other files: copy the dataset again, "
                            "or leave the episode out with --episodes."),
    ("LeRobotDataset v2", "Convert the dataset to v3.0 with LeRobot's converter, or give v2r its videos/KEY/ folder "
                          "(one mp4 per episode in v2.x)."),
    ("not a model folder", "Give the folder `v2r train --out` wrote."),
    ("pickle", "Convert the weights to safetensors (the message gives the line), or re-train with v2r."),
    ("not a readable safetensors file", "The weights file is cut short or damaged: re-copy the model folder or "
                                        "re-train."),
    ("do not match the hash", "The weights are damaged or belong to another model: re-copy the whole model folder."),
    ("upgrade video2reward", "The model was written by a newer v2r: `pip install -U video2reward`."),
    ("re-train the model", "The model was written by an older v2r: re-train it with this one."),
    ("not valid JSON", "config.json is damaged: re-copy the model folder or re-train."),
    ("is a folder", "Give --out a file name, e.g. OUT/rewards.jsonl."),
    ("cannot write", "Choose another --out, or fix the folder's permissions."),
)


def fix_for(text: str) -> str:
    """The fix of the first FIXES entry whose key is in `text`; '' for an input that works."""
    if text.startswith(("works", "exit 0")):
        return "-"
    return next((fix for key, fix in FIXES if key in text), "The message says what to do.")


def video_rows(root: Path) -> list[tuple[str, str]]:
    """(input, outcome) of every bad or unusual video of CASES, then of all of them in one folder, --skip-bad."""
    rows = []
    everything = root / "all"
    for k, case in enumerate(CASES):
        (case_dir := root / f"case{k}").mkdir()
        path = case.make(case_dir)
        code, _, err = v2r("score", str(root / "model"), str(path), "--out", str(root / "r.jsonl"), "--quiet")
        rows.append((case.name, outcome(code, err, root / "r.jsonl", case_dir)))
        print(f"| {rows[-1][0]} | {rows[-1][1]} |", flush=True)
        (everything / f"case{k}").mkdir(parents=True)
        case.make(everything / f"case{k}")
    code, out, err = v2r("score", str(root / "model"), str(everything), "--out", str(root / "r.jsonl"),
                         "--skip-bad", "--quiet")
    skipped = err.strip().splitlines()[0]
    rows.append(("all of the above in one folder, `--skip-bad`",
                 f"exit {code}: `{out.strip().split(' at ')[0]}`; then `{skipped}` and one line per skipped file"))
    print(f"| {rows[-1][0]} | {rows[-1][1]} |", flush=True)
    return rows


def dataset_rows(root: Path) -> list[tuple[str, str]]:
    """(input, outcome) of every damaged LeRobotDataset of DATASET_CASES."""
    rows = []
    for k, case in enumerate(DATASET_CASES):
        (case_dir := root / f"dataset{k}").mkdir()
        path = case.make(case_dir)
        code, _, err = v2r("score", str(root / "model"), str(path), *case.args, "--out", str(root / "r.jsonl"),
                           "--quiet")
        name = case.name + (f" (`{' '.join(case.args)}`)" if case.args else "")
        rows.append((name, outcome(code, err, root / "r.jsonl", case_dir)))
        print(f"| {rows[-1][0]} | {rows[-1][1]} |", flush=True)
    return rows


def model_rows(root: Path) -> list[tuple[str, str]]:
    """(fault, outcome) of `v2r score` with a damaged model folder or an output it cannot write."""
    import torch

    model, video = root / "model", root / "data" / "test_expert"

    def copy_model(name: str) -> Path:
        target = root / name
        target.mkdir()
        for file in model.iterdir():
            (target / file.name).write_bytes(file.read_bytes())
        return target

    def case(name: str, model_dir: Path, out: Path | None = None, inputs: Path = video) -> tuple[str, str]:
        out = out or root / "r.jsonl"
        code, _, err = v2r("score", str(model_dir), str(inputs), "--out", str(out), "--quiet")
        text = outcome(code, err, out, root)
        print(f"| {name} | {text} |", flush=True)
        return name, text

    rows = [case("model folder that does not exist", root / "no_model")]
    damaged = copy_model("pickled")
    torch.save({"w": torch.zeros(2)}, damaged / "model.safetensors")  # a pickle under the safetensors name
    rows.append(case("`model.safetensors` that is a pickle (torch.save)", damaged))
    cut = copy_model("cut")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    rows.append(case("`model.safetensors` cut to half its length (checked against its hash first)", cut))
    flipped = copy_model("flipped")
    (flipped / "model.safetensors").write_bytes(data[:-8] + bytes(b ^ 0xFF for b in data[-8:]))
    rows.append(case("`model.safetensors` with its last 8 bytes changed", flipped))
    for name, folder, version in (("`config.json` from a newer v2r (format_version 99)", "newer", 99),
                                  ("`config.json` of an older format (no format_version)", "older", None)):
        other = copy_model(folder)
        config = json.loads((other / "config.json").read_text())
        config.pop("format_version")
        if version is not None:
            config["format_version"] = version
        (other / "config.json").write_text(json.dumps(config))
        rows.append(case(name, other))
    broken = copy_model("broken_json")
    (broken / "config.json").write_text("{ not json")
    rows.append(case("`config.json` that is not JSON", broken))
    rows.append(case("video path that does not exist", model, inputs=root / "no_such_video.mp4"))
    (root / "out_folder").mkdir()
    rows.append(case("`--out` is a folder", model, out=root / "out_folder"))
    (root / "a_file").write_text("")
    rows.append(case("`--out` inside a path that is a file", model, out=root / "a_file" / "r.jsonl"))
    return rows


def table(rows: list[tuple[str, str]], head: str, fixes: bool) -> str:
    lines = [f"| {head} | `v2r score MODEL INPUT --out r.jsonl` |" + (" fix |" if fixes else ""),
             "|---|---|" + ("---|" if fixes else "")]
    lines += [f"| {name} | {text} |" + (f" {fix_for(text)} |" if fixes else "") for name, text in rows]
    return "\n".join(lines)


def main_table(write: str | None = None) -> None:
    with tempfile.TemporaryDirectory(prefix="v2r-bad-inputs-") as work:
        root = Path(work)
        data = write_square_dataset(root / "data", n_train=2, n_test=1)
        code, _, err = v2r("train", str(data / "train"), "--out", str(root / "model"), *TRAIN)
        assert code == 0, err
        print("| input | `v2r score MODEL INPUT --out r.jsonl` |")
        print("|---|---|")
        videos = video_rows(root)
        print(f"\n`...` stands for the advice every decoding error ends with: `{_FIX}`.\n")
        print("| input | `v2r score MODEL DATASET --out r.jsonl` |")
        print("|---|---|")
        datasets = dataset_rows(root)
        print()
        print("| fault | `v2r score MODEL INPUT --out r.jsonl` |")
        print("|---|---|")
        models = model_rows(root)
    if write:
        from results_page import (
            write_results_page,  # bench/results_page.py (bench/ is on sys.path when run)
        )

        tables = "\n".join([
            "### Videos", "", table(videos, "input", fixes=True), "",
            f"`...` stands for the advice every decoding error ends with: `{_FIX}`.", "",
            "### Robot datasets (LeRobotDataset v3.0)", "", table(datasets, "input", fixes=True), "",
            "### Model folders and outputs", "", table(models, "fault", fixes=True)])
        write_results_page(write, "Troubleshooting", tables, seeds="0 (`v2r train`'s default; the inputs are "
                           "generated deterministically)", intro=TROUBLESHOOTING_INTRO,
                           notes=TROUBLESHOOTING_NOTES, table_heading="Every bad input and what v2r says")


TROUBLESHOOTING_INTRO = """\
Every input below was generated and run through `v2r score` by `bench/bad_inputs.py`, which wrote this page:
the messages are the ones v2r prints, copied by the script. Each input either works, with exactly one reward
per decoded frame, or stops the command with exit status 2 and one line naming the file and the reason.
`--skip-bad` (train, pretrain, distill, score, eval, report) goes on instead and lists every skipped file and
its reason at the end. `tests/video/test_bad_inputs.py` asserts the same outcomes on every test run."""

TROUBLESHOOTING_NOTES = """\
## About these inputs

- **Truncated files**: an mp4/mov cut short loses its index and does not open. An mkv/webm/avi cut short
  still decodes its first part with no FFmpeg error; v2r compares what it decoded with the length the file's
  header announces and refuses a video that stops well short of it (under 90 % and over 0.5 s short),
  because a demonstration that ends before its goal would teach wrong progress labels.
- **Other resolutions** (4K, tiny, mixed within a frame folder, any aspect): every frame is made square the
  way the model was trained (`frame_fit`: letterbox by default) and resized to the model's `image_size`, for
  files, frame folders and arrays alike. Only `read_frames(path)` without a size (native resolution) refuses
  a folder of mixed sizes, naming the first frame that differs.
- **Fuzzing**: `tests/video/test_fuzz_decode.py` overwrites, cuts, inserts and deletes bytes of a small valid
  mp4 and mkv (hypothesis, derandomized); each example must decode or raise `VideoError` with a one-line
  message starting with the file's name. Each example runs under a watchdog, so a hang fails the test instead
  of stalling CI. The one input that does block FFmpeg, a named pipe, is refused before it is opened.

## Training faults

| fault | what happens |
|---|---|
| the loss becomes NaN or infinite | training stops at once: `loss became nan at step N; the last good checkpoint (step M) is in OUT/checkpoint, continue from it with --resume; try a lower --lr` |
| finite loss, NaN or infinite gradients | training stops before the optimizer step touches the weights: `gradient norm became inf at step N ...` |
| `kill -9` or a crash mid-run | at most `--checkpoint-every` steps are lost; the same command with `--resume` ends with the same weights as an uninterrupted run (CPU, fixed seed) |
| Ctrl-C | a checkpoint at the next step boundary, then `--resume` |
| killed while writing a checkpoint or model | files are written to a temporary name, synced, then renamed: the previous checkpoint stays whole, and a cut-short file is refused (`not a readable safetensors file`) |
| the disk fills during training | `OUT/checkpoint: cannot write the checkpoint of step N (No space left on device); the previous checkpoint is intact: make room, then run the same command with --resume` |
| too little free space at the start | before the first step: `OUT: N MB free on its disk, but writing the checkpoints and model of training progress needs about M MB; free some space or choose another --out` |
| a read-only or unwritable `--out` | before any video is decoded: `OUT: cannot write the model here (...); choose another folder or fix this one's permissions` (also for `v2r rl --out`, `v2r score --out` and `--plot`) |
| the disk fills while scoring | `writing the rewards or plots failed (No space left on device); OUT was left as it was` |
| a model that did not learn | after training, `v2r train` scores its training videos and warns when the reward does not order them (a collapsed encoder), with what to change |

## Model files

Only `model.safetensors` + `config.json` are read; pickles are refused, because loading a pickle can run
code. A `config.json` whose `format_version` is newer than this v2r reads says to upgrade video2reward; an
older or missing one says to re-train the model with this v2r.

## Scripts

`--json` on `train`, `score` and `eval` prints errors as one JSON line too (`{"command": ..., "error": ...}`),
with exit status 2. Exit status 130 means interrupted (Ctrl-C)."""


def main_cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", metavar="PAGE", default=None,
                        help="also write the troubleshooting page of the docs site, e.g. docs/troubleshooting.md "
                             "(date, machine, command, the tables, each message's fix)")
    main_table(parser.parse_args().write)


if __name__ == "__main__":
    main_cli()
