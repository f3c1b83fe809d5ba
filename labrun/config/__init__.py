"""The config system: scopes, fixed values (patches), resolution of the precedence stack, read-only views.

Exports the names Sacred scripts import from ``sacred.config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labrun._util.lazy_exports import lazy_getattr

if TYPE_CHECKING:
    from labrun.config.files import load_config_file, save_config_file
    from labrun.config.scope import ConfigDict, ConfigScope

_EXPORTS = {
    "ConfigDict": "labrun.config.scope",
    "ConfigScope": "labrun.config.scope",
    "load_config_file": "labrun.config.files",
    "save_config_file": "labrun.config.files",
}
__all__ = list(_EXPORTS)

__getattr__ = lazy_getattr(__name__, _EXPORTS, globals())
