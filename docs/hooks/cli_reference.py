"""MkDocs hook: the CLI reference page (reference/cli.md), generated from the `v2r` argparse parsers.

The page is built at every `mkdocs build` / `mkdocs serve` from `video2reward.cli.build_parser()`: every
subcommand with its usage, description, options (with their defaults) and examples, so it can never drift
from `v2r COMMAND --help`. Nothing of it is written by hand and no file is written to docs/.

Registered in mkdocs.yml under `hooks:`; `cli_reference_markdown()` is also what tests/docs/test_docs.py reads.
"""

from __future__ import annotations

import argparse
import re

PAGE = "reference/cli.md"
WIDTH = 100  # usage lines are wrapped at this width, whatever the terminal that builds the docs


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """name -> (one-line help, parser) of every subcommand, in `v2r --help` order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (helps.get(name, ""), sub) for name, sub in action.choices.items()}
    return {}


def _escape(text: str) -> str:
    """Text for markdown: `<`, `>` and `*` escaped outside `code spans`; code spans kept as they are."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # even parts lie outside backticks
        parts[i] = parts[i].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("*", r"\*")
        parts[i] = re.sub(r"(?<!\w)_|_(?!\w)", r"\_", parts[i])
    return "`".join(parts)


def _formatter(parser: argparse.ArgumentParser) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog=parser.prog, width=WIDTH, max_help_position=40)


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = _formatter(parser)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups, prefix="")
    return formatter.format_help().strip()


def _default(action: argparse.Action) -> str | None:
    """The default worth showing: not for flags, help or suppressed values, nor when the help names it."""
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._HelpAction,
                           argparse._VersionAction, argparse._CountAction)):
        return None
    default = action.default
    if default is None or default is argparse.SUPPRESS or action.required or not action.option_strings:
        return None
    if isinstance(action, argparse.BooleanOptionalAction):
        return "--" + ("" if default else "no-") + action.option_strings[0].lstrip("-").removeprefix("no-")
    if action.help and "%(default)" in action.help:
        return None
    if isinstance(default, (list, tuple)):
        return " ".join(map(str, default)) or None
    return str(default)


def _option_lines(parser: argparse.ArgumentParser) -> list[str]:
    formatter = _formatter(parser)
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [a for a in group._group_actions if a.help is not argparse.SUPPRESS
                   and not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
        if not actions:
            continue
        title = "Arguments" if group.title == "positional arguments" else (group.title or "Options").capitalize()
        lines += [f"**{_escape(title)}**", ""]
        if group.description:
            lines += [_escape(group.description), ""]
        for action in actions:
            invocation = formatter._format_action_invocation(action)
            text = _escape(formatter._expand_help(action)) if action.help else ""
            default = _default(action)
            if default is not None:
                text += f" (default: `{default}`)" if text else f"default: `{default}`"
            required = " *(required)*" if action.required and action.option_strings else ""
            lines.append(f"- `{invocation}`{required}" + (f": {text}" if text else ""))
        lines.append("")
    return lines


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    """The examples under `--help` (the epilog's 'examples:' block), as a bash block; the rest as text."""
    epilog = (parser.epilog or "").strip()
    if not epilog:
        return []
    head, sep, rest = epilog.partition("examples:")
    if not sep:
        return [_escape(epilog), ""]
    block, _, footer = rest.strip("\n").partition("\n\n")
    lines = ["**Examples**", "", "```bash"]
    lines += [line[2:] if line.startswith("  ") else line for line in block.splitlines()]
    lines += ["```", ""]
    if footer.strip():
        lines += [_escape(footer.strip()), ""]
    return lines


def cli_reference_markdown() -> str:
    """The whole page: `v2r` itself, then one section per subcommand."""
    from video2reward.cli import build_parser

    parser = build_parser()
    commands = subcommands(parser)
    lines = [
        "# CLI reference",
        "",
        "This page is generated from the `v2r` argparse parsers when the site is built "
        "(`docs/hooks/cli_reference.py`); it says what `v2r COMMAND --help` says.",
        "",
        "```text",
        _usage(parser).replace("COMMAND ...", "COMMAND [options]"),
        "```",
        "",
        "| command | what it does |",
        "|---|---|",
        *[f"| [`{name}`](#v2r-{name}) | {_escape(help_text).replace('|', '&#124;')} |"
          for name, (help_text, _) in commands.items()],
        "",
        "```text",
        (parser.description or "").strip(),
        "```",
        "",
    ]
    for name, (help_text, sub) in commands.items():
        lines += [f"## v2r {name}", ""]
        description = (sub.description or help_text).strip()
        lines += [_escape(description), "", "```text", _usage(sub), "```", ""]
        lines += _option_lines(sub)
        lines += _examples(sub)
    return "\n".join(lines).rstrip() + "\n"


def on_files(files, config):  # noqa: ANN001, ANN201 (the MkDocs hook signature)
    """Add the generated page to the site's files (MkDocs >= 1.6)."""
    from mkdocs.structure.files import File

    existing = files.get_file_from_path(PAGE)
    if existing is not None:
        files.remove(existing)
    files.append(File.generated(config, PAGE, content=cli_reference_markdown()))
    return files
