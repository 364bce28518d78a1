"""MkDocs hook: the package layout page (reference/layout.md), generated from src/video2reward at build time.

One table per folder (stage) of the package: every module with its line count and the first sentence of its
docstring, so the page shows the tree as it is, not as it was when someone last described it. The bench
scripts are listed the same way. Registered in mkdocs.yml under `hooks:`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

PAGE = "reference/layout.md"
ROOT = Path(__file__).resolve().parents[2]  # the repository: docs/hooks/layout.py -> ../..
PACKAGE = ROOT / "src" / "video2reward"
STAGES = ("video", "encoders", "objectives", "rewards", "training", "inference", "evaluation", "tasks", "rl",
          "demo", "core", "cli")  # the order of a frame's path through the package, then the supporting folders


def summary(path: Path) -> str:
    """The first sentence (or first line) of a module's docstring, for a table cell."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    except (SyntaxError, UnicodeDecodeError):
        return ""
    first = doc.strip().split("\n\n")[0].replace("\n", " ")
    match = re.search(r"(?<! al)(?<!e\.g)(?<!i\.e)\.\s+(?=[A-Z`(])", first)  # not "et al. " nor "e.g. "
    text = first if match is None else first[: match.start() + 1]
    return text.replace("|", "&#124;").replace("<", "&lt;").replace(">", "&gt;")


def rows(folder: Path, prefix: str) -> list[str]:
    lines = ["| file | lines | what it is |", "|---|---|---|"]
    for path in sorted(folder.glob("*.py")):
        count = len(path.read_text(encoding="utf-8").splitlines())
        lines.append(f"| `{prefix}{path.name}` | {count} | {summary(path)} |")
    return lines


def layout_markdown() -> str:
    lines = [
        "# Package layout",
        "",
        "Generated from the source tree when the site is built (`docs/hooks/layout.py`): each module with its "
        "line count and the first sentence of its docstring.",
        "",
        "The folders follow the stages a frame goes through: `video/` turns files into frames, `encoders/` "
        "frames into features, `objectives/` pretrains encoders without labels, `rewards/` holds the reward "
        "heads, `training/` fits them, `inference/` scores frames with a trained model, `evaluation/` measures "
        "the result, and `rl/` puts a reward inside an environment. `tasks/` (environments, scripted experts, "
        "cameras) serves both `rl/` and the demo data of `demo/`; `core/` holds model files and checks; "
        "`cli/` is the `v2r` command.",
        "",
        "## `video2reward/`",
        "",
        *rows(PACKAGE, ""),
        "",
    ]
    folders = [PACKAGE / name for name in STAGES if (PACKAGE / name).is_dir()]
    folders += sorted(p for p in PACKAGE.iterdir() if p.is_dir() and p.name not in STAGES
                      and any(p.glob("*.py")))
    for folder in folders:
        lines += [f"## `{folder.name}/`", "", *rows(folder, f"{folder.name}/"), ""]
    bench = ROOT / "bench"
    if bench.is_dir():
        lines += ["## `bench/`", "", "Benchmark scripts (run from the repository root, `python bench/NAME.py "
                  "--help`); those with `--write` write the [results pages](../results/index.md).", "",
                  *rows(bench, "bench/"), ""]
    return "\n".join(lines)


def on_files(files, config):  # noqa: ANN001, ANN201 (the MkDocs hook signature)
    """Add the generated page to the site's files (MkDocs >= 1.6)."""
    from mkdocs.structure.files import File

    existing = files.get_file_from_path(PAGE)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, PAGE, content=layout_markdown()))
    return files
