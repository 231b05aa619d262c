"""The README's walkthrough runs as written on a fresh clone: its `<!-- walkthrough -->`
shell blocks run in order in one shell against a fresh registry (`make registry`), and each
`<!-- output -->` block is what the commands before it print (SHAs, durations, the port and
process ids normalised), so the README and the tool cannot drift apart."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
README_PORT = "5000"
_BLOCK = re.compile(r"<!-- walkthrough -->\n```sh\n(?P<cmd>.*?)```\n"
                    r"(?:\s*<!-- output -->\n```text\n(?P<out>.*?)```\n)?", re.S)
_MARK = "@@walkthrough-block@@"


def walkthrough(readme: str) -> list[tuple[str, str | None]]:
    """(commands, expected output or None) for each marked block, in order."""
    return [(m["cmd"], m["out"]) for m in _BLOCK.finditer(readme)]


def normalise(text: str, port: int) -> str:
    text = text.replace(f"127.0.0.1:{port}", f"127.0.0.1:{README_PORT}")
    text = re.sub(r"\b[0-9a-f]{12,40}\b", "<sha>", text)
    text = re.sub(r"\(\d+\.\d+s\)", "(<seconds>)", text)
    return re.sub(r"process group \d+", "process group <pid>", text)


def test_the_readme_has_a_walkthrough_with_outputs() -> None:
    """The parser finds the README's walkthrough blocks and most have an output to check."""
    blocks = walkthrough((ROOT / "README.md").read_text())
    assert len(blocks) >= 5
    assert blocks[0][0].strip() == "make registry"
    assert sum(out is not None for _, out in blocks) >= 5


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readme_walkthrough_runs_as_written_on_a_fresh_clone(tmp_path: Path) -> None:
    """Each walkthrough block, run in order in a fresh clone with a fresh registry, prints
    exactly the output block the README shows after it."""
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # The clone uses this test's virtualenv as its .venv; a stamp newer than pyproject.toml
    # tells make it is installed (never re-pointing the editable install at the clone).
    (clone / ".venv").symlink_to(Path(sys.prefix))
    stamp = tmp_path / "installed.stamp"
    stamp.touch()
    port = free_port()
    blocks = walkthrough((clone / "README.md").read_text())
    script = "set -u\n" + "".join(
        f"echo '{_MARK}'\n{cmd.replace(f'127.0.0.1:{README_PORT}', f'127.0.0.1:{port}')}"
        for cmd, _ in blocks)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("MLFLOW_", "MAKE", "VIRTUAL_ENV"))}
    env.update(MLFLOW_GITOPS_REGISTRY_PORT=str(port), MAKEFLAGS=f"STAMP={stamp}")
    try:
        run = subprocess.run(["bash", "-c", script], cwd=clone, env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=540)
    finally:
        subprocess.run([str(clone / ".venv/bin/python"), "examples/registry.py", "stop"],
                       cwd=clone, capture_output=True, env=env)
    outputs = run.stdout.split(f"{_MARK}\n")[1:]
    assert len(outputs) == len(blocks), run.stdout
    for (cmd, expected), actual in zip(blocks, outputs, strict=True):
        if expected is not None:
            assert normalise(actual, port) == normalise(expected, port), f"$ {cmd}"
