"""Typed options: a dataclass field carries its default and its help text (`option`), and the CLI turns every
field into a `--flag` with that help (`add_config_arguments`), so a default and what it means live in one
place (the CleanRL habit)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, get_args, get_origin


def option(default: Any, help: str, **extra: Any) -> Any:
    """A dataclass field with its help text (and e.g. `choices=(...)`, or `flag="name"` for a flag named other
    than the field), for `add_config_arguments`."""
    return dataclasses.field(default=default, metadata={"help": help, **extra})


def field_type(f: dataclasses.Field) -> type:
    """The plain type (int, float, str, bool) of a field, also under `from __future__ import annotations`."""
    annotation = f.type
    if isinstance(annotation, type):
        return annotation
    if isinstance(annotation, str):
        return {"int": int, "float": float, "str": str, "bool": bool}[annotation]
    return get_args(annotation)[0] if get_origin(annotation) is not None else annotation


def help_with_default(help_text: str, default: Any) -> str:
    """`help_text (default: X)`; an empty default reads "none" (a bare "(default: )" says nothing), and help that
    already says what its default is ("default: the model's own videos") gets nothing added."""
    if "default:" in help_text:
        return help_text
    shown = "none" if default is None or default == "" else default
    return f"{help_text} (default: {shown})"


def add_config_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type,
                         skip: tuple[str, ...] = (), prefix: str = "", dest_prefix: str = "",
                         only_given: bool = False) -> None:
    """One `--PREFIX-field-name` option per dataclass field of `cls`, with its help text and default. With
    `only_given` an option the user does not give leaves no attribute (the dataclass default applies)."""
    for f in dataclasses.fields(cls):
        if f.name in skip or (f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING):
            continue
        if "help" not in f.metadata:  # not an option (e.g. a nested mapping filled from other flags)
            continue
        name = f.metadata.get("flag", f.name)  # a field may name its flag (e.g. to keep a prefix from repeating)
        flag = "--" + (f"{prefix}-" if prefix else "") + name.replace("_", "-")
        help_text = help_with_default(f.metadata["help"], f.default)
        default = argparse.SUPPRESS if only_given else f.default
        kind = field_type(f)
        if kind is bool:
            parser.add_argument(flag, dest=dest_prefix + f.name, action=argparse.BooleanOptionalAction,
                                default=default, help=help_text)
        else:
            parser.add_argument(flag, dest=dest_prefix + f.name, type=kind, default=default, help=help_text,
                                choices=f.metadata.get("choices"), metavar=f.name.upper() if dest_prefix else None)


def config_from_args(cls: type, args: argparse.Namespace):
    """An instance of `cls` from the parsed options `add_config_arguments` made."""
    return cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)})
