"""``labrun rerun --check``: does the new run end as the original did (result and final metric values)?"""

from __future__ import annotations

import math
from typing import Any

from labrun.provenance.system_metrics import PREFIX as SYSTEM_PREFIX  # CPU, memory, GPU: differ by nature
from labrun.readback import StoredRun


def differences(original: StoredRun, new: StoredRun, tolerance: float) -> list[str]:
    """One line per mismatch; floats match within ``tolerance`` (relative, and absolute near zero)."""
    out = []
    if original.record.get("status") != new.record.get("status"):
        out.append(f"status: {original.record.get('status')} -> {new.record.get('status')}")
    if not same(original.record.get("result"), new.record.get("result"), tolerance):
        out.append(f"result: {original.record.get('result')!r} -> {new.record.get('result')!r}")
    old, now = compared_metrics(original), compared_metrics(new)
    for name in sorted(old.keys() | now.keys()):
        if name not in now:
            out.append(f"metric {name}: not logged by the new run")
        elif name not in old:
            out.append(f"metric {name}: logged only by the new run")
        elif not same(old[name], now[name], tolerance):
            out.append(f"metric {name}: final value {old[name]!r} -> {now[name]!r}")
    return out


def compared_metrics(run: StoredRun) -> dict[str, float]:
    """The final metric values a check compares: all but the system metrics."""
    return {k: v for k, v in run.final_metrics.items() if not k.startswith(SYSTEM_PREFIX)}


def same(a: Any, b: Any, tolerance: float) -> bool:
    """Equal, with floats compared within ``tolerance`` and containers compared item by item."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return True
        return math.isclose(a, b, rel_tol=tolerance, abs_tol=tolerance)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k], tolerance) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y, tolerance) for x, y in zip(a, b))
    return a == b
