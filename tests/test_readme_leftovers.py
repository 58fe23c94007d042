"""What the README's examples write in a checkout is ignored by git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _written_by_readme() -> set[str]:
    text = (ROOT / "README.md").read_text()
    names = set(re.findall(r"tee (\S+\.json)", text))
    names |= set(re.findall(r"curl -s -o (\S+\.\w+) ", text)) - {"/dev/null"}
    names |= set(re.findall(r"--markdown ([a-z][\w.-]*)", text))
    names |= {f"{d}/x" for d in re.findall(r"--(?:out|save) ([\w.-]+)", text)}
    return names


def test_every_file_the_readme_writes_is_ignored() -> None:
    names = _written_by_readme()
    assert {"submit.json", "result.json", "image.jpeg", "report.md", "my-contracts/x"} <= names
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", *sorted(names)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert set(done.stdout.split()) == names, done.stderr
