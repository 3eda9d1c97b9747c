"""ETags for records that several people edit: a stale write gets 412 instead of silently
overwriting someone else's change.

flask-smorest's ``@blp.etag`` documents the headers and the 304/412/428 answers and sets the
``ETag`` header; this blueprint changes two things about it:

* The If-Match check happens where the view calls :meth:`EtagBlueprint.check_etag`, i.e.
  after ``authorize()``: without access you get the same 404 with or without the header.
* 412 and 428 come out in our one error shape, with a message that says what to do.

Views tag a record by its identity and version (``set_etag({"id": .., "version": ..})``),
not by its JSON, so the tag is the same whoever reads it and cheap to check.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest.etag import _get_etag_ctx

from backend.api.blueprint import Blueprint
from backend.errors import fail


class EtagBlueprint(Blueprint):
    def _check_precondition(self) -> None:
        """flask-smorest checks If-Match before the view runs; ours do it in check_etag."""

    def check_etag(self, etag_data: Any, etag_schema: Any = None) -> None:
        """428 without If-Match, 412 when it is not the record's current tag."""
        if not self._is_etag_enabled():
            return
        if not request.if_match:
            fail(
                428,
                "Send the ETag from your last read in an If-Match header, "
                "so that a change made meanwhile is not overwritten.",
            )
        if request.if_match.star_tag:
            # "*" matches any version: the very overwrite the header exists to prevent.
            fail(
                428,
                "If-Match: * is not enough here; send the ETag from your last read, "
                "so that a change made meanwhile is not overwritten.",
            )
        _get_etag_ctx()["etag_checked"] = True
        if self.tag(etag_data) not in request.if_match:
            fail(
                412,
                "Someone changed this since you read it; nothing was saved. "
                "Read it again and reapply your change.",
            )

    @classmethod
    def tag(cls, etag_data: Any) -> str:
        """The ETag value (without quotes) for ``etag_data``."""
        return str(cls._generate_etag(etag_data))
