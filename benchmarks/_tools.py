"""``wrk``, the HTTP load generator of the benchmarks that drive a server: installing it,
writing its Lua scripts, running it and reading its report.

:func:`require_wrk` returns its path, installing it first when it is missing and this is a
Debian or Ubuntu machine (``apt-get install -y wrk``, non-interactive: as root, or through
``sudo -n`` when that needs no password). Anything else stops with what to run by hand, so
a newcomer runs a benchmark with one command after the README's install.

:func:`write_script` wraps a benchmark's ``request()`` in the shared thread numbering and the
``done()`` hook that prints the percentiles; :func:`run_wrk` runs one script for a while and
returns a :class:`Result` (requests/s, p50/p95/p99 in ms, errors by kind).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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


# -- running it ---------------------------------------------------------------------------

# Before a benchmark's own Lua: each thread numbers its requests from its own place, a
# million apart, so the counter both spreads the threads over the tokens and makes ids that
# no other thread makes (the soak's dose ``client_id``).
PRELUDE = r"""
local counter = 0
local threads = 0

function setup(thread)
  thread:set("thread_no", threads)
  threads = threads + 1
end

function init(args)
  counter = (tonumber(thread_no) or 0) * 1000003
end
"""

# After it: one JSON line with the percentiles wrk's report leaves out (it lists 50/75/90/99)
# and the errors by kind, read by :func:`parse_wrk`.
DONE = r"""
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, ' ..
    '"p99_us": %d, "mean_us": %f, "max_us": %d, "connect": %d, "read": %d, ' ..
    '"write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95),
    latency:percentile(99), latency.mean, latency.max, e.connect, e.read, e.write,
    e.status, e.timeout))
end
"""


@dataclass
class Result:
    name: str
    requests: int
    rps: float
    p50: float  # ms
    p95: float
    p99: float
    errors: dict[str, int]
    raw: str
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per request, by process kind


CPU_KINDS = ("gunicorn", "postgres", "wrk")  # the processes CpuProbe (benchmarks/_server.py) counts


def print_results(results: Sequence[Result], notes: Sequence[str] = (), note: str = "") -> None:
    """A table: a line per result (requests, req/s, p50/p95/p99 ms, CPU ms per request by
    kind of process), ``notes[i]`` at the end of line ``i`` under the heading ``note``."""
    width = max(len("endpoint"), *(len(r.name) for r in results))
    cpu = "   CPU ms/request: "
    header = (
        f"{'endpoint':<{width}} {'requests':>8} {'req/s':>7} {'p50 ms':>8} {'p95 ms':>8} "
        f"{'p99 ms':>8}{cpu}{' '.join(f'{k:>8}' for k in CPU_KINDS)}  {note}"
    ).rstrip()
    print(header)
    print("-" * len(header))
    for i, r in enumerate(results):
        cells = " ".join(
            f"{r.cpu_ms[k]:>8.2f}" if k in r.cpu_ms else f"{'-':>8}" for k in CPU_KINDS
        )
        extra = notes[i] if i < len(notes) else ""
        errors = f"   errors: {r.errors}" if r.errors else ""
        print(
            f"{r.name:<{width}} {r.requests:>8,} {r.rps:>7.1f} {r.p50:>8.2f} {r.p95:>8.2f} "
            f"{r.p99:>8.2f}{' ' * len(cpu)}{cells}  {extra}{errors}".rstrip()
        )


def write_script(folder: Path, name: str, body: str) -> Path:
    """``folder/name.lua``: the shared prelude, the benchmark's ``request()`` (and ``delay()``)
    using ``counter``, and the ``done()`` hook."""
    script = folder / f"{name}.lua"
    text = f"-- {name}.lua, written by benchmarks/_tools.py\n{PRELUDE}\n{body}\n{DONE}"
    script.write_text(text, encoding="utf-8")
    return script


def run_wrk(
    wrk: str,
    base: str,
    script: Path,
    name: str,
    seconds: int,
    connections: int,
    threads: int = 2,
) -> Result:
    command = [
        wrk,
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        "--latency",
        f"--script={script}",
        base,
    ]
    # Past its duration wrk only waits for answers in flight (at most --timeout each).
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return parse_wrk(name, done.stdout)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def parse_wrk(name: str, output: str) -> Result:
    """Requests/s from wrk's report; p50/p95/p99 from the ``done()`` hook (wrk's own latency
    distribution lists 50/75/90/99 but not 95), cross-checked against the report's p50."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    stats = re.search(r"^WRKJSON (\{.*\})$", output, re.MULTILINE)
    if not rps or not stats:
        raise SystemExit(f"could not read wrk's output:\n{output}")
    data = json.loads(stats.group(1))
    distribution = {
        int(pct): float(value) * _UNITS[unit]
        for pct, value, unit in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m)\s*$", output, re.M)
    }
    p50 = data["p50_us"] / 1000
    if 50 in distribution and abs(distribution[50] - p50) > max(0.05 * p50, 0.02):
        raise SystemExit(f"wrk's p50 {distribution[50]} ms and done()'s {p50} ms disagree")
    errors = {k: data[k] for k in ("connect", "read", "write", "status", "timeout") if data[k]}
    return Result(
        name=name,
        requests=data["requests"],
        rps=float(rps.group(1)),
        p50=p50,
        p95=data["p95_us"] / 1000,
        p99=data["p99_us"] / 1000,
        errors=errors,
        raw=output,
    )
