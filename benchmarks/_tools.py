"""What the benchmarks need beyond the Python install: ``wrk``, the HTTP load generator.

:func:`require_wrk` returns its path, installing it first when it is missing and this is a
Debian or Ubuntu machine (``apt-get install -y wrk``, non-interactive: as root, or through
``sudo -n`` when that needs no password). Anything else stops with what to run by hand, so
a newcomer runs a benchmark with one command after the README's install.
"""

from __future__ import annotations

import os
import shutil
import subprocess

INSTALL_HINT = (
    "wrk is not installed and could not be installed here. Install it with your package "
    "manager (Debian/Ubuntu: sudo apt-get install -y wrk; macOS: brew install wrk) and run "
    "the benchmark again."
)


def _apt_command() -> list[str] | None:
    apt = shutil.which("apt-get")
    if apt is None:
        return None
    if os.geteuid() == 0:
        return [apt]
    sudo = shutil.which("sudo")
    if sudo is None:
        return None
    # -n: never ask for a password (no stdin in CI); fails at once instead.
    return [sudo, "-n", apt]


def _apt(apt: list[str], *args: str) -> bool:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(
        [*apt, *args], env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True
    )
    return done.returncode == 0


def require_wrk() -> str:
    """The path of ``wrk``; installed with apt-get first if missing; else SystemExit."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = _apt_command()
    if apt is None:
        raise SystemExit(INSTALL_HINT)
    print("wrk (the HTTP load generator) is missing; installing it: apt-get install -y wrk")
    install = ("install", "-y", "--no-install-recommends", "wrk")
    # A fresh machine's package lists may be empty or stale: update once, then try again.
    if not _apt(apt, *install) and not (_apt(apt, "update") and _apt(apt, *install)):
        raise SystemExit(INSTALL_HINT)
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit(INSTALL_HINT)
    return found
