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

# Imports do not depend on the database: checked once, in the SQLite run (about 90 s of CPU).
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


# One interpreter per module, all started at once: ~150 imports in a few seconds.
_PROBE = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print(sorted(m for m in ('flask', 'flask_smorest') if m in sys.modules))"
)


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    names = modules()
    assert len(names) > 100
    procs = {
        name: subprocess.Popen(
            [sys.executable, "-c", _PROBE, name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    failed = {}
    for name, proc in procs.items():
        _out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failed[name] = err.strip().splitlines()[-1:]
    assert failed == {}


def test_the_worker_and_the_engine_load_without_flask() -> None:
    for name in ("notifications.worker", "notifications.dispatch", "backend.reminders.planner"):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE, name],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert json.loads(out.strip().replace("'", '"')) == [], name
