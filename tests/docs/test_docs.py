"""The README and the documentation site: a short README that starts with its two commands, a CLI reference
generated from the argparse parsers that names every command, results in the README copied from a page a bench
script wrote, and a site that builds with `mkdocs build --strict`."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def load_hook(name: str):
    """A module of docs/hooks/ (MkDocs loads them by path; they are not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"docs_hook_{name}", ROOT / "docs" / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_is_short_and_starts_with_its_two_commands() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, f"README.md has {len(lines)} lines; move detail into docs/"
    head = "\n".join(lines[:10])
    assert "pip install -e ." in head
    assert "pytest" in head


def test_readme_has_no_tmp_paths_or_dated_notes() -> None:
    text = README.read_text(encoding="utf-8")
    assert "/tmp/" not in text
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b", text), "a dated note in README.md: say it without the date"


def test_readme_results_are_copied_from_the_results_page() -> None:
    """Every row of the README's results table appears, with the same numbers, on docs/results/reward_quality.md
    (which bench/reward_quality.py --write makes)."""
    page = (ROOT / "docs" / "results" / "reward_quality.md").read_text(encoding="utf-8")
    measured = {}
    for line in page.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 10 and cells[0] in ("pendulum", "mountaincar"):
            measured[(cells[0], cells[1])] = dict(zip(("voc", "auroc", "near", "dense"),
                                                      (cells[2], cells[7], cells[8], cells[9])))
    rows = [line for line in README.read_text(encoding="utf-8").splitlines()
            if line.startswith("| pendulum") or line.startswith("| mountaincar")]
    assert rows, "no results table in README.md"
    for line in rows:
        task, head, voc, auroc, near, dense = [c.strip() for c in line.strip().strip("|").split("|")][:6]
        head = head.split(" ")[0].strip("`")
        key = next(k for k in measured if k[0] == task and k[1].split(":")[0] == head)
        assert measured[key] == {"voc": voc, "auroc": auroc, "near": near, "dense": dense}, line


def test_cli_reference_names_every_subcommand() -> None:
    from video2reward.cli import build_parser

    hook = load_hook("cli_reference")
    page = hook.cli_reference_markdown()
    commands = hook.subcommands(build_parser())
    assert len(commands) >= 10
    for name in commands:
        assert f"\n## v2r {name}\n" in page, f"v2r {name} is missing from the CLI reference"
        assert f"v2r {name} [-h]" in page, f"the usage of v2r {name} is missing"


# Options of other programs that the docs show (torchrun, mkdocs, tensorboard) and option-name prefixes.
OTHER_OPTIONS = {"--standalone", "--nnodes", "--nproc", "--rdzv-backend", "--rdzv-endpoint", "--rdzv-id", "--strict",
                 "--logdir", "--dqn-", "--sac-"}


def test_docs_name_only_options_that_exist() -> None:
    """Every --option in README.md and the docs pages (the archive of old measurements aside) is an option of a
    `v2r` command or of a bench script: a renamed option cannot linger in the docs."""
    from video2reward.cli import build_parser

    known = set(OTHER_OPTIONS)
    for _, parser in load_hook("cli_reference").subcommands(build_parser()).values():
        for action in parser._actions:
            known.update(action.option_strings)
    for script in (ROOT / "bench").glob("*.py"):
        known.update(re.findall(r'add_argument\(\s*"(--[a-z0-9-]+)"', script.read_text(encoding="utf-8")))
    known.add("--write")  # bench/results_page.py's add_write_option
    pages = [README] + [p for p in (ROOT / "docs").rglob("*.md") if p.name != "archive.md"]
    unknown = {f"{page.relative_to(ROOT)}: {option}" for page in pages
               for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", page.read_text(encoding="utf-8"))
               if option not in known}
    assert not unknown, sorted(unknown)


@pytest.mark.slow
def test_mkdocs_build_strict(tmp_path: Path) -> None:
    try:
        import material  # noqa: F401  (the theme)
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip('mkdocs-material is not installed (pip install -e ".[docs]")')
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    cli = (tmp_path / "site" / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "v2r train" in cli and "v2r score" in cli
