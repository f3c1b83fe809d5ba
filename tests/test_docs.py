"""Every code block a user would run in README.md and docs/ runs, in order, in a fresh folder per page.

How blocks are marked (this docstring is the reference for writers of docs):
- ```sh: each line is a command; ```console: the lines starting with "$ " are commands, the rest is output.
  A console command whose shown output is "error: ..." must fail with that error.
- ```python: run as a script; with <!-- file: NAME --> before it, written to NAME for the commands after it.
- ```text, ```ini, ```yaml, ```json, ```toml: not run (layouts, output, data); <!-- file: NAME --> writes one.
- <!-- not-run: WHY --> before a block skips it, saying why (an install, a server, a cluster, a fragment).
A block without a language is an error: each block says what it is.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

HANG_GUARD = 300
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "docs" / "observers").glob("*.md"))]
RUN = ("sh", "console", "python")
DATA = ("text", "ini", "yaml", "json", "toml")
FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.M | re.S)
MARK = re.compile(r"<!--\s*(file|not-run):\s*(.*?)\s*-->\s*$")


def blocks(page: Path):
    """(line, language, text, mark, argument) for each fenced block."""
    text = page.read_text()
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        mark = MARK.search(before)
        yield line, match.group(1), match.group(2), mark.group(1) if mark else None, mark.group(2) if mark else None


def commands(language: str, text: str) -> list[tuple[str, str | None]]:
    """Each command, and the error it must fail with (a console block showing "error: ..." after it)."""
    if language == "console":
        lines = text.splitlines()
        found = []
        for i, line in enumerate(lines):
            if line.startswith("$ "):
                shown = lines[i + 1] if i + 1 < len(lines) else ""
                found.append((line[2:], shown if shown.startswith("error: ") else None))
        return found
    return [(line, None) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_every_block_says_what_it_is(page):
    for line, language, _text, mark, why in blocks(page):
        assert language in RUN + DATA, f"{page.name}:{line}: label the block (```sh, ```python, ```text, ...)"
        assert mark != "not-run" or why, f"{page.name}:{line}: say why the block is not run"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_the_blocks_of_a_page_run_in_order(page, tmp_path):
    runnable = [b for b in blocks(page) if b[3] == "file" or (b[1] in RUN and b[3] != "not-run")]
    if not runnable:
        pytest.skip(f"{page.name} has no block to run")
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    (tmp_path / ".venv").symlink_to(sys.prefix)  # README's ".venv/bin/..." commands use the test's environment
    bin_dir = os.path.dirname(sys.executable)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "NO_COLOR": "1",
           "LABRUN_JOURNAL_DIR": str(tmp_path / "journal"), "LABRUN_BACKGROUND_DELIVERY": "0",
           "MPLBACKEND": "Agg"}
    for line, language, text, mark, argument in runnable:
        where = f"{page.relative_to(ROOT)}:{line}"
        if mark == "file":
            (tmp_path / argument).write_text(text)
            continue
        if language == "python":
            script = tmp_path / f"block_{line}.py"
            script.write_text(text)
            todo: list[tuple[str, str | None]] = [(f"python {script.name}", None)]
        else:
            todo = commands(language, text)
        for command, error in todo:
            out = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=HANG_GUARD)
            if error is not None:
                assert out.returncode != 0 and error[:60] in out.stderr, f"{where}: `{command}`: {out.stderr}"
            else:
                assert out.returncode == 0, f"{where}: `{command}` exited {out.returncode}\n{out.stdout}\n{out.stderr}"
