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
from concurrent.futures import ThreadPoolExecutor
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


# One interpreter per module, as many at once as there are cores: ~150 imports in a few
# seconds on an idle machine, and no process storm when several test runs share one.
_PROBE = (
    "import importlib, sys; importlib.import_module(sys.argv[1]); "
    "print(sorted(m for m in ('flask', 'flask_smorest') if m in sys.modules))"
)


def _probe(name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _PROBE, name], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_every_module_imports_alone_in_a_fresh_interpreter() -> None:
    names = modules()
    assert len(names) > 100
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = dict(zip(names, pool.map(_probe, names), strict=True))
    failed = {
        name: done.stderr.strip().splitlines()[-1:]
        for name, done in results.items()
        if done.returncode != 0
    }
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
