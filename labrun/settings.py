"""``SETTINGS``: Sacred's global settings, with Sacred's structure, defaults and effects.

Set them before the run starts (``SETTINGS.CAPTURE_MODE = "sys"``, ``SETTINGS.CONFIG.READ_ONLY_CONFIG =
False``). A misspelled key is an error, as in Sacred. What each does in labrun, and the few that have no
meaning here, are listed in docs/sacred.md.
"""

from __future__ import annotations

from typing import Any

from labrun.errors import LabrunError

__all__ = ["SETTINGS", "SettingError"]


class SettingError(LabrunError):
    """An unknown setting, or a plain value given where a group of settings belongs."""


class Settings(dict):
    """A dict whose keys are also attributes, and whose set of keys is fixed (so a typo is an error)."""

    def __init__(self, values: dict[str, Any]):
        super().__init__({k: Settings(v) if isinstance(v, dict) else v for k, v in values.items()})

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self:
            from labrun._util.suggest import did_you_mean

            raise SettingError(f"unknown setting '{key}'{did_you_mean(key, list(self))}; the settings here are: "
                               f"{', '.join(self)}")
        if isinstance(self[key], Settings) and not isinstance(value, dict):
            raise SettingError(f"'{key}' is a group of settings ({', '.join(self[key])}); set one of them")
        super().__setitem__(key, Settings(value) if isinstance(value, dict) else value)


SETTINGS = Settings({
    "CONFIG": {
        "ENFORCE_KEYS_MONGO_COMPATIBLE": True,  # refuse '.' and a leading '$' in config keys
        "ENFORCE_KEYS_JSONPICKLE_COMPATIBLE": True,  # refuse keys jsonpickle uses as tags ('py/...')
        "ENFORCE_VALID_PYTHON_IDENTIFIER_KEYS": False,
        "ENFORCE_STRING_KEYS": False,  # labrun always needs string keys (JSON); kept for Sacred scripts
        "ENFORCE_KEYS_NO_EQUALS": True,  # refuse '=' in keys (the command line could not name them)
        "READ_ONLY_CONFIG": True,  # captured functions get a read-only config
        "IGNORED_COMMENTS": ["^pylint:", "^noinspection"],  # comments that are not an entry's doc
        "NUMPY_RANDOM_LEGACY_API": False,  # _rnd is numpy's RandomState instead of a Generator
    },
    "HOST_INFO": {
        "INCLUDE_GPU_INFO": True,
        "INCLUDE_CPU_INFO": True,
        "CAPTURED_ENV": [],  # environment variables recorded in host.ENV (also LABRUN_RECORD_ENV)
    },
    "COMMAND_LINE": {
        "STRICT_PARSING": False,  # no meaning in labrun: its command line is always strict
        "SHOW_DISABLED_OPTIONS": True,  # no meaning in labrun: it has no disabled options
    },
    "CAPTURE_MODE": "fd",  # Sacred's default; labrun falls back to "sys" where fd 1 is not where print writes
    "DISCOVER_DEPENDENCIES": "imported",  # "imported", "sys" (every installed package) or "none"
    "DISCOVER_SOURCES": "imported",  # "imported", "dir" (every .py file under base_dir), "sys" or "none"
    "DEFAULT_BEAT_INTERVAL": 10.0,  # seconds between heartbeats when -b is not given
})
