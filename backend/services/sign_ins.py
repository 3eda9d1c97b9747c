"""Signing out: the server ends one sign-in (see ``backend/models/sign_in.py`` for why a
sign-in is known by its ``auth_time``). ``backend/auth.py`` refuses its tokens afterwards."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.models import SignedOutSession, User


def sign_out(session: Session, user: User, auth_time: int) -> None:
    """End the sign-in that made this token; signing out twice changes nothing."""
    ended = select(SignedOutSession.id).where(
        SignedOutSession.user_id == user.id, SignedOutSession.auth_time == auth_time
    )
    if session.scalar(ended) is None:
        session.add(SignedOutSession(user_id=user.id, auth_time=auth_time))
