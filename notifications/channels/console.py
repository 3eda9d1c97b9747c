"""A development channel: prints each push the way the phone would show it."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Sequence
from typing import TextIO

from notifications.channels import Push, Result


class ConsoleChannel:
    name = "console"
    max_batch = 500

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out
        self._ids = itertools.count(1)

    def send(self, pushes: Sequence[Push]) -> list[Result]:
        out = self._out or sys.stdout
        results = []
        for push in pushes:
            width = max(len(push.title), len(push.body), 30)
            print(f"+- {push.platform} device {push.device_id} " + "-" * 12, file=out)
            print(f"| {push.title.ljust(width)}", file=out)
            print(f"| {push.body.ljust(width)}", file=out)
            print(f"+- tag {push.collapse_id}", file=out, flush=True)
            results.append(Result(push, message_id=f"console/{next(self._ids)}"))
        return results
