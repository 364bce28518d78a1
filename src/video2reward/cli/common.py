"""What every command group shares: the subcommand factory (`--quiet`, the examples under `--help`) and the
printing of results (skipped videos on stderr, `--json` lines on stdout). Light: no torch, no library."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from video2reward.cli import examples as help_examples

EPILOG = "Every command takes --help. Videos: mp4/webm/avi/mov/mkv/gif files or folders of png/jpg frames."
JSON_HELP = ("print the results as one JSON line on stdout instead of the text summary, for scripts (implies "
             "--quiet; an error is {\"error\": ...} with exit status 2)")

AddCommand = Callable[[str, str, Callable[[argparse.Namespace], None]], argparse.ArgumentParser]


def command_adder(sub: argparse._SubParsersAction) -> AddCommand:
    """`add(name, help_text, func)`: a subcommand of `sub` with --quiet, its examples and `func` to run."""

    def add(name: str, help_text: str, func: Callable[[argparse.Namespace], None]) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_examples.description(help_text),
                           epilog=help_examples.epilog(name, EPILOG),
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # keeps the examples' lines
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.set_defaults(func=func)
        return p

    return add


def add_dataset_options(parser: argparse.ArgumentParser, camera_default: str = "") -> None:
    """--camera-key, --episodes and --task: which part of a LeRobotDataset folder (meta/info.json) is read."""
    group = parser.add_argument_group("LeRobotDataset inputs (a folder with meta/info.json: each episode is a video)")
    group.add_argument("--camera-key", default="", metavar="KEY", help="the camera to read, a video feature of "
                       "meta/info.json such as observation.images.top (needed when the dataset has more than one"
                       + (f"; default: {camera_default})" if camera_default else ")"))
    group.add_argument("--episodes", default="", metavar="RANGE", help="episodes to read: START:STOP (STOP "
                       "excluded), one index, or a comma list of both, e.g. 0:40 or 0,3,7:9 (default: all)")
    group.add_argument("--task", default="", metavar="TEXT", help="only the episodes whose task text is exactly this")


def dataset_selection(args: argparse.Namespace):
    """The DatasetSelection of --camera-key, --episodes and --task."""
    from video2reward.video.lerobot import (
        DatasetSelection,  # here, not at the top: this module stays free of the library
    )

    return DatasetSelection(args.camera_key, args.episodes, args.task)


def print_skipped(skipped: list[tuple[str, str]]) -> None:
    """The videos a --skip-bad run left out, with why, on stderr."""
    if skipped:
        print(f"skipped {len(skipped)} bad video(s):", file=sys.stderr)
        for _, reason in skipped:
            print(f"  {reason}", file=sys.stderr)


def print_json(args: argparse.Namespace, summary: dict) -> bool:
    """With --json: `summary` as one JSON line (NaN as null); returns whether it printed."""
    if not getattr(args, "json", False):
        return False
    clean = {k: (None if isinstance(v, float) and v != v else v) for k, v in summary.items()}
    print(json.dumps({"command": args.command, **clean}))
    return True


def skipped_json(skipped: list[tuple[str, str]]) -> list[dict[str, str]]:
    """The skipped videos as --json gives them: [{"video", "reason"}, ...]."""
    return [{"video": video, "reason": reason} for video, reason in skipped]
