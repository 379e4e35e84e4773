"""Every environment variable the code reads is in .env.example and in the README's
settings table, and neither lists one that nothing uses."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("colorbot", "bot", "db", "models", "training", "web")
# Read by the code but set by a launcher, not by people: torchrun's process group.
LAUNCHER_VARIABLES = {"LOCAL_RANK", "RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}
# Read by docker compose itself, not by the code.
COMPOSE_VARIABLES = {"COMPOSE_PROFILES", "COMPOSE_FILE"}
OUR_NAMESPACE = re.compile(r"(COLORBOT|DISCORD)_[A-Z0-9_]+")
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]+")


def _is_environ(node: ast.AST) -> bool:
    """`os.environ`, `environ`, or a local `env` mapping (Settings.from_env's copy)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id in ("environ", "env")


def variables_read(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        name = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr == "getenv":
                name = node.args[0].value
            elif (isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault", "pop")
                  and _is_environ(func.value)):
                name = node.args[0].value
        elif (isinstance(node, ast.Subscript) and _is_environ(node.value)
              and isinstance(node.slice, ast.Constant)):
            name = node.slice.value
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # Names kept in constants (WEBHOOK_ENV = "...", secret lists): our namespace.
            if OUR_NAMESPACE.fullmatch(node.value):
                found.add(node.value)
        if isinstance(name, str) and ENV_NAME.fullmatch(name):
            found.add(name)
    return found


def code_variables() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found |= variables_read(path.read_text(encoding="utf-8"))
    return found - LAUNCHER_VARIABLES


def env_example_variables() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?([A-Z][A-Z0-9_]+)=", text, flags=re.MULTILINE))


def readme_table_variables() -> set[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Settings", 1)[1]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("| `"):
            rows.append(line.split("|")[1])
    return {name for cell in rows for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", cell)}


def compose_variables() -> set[str]:
    found = set()
    for name in ("docker-compose.yml", "docker-compose.gpu.yml"):
        text = (ROOT / name).read_text(encoding="utf-8")
        found |= set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", text))
    return found


def test_the_scan_finds_what_the_code_reads():
    sample = (
        "import os\n"
        "WEBHOOK_ENV = 'COLORBOT_SOMETHING'\n"
        "a = os.environ.get('DATABASE_URL')\n"
        "b = os.getenv('WORKER_URLS', '')\n"
        "c = os.environ['HOME_DIR']\n"
        "def f(env):\n    return env.get('DISCORD_TOKEN', '')\n"
        "d = {'key': 'not a variable'}.get('lower')\n"
    )
    assert variables_read(sample) == {
        "COLORBOT_SOMETHING", "DATABASE_URL", "WORKER_URLS", "HOME_DIR", "DISCORD_TOKEN"}
    found = code_variables()
    assert {"DISCORD_TOKEN", "DATABASE_URL", "WORKER_URLS", "COLORBOT_DATA",
            "COLORBOT_WORKER_ADMIN_TOKEN", "COLORBOT_DATASETS"} <= found


def test_every_variable_the_code_reads_is_in_env_example():
    missing = code_variables() - env_example_variables()
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_every_variable_the_code_reads_is_in_the_readme_table():
    missing = code_variables() - readme_table_variables()
    assert not missing, f"add to README.md's settings table: {sorted(missing)}"


def test_env_example_lists_nothing_that_nobody_reads():
    used = code_variables() | compose_variables() | COMPOSE_VARIABLES
    stale = env_example_variables() - used
    assert not stale, f"read by neither the code nor compose: {sorted(stale)}"


def test_compose_only_variables_are_in_env_example():
    missing = compose_variables() - env_example_variables()
    assert not missing, f"docker-compose.yml uses, .env.example lacks: {sorted(missing)}"
