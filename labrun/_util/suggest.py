"""'did you mean ...?' hints for error messages."""

from __future__ import annotations

from typing import Iterable


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The candidates most similar to ``word``, best first (difflib ratio >= 0.6)."""
    import difflib  # only paid for when an error is being reported

    candidates = list(dict.fromkeys(candidates))
    matches = difflib.get_close_matches(word, candidates, n=n, cutoff=0.6)
    if not matches:
        # The last part of a dotted key is what people mistype: 'optimizer.lrr' vs 'optimizer.lr'.
        tail = word.rsplit(".", 1)[-1]
        matches = [c for c in candidates if c.rsplit(".", 1)[-1] in difflib.get_close_matches(
            tail, [c.rsplit(".", 1)[-1] for c in candidates], n=n, cutoff=0.75)][:n]
    return matches


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when something close exists, else an empty string."""
    matches = close_matches(word, candidates)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(f"'{m}'" for m in matches) + "?)"
