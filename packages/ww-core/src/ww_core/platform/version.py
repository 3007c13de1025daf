"""The installed ww-core version, for outputs, caches and plugin checks (kept here so no stage imports the facade)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ww-core")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
