"""The layout holds: every module imports on its own, and the worker has no Flask.

Each module is imported alone in a fresh interpreter (an import cycle hidden by the order in
which the suite happens to import things shows up here). The dependency direction itself is
checked by import-linter in CI (``lint-imports``, contracts in pyproject.toml).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Imports do not depend on the database: checked once, in the SQLite run.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="import checks run once, in the SQLite run; they do not touch the database",
)
PACKAGES = ("backend", "notifications")


def modules() -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            if "migrations" in rel.parts:
                continue  # Alembic scripts run inside Alembic, not on import
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            found.append(".".join(parts))
    return found


# Each module alone in a fresh process: a child learns which third-party modules ours load;
# the probe imports those once, then forks a process per module of ours (a module's import
# then costs only its own code, not starting Python and loading Flask, SQLAlchemy and
# firebase-admin again: 40 s of CPU where an interpreter each took 115 s on CI), as many at
# once as there are cores.
_PROBE = r"""
import importlib, os, sys, tempfile, traceback
OURS = ("backend", "notifications")
names = sys.argv[1:]
found = tempfile.NamedTemporaryFile("r", delete=False)
pid = os.fork()
if pid == 0:
    for name in names:
        try:
            importlib.import_module(name)
        except BaseException:
            pass
    with open(found.name, "w") as out:
        out.write("\n".join(m for m in sys.modules if m.split(".")[0] not in OURS))
    os._exit(0)
os.waitpid(pid, 0)
for module in found.read().split():
    try:
        importlib.import_module(module)
    except BaseException:
        pass
os.unlink(found.name)
assert not [m for m in sys.modules if m.split(".")[0] in OURS], "preloaded one of ours"
failed = running = 0
for name in names:
    if running == (os.cpu_count() or 2):
        failed += os.wait()[1] != 0
        running -= 1
    if os.fork() == 0:
        try:
            importlib.import_module(name)
        except BaseException:
            print(f"{name}: {traceback.format_exc().strip().splitlines()[-1]}", file=sys.stderr)
            os._exit(1)
        os._exit(0)
    running += 1
for _ in range(running):
    failed += os.wait()[1] != 0
sys.exit(1 if failed else 0)
"""
# Whether Flask came in with a module (a fresh interpreter each: the worker's modules only).
_FLASK_PROBE = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print(sorted(m for m in ('flask', 'flask_smorest') if m in sys.modules))"
)


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    names = modules()
    assert len(names) > 100
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_module_that_cannot_import_is_named() -> None:
    """The probe is not blind: a module of ours that fails on import is reported by name."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, "backend.clock", "backend.no_such_module"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "backend.no_such_module: ModuleNotFoundError" in done.stderr


def test_the_worker_and_the_engine_load_without_flask() -> None:
    for name in ("notifications.worker", "notifications.dispatch", "backend.reminders.planner"):
        out = subprocess.run(
            [sys.executable, "-c", _FLASK_PROBE, name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(out.strip().replace("'", '"')) == [], name
