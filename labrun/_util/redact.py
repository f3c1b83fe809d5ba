"""Keeping secrets out of records, logs and error messages."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^@/?#]*)@")
_SECRET_QUERY = re.compile(r"(?i)([?&](?:password|pass|pwd|token|secret|key|sig|signature)=)[^&#]*")


def redact_url(url: str) -> str:
    """``mongodb://user:pw@host/db?token=x`` -> ``mongodb://user:***@host/db?token=***``."""
    def _userinfo(m: re.Match) -> str:
        user, sep, _password = m.group("userinfo").partition(":")
        return f"{m.group('scheme')}{user}{':***' if sep else ''}@"

    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(_userinfo, url))


def without_credentials(url: str) -> str:
    """The URL with its whole user-info removed (a git remote's user name is often a token)."""
    return _SECRET_QUERY.sub(r"\1***", _USERINFO.sub(lambda m: m.group("scheme"), url))
