"""scripts/_venv.sh: the Python check and rebuilding a venv that cannot be used.

Each test runs the real scripts/test in a scratch copy of the project with a tiny
pyproject. pip runs with PIP_NO_INDEX, so the install step fails at once and offline:
what the tests look at is what happened before it (what was said, which venv exists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _old_python() -> str | None:
    """A working Python older than 3.11, or None."""
    candidates = [*sorted(Path("/root/.pyenv/versions").glob("3.[0-9]*/bin/python3.1[0-9]"))]
    candidates += [Path(p) for p in (shutil.which("python3.10"), shutil.which("python3.9")) if p]
    for path in candidates:
        probe = subprocess.run(
            [str(path), "-c", "import sys; print(sys.version_info < (3, 11))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return str(path)
    return None


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "colorbot"
    (root / "scripts").mkdir(parents=True)
    for name in ("_venv.sh", "test"):
        shutil.copy2(REPO / "scripts" / name, root / "scripts" / name)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "tiny"\nversion = "0"\n[project.optional-dependencies]\ndev = []\n'
    )
    (root / "constraints.txt").write_text("")
    return root


def _run(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    full_env.pop("VIRTUAL_ENV", None)
    full_env.update(env)
    return subprocess.run(
        ["bash", str(project / "scripts" / "test")],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def _venv_version(project: Path) -> tuple[int, int]:
    out = subprocess.run(
        [project / ".venv" / "bin" / "python", "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    major, minor = out.stdout.split()
    return int(major), int(minor)


def test_an_old_python_is_refused_before_a_venv_is_made(project: Path) -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine")
    result = _run(project, PYTHON=old)
    assert result.returncode == 1
    assert "Python >= 3.11 is needed" in result.stderr
    assert not (project / ".venv").exists()


def test_no_new_enough_python_on_path_says_which_is_needed(project: Path, tmp_path: Path) -> None:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    for name in ("python3", "python3.11", "python3.12", "python3.13"):
        fake = fake_bin / name
        fake.write_text("#!/bin/sh\necho 'Python 3.10' >&2\nexit 1\n")
        fake.chmod(0o755)
    result = _run(project, PATH=f"{fake_bin}:/usr/bin:/bin")
    assert result.returncode == 1
    assert "Python >= 3.11 is needed" in result.stderr
    assert "PYTHON=" in result.stderr
    assert not (project / ".venv").exists()


def test_a_venv_made_with_an_old_python_is_rebuilt(project: Path) -> None:
    old = _old_python()
    if old is None:
        pytest.skip("no Python older than 3.11 on this machine")
    subprocess.run([old, "-m", "venv", "--without-pip", str(project / ".venv")], check=True)
    (project / ".venv" / ".colorbot-installed").touch()
    result = _run(project, PYTHON=sys.executable)
    assert "rebuilding .venv: it was made with Python 3." in result.stderr
    assert "setting up (first time, about 2 minutes)" in result.stderr
    assert _venv_version(project) >= (3, 11)
    # Offline, the install fails: it says so and leaves no stamp, so the next run retries.
    assert result.returncode == 1
    assert "installing the dependencies failed" in result.stderr
    assert not (project / ".venv" / ".colorbot-installed").exists()


def test_a_half_installed_venv_is_rebuilt(project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    leftover = project / ".venv" / "half-done"
    leftover.touch()
    result = _run(project, PYTHON=sys.executable)
    assert "rebuilding .venv: an earlier set-up did not finish" in result.stderr
    assert not leftover.exists()


def test_a_finished_venv_is_used_as_it_is(project: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(project / ".venv")], check=True
    )
    stamp = project / ".venv" / ".colorbot-installed"
    stamp.touch()
    os.utime(project / "pyproject.toml", (1, 1))
    os.utime(project / "constraints.txt", (1, 1))
    result = _run(project, PYTHON=sys.executable)
    assert "rebuilding" not in result.stderr
    assert "setting up" not in result.stderr
    # It got as far as running the checks in the venv (which has no ruff: that is fine).
    assert "No module named ruff" in result.stderr


def test_ci_runs_exactly_the_readme_test_command() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines == ["./scripts/test"]
