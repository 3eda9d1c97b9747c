"""Two transactions at once, in a fixed order: the first has done its work and not committed;
the second runs in a thread, and the first commits the moment the second sends the statement
that decides the race (its lock, or its write). No timing: before a fix, the second has read
before the first committed; after it, the second waits for the first at that statement."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session


def race(engine: Engine, first: Session, second: Callable[[], Any], reaches: str) -> Any:
    """Run ``second`` in a thread; commit ``first`` when the thread sends a statement
    containing ``reaches`` (case-insensitive), or when it ends. Returns what ``second``
    returned or the exception it raised."""
    arrived = threading.Event()
    outcome: list[Any] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread() is thread and reaches.upper() in statement.upper():
            arrived.set()

    def run() -> None:
        try:
            outcome.append(second())
        except Exception as e:  # handed to the test, which asserts on it
            outcome.append(e)
        finally:
            arrived.set()

    thread = threading.Thread(target=run)
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        thread.start()
        assert arrived.wait(timeout=60), "the second transaction never got there"
        first.commit()
        first.close()
        thread.join(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert not thread.is_alive()
    return outcome[0]
