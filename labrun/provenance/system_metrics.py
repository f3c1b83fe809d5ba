"""System metrics sampled at every heartbeat, logged as ordinary metrics under the reserved prefix.

``system/cpu_percent`` and ``system/rss_mb`` for the process; ``system/gpu<i>/utilization`` and
``system/gpu<i>/memory_used_mb`` per GPU when NVML sees any.
"""

from __future__ import annotations

import os
import time
from typing import Any

PREFIX = "system/"
_STATM = "/proc/self/statm"  # Linux: sizes in pages, the second is the resident set
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class SystemSampler:
    """Reads the process's CPU and memory and each GPU's use; created on the recorder thread.

    CPU comes from ``os.times()`` and memory from ``/proc/self/statm`` where there is one: psutil (the
    fallback) costs ~10 ms to import, which a short run would wait for at its end.
    """

    def __init__(self) -> None:
        from labrun.provenance.host import nvml_session

        self._last = (time.monotonic(), _cpu_seconds())
        self._process: Any = None
        if not os.path.exists(_STATM):
            import psutil

            self._process = psutil.Process()
        self.nvml = nvml_session()
        self.gpus: list[Any] = []
        if self.nvml is not None:
            try:
                self.gpus = [self.nvml.nvmlDeviceGetHandleByIndex(i) for i in range(self.nvml.nvmlDeviceGetCount())]
            except Exception:
                self.gpus = []

    def cpu_percent(self) -> float:
        """CPU time used since the last reading, in percent of one core (over 100 with several threads)."""
        now = (time.monotonic(), _cpu_seconds())
        (wall0, cpu0), self._last = self._last, now
        return 100.0 * (now[1] - cpu0) / max(now[0] - wall0, 1e-6)

    def rss_mb(self) -> float:
        if self._process is not None:
            return self._process.memory_info().rss / (1 << 20)
        with open(_STATM) as f:
            return int(f.read().split()[1]) * _PAGE / (1 << 20)

    def sample(self) -> dict[str, float]:
        values = {f"{PREFIX}cpu_percent": self.cpu_percent(), f"{PREFIX}rss_mb": self.rss_mb()}
        for index, handle in enumerate(self.gpus):
            try:
                rates = self.nvml.nvmlDeviceGetUtilizationRates(handle)
                memory = self.nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            values[f"{PREFIX}gpu{index}/utilization"] = float(rates.gpu)
            values[f"{PREFIX}gpu{index}/memory_used_mb"] = memory.used / (1 << 20)
        return values


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system
