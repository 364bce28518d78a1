"""What `v2r score` makes of each bad or unusual input of tests/bad_videos.py, as the README's table: the
rewards it writes, or its one-line error (the file's name, then the reason). Then the same inputs in one
folder with --skip-bad. tests/video/test_bad_inputs.py asserts the same outcomes on every test run.

    python bench/bad_inputs.py          # ~30 s on one core
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # bad_videos.py, synthetic.py

from bad_videos import CASES  # noqa: E402
from synthetic import write_square_dataset  # noqa: E402
from video2reward.cli import main  # noqa: E402
from video2reward.video.io import _FIX  # noqa: E402

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
    return f"exit 2: `{line.replace('; ' + _FIX, ' ...')}`"


def main_table() -> None:
    with tempfile.TemporaryDirectory(prefix="v2r-bad-inputs-") as work:
        root = Path(work)
        data = write_square_dataset(root / "data", n_train=2, n_test=1)
        code, _, err = v2r("train", str(data / "train"), "--out", str(root / "model"), *TRAIN)
        assert code == 0, err
        print("| input | `v2r score MODEL INPUT --out r.jsonl` |")
        print("|---|---|")
        everything = root / "all"
        for k, case in enumerate(CASES):
            (case_dir := root / f"case{k}").mkdir()
            path = case.make(case_dir)
            code, _, err = v2r("score", str(root / "model"), str(path), "--out", str(root / "r.jsonl"), "--quiet")
            print(f"| {case.name} | {outcome(code, err, root / 'r.jsonl', case_dir)} |", flush=True)
            (everything / f"case{k}").mkdir(parents=True)
            case.make(everything / f"case{k}")
        code, out, err = v2r("score", str(root / "model"), str(everything), "--out", str(root / "r.jsonl"),
                             "--skip-bad", "--quiet")
        skipped = err.strip().splitlines()[0]
        print(f"| all of the above in one folder, `--skip-bad` | exit {code}: `{out.strip().split(' at ')[0]}`; "
              f"then `{skipped}` and one line per skipped file |")
        print(f"\n`...` stands for the advice every decoding error ends with: `{_FIX}`.")


if __name__ == "__main__":
    main_table()
