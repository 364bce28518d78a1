"""Results pages of the documentation site, written by the bench scripts (`--write docs/results/NAME.md`).

A page holds what a reader needs to trust or re-make a figure: the date, the machine (platform, CPU model and
count, torch version and threads), the exact command line, the seed(s), and the measured table. The figures are
never typed by hand: re-run the command on the page to replace them.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path


def add_write_option(parser: argparse.ArgumentParser) -> None:
    """The `--write PAGE` option every bench script that makes a results page shares."""
    parser.add_argument("--write", metavar="PAGE", default=None,
                        help="also write the results as a markdown page of the docs site, "
                             "e.g. docs/results/NAME.md (date, machine, command, seed and table)")


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux; platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> list[tuple[str, str]]:
    """(what, value) pairs describing the machine the figures were measured on."""
    import torch

    rows = [
        ("platform", platform.platform()),
        ("CPU", f"{cpu_model()}, {os.cpu_count()} logical cores"),
        ("Python", platform.python_version()),
        ("torch", f"{torch.__version__}, {torch.get_num_threads()} thread(s)"),
    ]
    if torch.cuda.is_available():
        rows.append(("GPU", torch.cuda.get_device_name(0)))
    try:
        load = os.getloadavg()
        rows.append(("load average at the end", f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min)"))
    except OSError:
        pass
    return rows


def command_line() -> str:
    """The command as it was run, with the script's path relative to the working directory when it can be."""
    script = sys.argv[0]
    try:
        script = os.path.relpath(script)
    except ValueError:
        pass
    return shlex.join(["python", script, *sys.argv[1:]])


def write_results_page(path: str | Path, title: str, table: str, *, seeds: str, intro: str = "",
                       notes: str = "", table_heading: str = "Measured") -> Path:
    """Write one results page: title, what it measures (intro), date, machine, command, seeds, then the table
    under `table_heading`, then notes (markdown)."""
    now = datetime.datetime.now().astimezone()
    lines = [f"# {title}", ""]
    if intro:
        lines += [intro.strip(), ""]
    lines += [
        "!!! note \"Written by a bench script\"",
        "    This page was written by the command below; its figures are not edited by hand.",
        "    Run the command again to measure them on your machine.",
        "",
        "```bash",
        command_line(),
        "```",
        "",
        "| | |",
        "|---|---|",
        f"| date | {now:%Y-%m-%d %H:%M %Z} |",
        *[f"| {what} | {value} |" for what, value in machine()],
        f"| seed(s) | {seeds} |",
        "",
        f"## {table_heading}",
        "",
        table.strip(),
        "",
    ]
    if notes:
        lines += [notes.strip(), ""]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines), encoding="utf-8")
    print(f"wrote {path}")
    return path
