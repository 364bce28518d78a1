"""The project's own error types. Every message names the file it is about and, where there is one, the fix."""

from __future__ import annotations


class V2RError(Exception):
    """Base class: the CLI prints these as one clear line instead of a traceback."""


class VideoError(V2RError):
    """A video file or frame folder that cannot be found, opened or decoded."""


class ModelFileError(V2RError):
    """A model directory that is missing, damaged, of another format, or not a safetensors file."""


class ConfigError(V2RError):
    """Options that cannot work together (an empty training set, an image size that is too small, ...)."""
