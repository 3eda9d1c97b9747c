"""``carecompanion console build``: the console's Firebase sign-in bundle, from npm.

The official Firebase JS SDK (``firebase``, the modular ``firebase/auth``) and esbuild are
pinned by ``backend/console/web/package-lock.json``; ``npm ci`` installs exactly those and
esbuild bundles the entry (``web/src/firebase-auth.js``) into ``static/bundle/``, which the
console serves from its own origin (no CDN). The bundle is built, never committed. Only the
production sign-in needs it: the development persona picker (``carecompanion demo``) does not.
"""

from __future__ import annotations

import shutil
import subprocess

import click

from backend.console import BUNDLE, WEB_DIR

_STEPS = (
    ("ci", "--no-audit", "--no-fund", "--loglevel=error"),  # exactly the locked versions
    ("run", "build", "--silent"),  # esbuild, with the options in package.json
)


@click.group("console")
def console_group() -> None:
    """The care team's console."""


@console_group.command("build")
def build() -> None:
    """Build the Firebase sign-in bundle (npm ci, then esbuild); needs Node.js and npm."""
    npm = shutil.which("npm")
    if npm is None:
        raise click.ClickException(
            "npm is not installed: install Node.js 18 or newer with npm "
            "(e.g. apt-get install nodejs npm), then run this again"
        )
    for step in _STEPS:
        click.echo(f"$ npm {' '.join(step)}   (in {WEB_DIR})")
        done = subprocess.run([npm, *step], cwd=WEB_DIR, check=False)
        if done.returncode != 0:
            raise click.ClickException(f"npm {step[0]} failed (exit {done.returncode})")
    bundle = WEB_DIR.parent.joinpath("static", *BUNDLE)
    size_kb = bundle.stat().st_size / 1024
    click.echo(f"built {bundle} ({size_kb:.0f} KB); the console's sign-in page now uses it")
