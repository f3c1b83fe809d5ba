"""The machine: hostname, OS, CPU, memory, GPUs (through pynvml) and allow-listed environment variables.

No GPU, no NVIDIA driver and no pynvml all give an empty GPU list: a run never fails for its host record.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
from typing import Any, Iterable

from labrun._util.env_vars import RECORD_ENV_ALLOW
from labrun._util.redact import looks_secret_variable, redact_url

# The NVIDIA kernel driver shows in /proc (containers too); WSL2 exposes GPUs through /dev/dxg instead.
_NVIDIA_DRIVER_SIGNS = ("/proc/driver/nvidia", "/dev/dxg")
logger = logging.getLogger("labrun")


_CPUINFO = "/proc/cpuinfo"  # Linux only: elsewhere psutil gives the core count


def _cpuinfo() -> tuple[str | None, int | None]:
    """CPU model and physical core count from /proc/cpuinfo (Linux); Nones where it says nothing."""
    model, cores, physical = None, set(), None
    try:
        with open(_CPUINFO) as f:
            for line in f:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("model name", "Hardware") and model is None:
                    model = value
                elif key == "physical id":
                    physical = value
                elif key == "core id":
                    cores.add((physical, value))
    except OSError:
        pass
    return model, len(cores) or None


def _memory_total() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX
        import psutil

        return psutil.virtual_memory().total


def python_version() -> str:
    return sys.version.split()[0]


def host_basics() -> dict[str, Any]:
    """Hostname, OS and Python version from os.uname (the platform module costs ~3 ms to import, and
    platform.platform() reads the interpreter's binary for the libc version)."""
    uname = os.uname()
    return {"hostname": uname.nodename, "os": [uname.sysname, f"{uname.sysname}-{uname.release}-{uname.machine}"],
            "python_version": python_version()}


def host_info(record_env: Iterable[str] = ()) -> dict[str, Any]:
    """Sacred's host keys (hostname, os, python_version, cpu, gpus, ENV) and core counts and memory.

    /proc and sysconf first: importing psutil alone costs ~10 ms of the run's start.
    """
    from labrun.settings import SETTINGS

    wanted = SETTINGS.HOST_INFO
    model, physical_cores = _cpuinfo()
    if physical_cores is None:
        import psutil

        physical_cores = psutil.cpu_count(logical=False)
    info = {
        **host_basics(),
        "cpu": model or os.uname().machine,
        "cpu_count": os.cpu_count(),
        "cpu_count_physical": physical_cores,
        "memory_total": _memory_total(),
        "gpus": gpu_info() if wanted.INCLUDE_GPU_INFO else None,
        "ENV": allowed_environment([*record_env, *wanted.CAPTURED_ENV]),
    }
    if not wanted.INCLUDE_CPU_INFO:
        del info["cpu"]
    if info["gpus"] is None:
        del info["gpus"]
    return info


def allowed_environment(names: Iterable[str] = ()) -> dict[str, str]:
    """The environment variables named by ``names`` or ``$LABRUN_RECORD_ENV`` (globs allowed); URLs redacted."""
    patterns = [*names, *filter(None, (p.strip() for p in os.environ.get(RECORD_ENV_ALLOW, "").split(",")))]
    recorded = {}
    for key, value in sorted(os.environ.items()):
        if any(fnmatch.fnmatchcase(key, p) for p in patterns):
            # A variable whose name says it is a secret is recorded only when named exactly, not by a glob.
            secret = looks_secret_variable(key) and key not in patterns
            recorded[key] = "***" if secret else redact_url(value)
    return recorded


def gpu_info() -> dict[str, Any]:
    """Driver and CUDA versions and one entry per GPU; ``gpus`` is empty when none can be seen."""
    info: dict[str, Any] = {"driver_version": None, "cuda_version": None,
                            "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "gpus": []}
    nvml = nvml_session()
    if nvml is None:
        return info
    try:
        info["driver_version"] = _text(nvml.nvmlSystemGetDriverVersion())
        cuda = nvml.nvmlSystemGetCudaDriverVersion()
        info["cuda_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            info["gpus"].append({"index": index, "model": _text(nvml.nvmlDeviceGetName(handle)),
                                 "total_memory": int(memory.total) // (1 << 20),  # MiB, as Sacred
                                 "uuid": _text(nvml.nvmlDeviceGetUUID(handle))})
    except Exception as exc:  # a broken driver must not fail the run
        logger.debug("GPU information unavailable: %s", exc)
        info["gpus"] = []
    return info


def nvml_session() -> Any:
    """pynvml, initialised; None without pynvml, a driver or a GPU."""
    if sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _NVIDIA_DRIVER_SIGNS):
        return None  # no NVIDIA driver: spare the ~10 ms of importing pynvml and failing to load the library
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:
        logger.debug("NVML unavailable: %s", exc)
        return None
    return pynvml


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

