"""The README's two set-up commands are the ones CI and users really run."""

from __future__ import annotations

import re

from tests.conftest import REPO


def _bash_blocks(text: str) -> list[str]:
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", text, re.S)]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    main_job, test_command = _bash_blocks(setup)[:2]
    assert "pytest" in test_command and "pip install" in test_command
    assert "ganlab train" in main_job and "pip install" in main_job
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_command in ci_lines
