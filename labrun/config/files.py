"""Reading and writing config files: .json, .yaml and .yml."""

from __future__ import annotations

import json
import os
from typing import Any

from labrun._util.atomic_file import write_atomic
from labrun.errors import ConfigError

CONFIG_FILE_SUFFIXES = (".json", ".yaml", ".yml")


def is_config_file_name(name: str) -> bool:
    return name.lower().endswith(CONFIG_FILE_SUFFIXES)


def load_config_file(path: str) -> dict[str, Any]:
    """The dict stored in a config file; a clear error for a missing, unreadable or non-dict file."""
    if not is_config_file_name(path):
        raise ConfigError(f"config file '{path}' must end in .json, .yaml or .yml")
    try:
        with open(path, encoding="utf-8") as f:
            if path.lower().endswith(".json"):
                data = json.load(f)
            else:
                import yaml

                data = yaml.safe_load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file '{path}' does not exist (looked in {os.getcwd()})") from None
    except Exception as exc:  # OSError, json's ValueError, yaml.YAMLError
        raise ConfigError(f"cannot read config file '{path}': {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"config file '{path}' holds a {type(data).__name__}; it must hold a mapping of entries")
    return data


def save_config_file(config: dict[str, Any], path: str) -> None:
    """Write ``config`` as JSON or YAML, chosen by the file's suffix."""
    if not is_config_file_name(path):
        raise ConfigError(f"cannot save the config as '{path}': use a name ending in .json, .yaml or .yml")
    if path.lower().endswith(".json"):
        text = json.dumps(config, indent=2) + "\n"
    else:
        import yaml

        text = yaml.safe_dump(config, sort_keys=False)
    write_atomic(path, text)
