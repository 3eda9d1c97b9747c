"""What a JSON body must be before any schema reads it: not nested deeper than a person's
data ever is, and valid Unicode (no lone UTF-16 surrogates, which JSON's ``\\ud800`` escapes
can spell but no database can store).

Both are checked only when the raw body could break them (many brackets; a ``\\ud8..``-
``\\udf..`` escape), so an ordinary request is not parsed twice.
"""

from __future__ import annotations

import json
import re

from backend.errors import fail

MAX_DEPTH = 32  # our deepest schema (a Timing inside a care-plan activity) is under 10
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _depth(value: object) -> int:
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, level + 1) for child in children)
    return deepest


def check_json_body(raw: bytes) -> None:
    """Refuse (400, our error shape) a body nested too deeply or holding a lone surrogate."""
    deep = raw.count(b"[") + raw.count(b"{") > MAX_DEPTH
    surrogate = _SURROGATE_ESCAPE.search(raw) is not None
    if not (deep or surrogate):
        return
    try:
        value = json.loads(raw)
    except RecursionError:
        fail(400, f"The JSON body is nested too deeply (at most {MAX_DEPTH} levels).")
    except ValueError:
        return  # not JSON at all: the parser's own 400 says so
    if deep and _depth(value) > MAX_DEPTH:
        fail(400, f"The JSON body is nested too deeply (at most {MAX_DEPTH} levels).")
    if surrogate:
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            fail(400, "A string in the body holds a lone UTF-16 surrogate; send valid Unicode.")
