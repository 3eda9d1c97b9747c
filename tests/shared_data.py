"""Where the public FHIR material is: ``../shared/data`` beside the repository, or the folder
``CARECOMPANION_SHARED_DATA`` names. It is read from there and never copied into the repository,
so a clone elsewhere has none: the tests that need it skip and say where they looked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("CARECOMPANION_SHARED_DATA") or ROOT.parent / "shared" / "data")
FHIR = SHARED / "fhir"


def absent(folder: Path) -> str | None:
    """Why a test that reads ``folder`` cannot run, or None when it is there."""
    if folder.is_dir():
        return None
    return (
        f"the shared FHIR material is not at {folder} (it lives in ../shared/data beside the "
        "repository, or set CARECOMPANION_SHARED_DATA to that folder)"
    )


def require(folder: Path) -> Path:
    """``folder``, or skip the test saying where the material was looked for."""
    reason = absent(folder)
    if reason is not None:
        pytest.skip(reason)
    return folder
