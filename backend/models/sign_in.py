"""Sign-ins that were signed out: the server side of "sign-out ends the session".

An ID token is valid until it expires (an hour) and the refresh token that made it keeps
making new ones, so forgetting them in the browser is not enough: a copy taken before the
sign-out would still work. Firebase ID tokens carry no session id, but every token of one
sign-in, refreshed or not, carries that sign-in's ``auth_time``, and another device's (or a
later) sign-in has its own. So a sign-out records (user, auth_time) and every request
presenting a token of that sign-in is refused; the person's other sign-ins are untouched.

``auth_time`` is kept as the claim is (whole seconds since the epoch): it is an identifier
compared for equality, never a time computed with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, UniqueConstraint, bindparam, exists
from sqlalchemy.orm import Mapped, mapped_column

from backend.clock import now
from backend.db import Base, UTCDateTime


class SignedOutSession(Base):
    __tablename__ = "signed_out_sessions"
    __table_args__ = (UniqueConstraint("user_id", "auth_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    signed_out_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    @classmethod
    def of_sign_in(cls, user_id: Any) -> Any:
        """True when the sign-in of bind ``auth_time`` (a token's claim; NULL matches none)
        by the user ``user_id`` (a column or a value) was signed out."""
        return exists().where(cls.user_id == user_id, cls.auth_time == bindparam("auth_time"))
