"""Seeding the global random number generators a run's code is likely to use."""

from __future__ import annotations

import random
import sys


def seed_globals(seed: int) -> list[str]:
    """Seed random, and numpy and torch when the script already imported them (never import them here)."""
    seeded = ["random"]
    random.seed(seed)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(seed)
        seeded.append("numpy")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
        seeded.append("torch")
    return seeded
