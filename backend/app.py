"""``create_app(settings)``: wires config, database, sign-in, the access log and the API."""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, cast

from flask import Flask, Response, g, request
from sqlalchemy import Table, bindparam, insert, text

from backend import db, metrics
from backend.access import start_access_log, take_access_log
from backend.api import (
    access_log,
    adherence,
    appointments,
    calendar_feed,
    caregivers,
    careplans,
    careteams,
    checkin_schedules,
    checkins,
    devices,
    dose_givers,
    doses,
    fhir,
    health,
    invitations,
    me,
    medications,
    messages,
    panel,
    patients,
    reminders,
    team_admin,
    today,
    transitions,
    worklist,
)
from backend.api.common import IdConverter, add_page_links
from backend.api.errors import CareApi, register_error_handlers
from backend.api.json_bodies import check_json_body
from backend.api.openapi import spec_plugins
from backend.api.reference import blp as reference_blp
from backend.auth import authenticate
from backend.clock import now
from backend.config import EMULATOR_HOST_VAR, ConfigError, Settings
from backend.console import blp as console_blp
from backend.db import UTCDateTime
from backend.errors import fail
from backend.logs import configure_logging
from backend.models import AccessLogEntry

API_TITLE = "care-companion"
API_VERSION = "0.1.0"
# Request limits the app answers itself, in JSON; ``carecompanion serve`` sets gunicorn's own
# (which answer in HTML) above them, so these are the ones a client meets.
MAX_REQUEST_LINE = 4096
MAX_HEADER_FIELD = 8190
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
request_log = logging.getLogger("carecompanion.requests")
# A URL that is itself a secret (a calendar feed's): logged by its rule, never as sent.
_SECRET_URL = re.compile(r"/calendar/[^/?#\s]+\.ics")
_SECRET_SHOWN = "/calendar/<secret>.ics"


class RedactSecretUrls(logging.Filter):
    """Keeps feed secrets out of the HTTP servers' request logs (werkzeug's in the demo,
    gunicorn's access log in production): the request line is logged with the secret
    replaced."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if _SECRET_URL.search(message):
            record.msg, record.args = _SECRET_URL.sub(_SECRET_SHOWN, message), None
        return True


_REDACT = RedactSecretUrls()


def database_url(settings: Settings, instance_path: str) -> str:
    if settings.database_url:
        return settings.database_url
    Path(instance_path).mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{Path(instance_path) / 'carecompanion.sqlite'}"


def instance_folder(settings: Settings) -> str:
    """Where the app's instance folder is (before any app exists): the setting, or Flask's
    default for this package."""
    return settings.instance_path or Flask(__name__).instance_path


def _sync_emulator_env(settings: Settings) -> None:
    # firebase-admin reads the emulator switch from the process environment at verify time;
    # keep it in step with our settings so the two can never disagree.
    if settings.emulated_auth:
        os.environ[EMULATOR_HOST_VAR] = settings.firebase_auth_emulator_host or ""
    elif os.environ.get(EMULATOR_HOST_VAR):
        raise ConfigError(
            f"{EMULATOR_HOST_VAR} is set in the environment but not in the settings in use"
        )


def create_app(settings: Settings | None = None, **flask_config: Any) -> Flask:
    settings = (settings or Settings.from_env()).validate()
    _sync_emulator_env(settings)
    app = Flask(
        __name__,
        instance_path=settings.instance_path or None,
        instance_relative_config=True,
    )
    app.config.update(
        SETTINGS=settings,
        API_TITLE=API_TITLE,
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        JSON_SORT_KEYS=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
        API_SPEC_OPTIONS={
            "info": {
                "description": "Care plans, medication schedules, appointments and check-ins "
                "for patients, family caregivers and care coordinators."
            },
            "security": [{"bearerAuth": []}],
            # Relative: the host that served this document. Generated clients take the base
            # URL as an argument anyway (e.g. https://api.example.org).
            "servers": [{"url": "/", "description": "The server that serves this document"}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {
                        "type": "http",
                        "scheme": "bearer",
                        "bearerFormat": "Firebase ID token (JWT)",
                    }
                }
            },
        },
    )
    app.config.update(flask_config)
    configure_logging(settings.log_level, settings.log_format)
    for name in ("werkzeug", "gunicorn.access", "gunicorn.error"):
        logging.getLogger(name).addFilter(_REDACT)  # the same filter once, however many apps

    engine = app.config.get("ENGINE") or db.make_engine(database_url(settings, app.instance_path))
    db.init_engine(engine)

    app.url_map.converters["int"] = IdConverter
    api = CareApi(app, spec_kwargs=spec_plugins())
    register_error_handlers(app, api)
    _register_blueprints(api)
    app.register_blueprint(console_blp)
    app.register_blueprint(reference_blp)
    _register_hooks(app)
    return app


def _register_blueprints(api: CareApi) -> None:

    for module in (
        health,
        me,
        devices,
        patients,
        invitations,
        caregivers,
        careteams,
        access_log,
        careplans,
        appointments,
        calendar_feed,
        medications,
        doses,
        dose_givers,
        today,
        reminders,
        adherence,
        checkins,
        checkin_schedules,
        messages,
        worklist,
        panel,
        transitions,
        team_admin,
        fhir,
    ):
        api.register_blueprint(module.blp)


def _register_hooks(app: Flask) -> None:
    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()
        start_access_log()

    app.before_request(authenticate)

    @app.before_request
    def within_limits() -> None:
        # Answered here in our JSON shape; gunicorn's own (HTML) limits are set above these.
        if len(request.full_path) > MAX_REQUEST_LINE:
            fail(414, f"The URL is too long (at most {MAX_REQUEST_LINE} characters).")
        if any(len(value) > MAX_HEADER_FIELD for value in request.headers.values()):
            fail(431, f"A request header is too large (at most {MAX_HEADER_FIELD} bytes).")

    @app.before_request
    def json_bodies_only() -> None:
        # webargs reads a body that is not JSON as no body: a PATCH would "succeed" unchanged.
        if request.method not in _BODY_METHODS or request.url_rule is None:
            return
        if (request.content_length or request.mimetype) and not request.is_json:
            fail(415, "Send the body as JSON (Content-Type: application/json).")
        if request.is_json:
            check_json_body(request.get_data(cache=True))

    # Registered before ``finish``, so it runs after it (Flask runs them in reverse) and
    # sees the status the client gets.
    app.after_request(_observe)

    @app.after_request
    def finish(response: Response) -> Response:
        # Success commits the request's work with its access-log rows in one transaction;
        # an error leaves nothing changed but the access-log rows, committed on their own.
        if response.status_code >= 400:
            db.session.rollback()
        _write_access_log(response.status_code)
        db.session.commit()
        response.headers["X-Request-ID"] = g.get("request_id", "")
        add_page_links(response)
        if request.method == "OPTIONS" and response.status_code == 200 and not response.data:
            # Flask's automatic answer: the methods in Allow and nothing else (not an empty
            # HTML document).
            response.status_code = 204
            del response.headers["Content-Type"]
        if "Authorization" in request.headers or _secret_in_url():
            # Health data: no shared or browser cache keeps a signed-in answer (nor one
            # signed in by a secret URL).
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_appcontext
    def remove_session(_exc: BaseException | None) -> None:
        db.session.remove()


def _observe(response: Response) -> Response:
    """The request's metrics and its one log line: route template, never the path's ids;
    the user's id, never their name; the request id that is in the body of any error."""
    rule = request.url_rule
    route = rule.rule if rule is not None else metrics.UNMATCHED
    method = request.method if request.method in metrics.METHODS else "OTHER"
    seconds = time.perf_counter() - g.get("started", time.perf_counter())
    status = response.status_code
    metrics.HTTP_REQUESTS.labels(route, method, str(status)).inc()
    metrics.HTTP_DURATION.labels(route, method).observe(seconds)
    user = g.get("current_user")
    request_log.info(
        "%s %s %d",
        method,
        route,
        status,
        extra={
            "request_id": g.get("request_id", "-"),
            "user_id": user.id if user is not None else None,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
        },
    )
    return response


def _secret_in_url() -> bool:
    return _SECRET_URL.search(request.path) is not None


_LOG_INSERT = insert(cast(Table, AccessLogEntry.__table__))
_LOG_COLUMNS = (
    "patient_id",
    "actor_user_id",
    "actor_role",
    "action",
    "method",
    "path",
    "status",
    "request_id",
    "at",
)
# PostgreSQL: one statement however many rows -- the request's facts once, each row's own
# four as arrays the server unnests. An executemany of a today view's 5 rows cost psycopg's
# pipeline more Python than the statement; a panel view's 2,000 rows as a multi-row INSERT
# spent ~200 ms adapting 18,000 parameters, as 4 arrays next to nothing. Real array
# parameters, not db.unnest_insert's comma-joined texts: a role or an action is free text.
_LOG_UNNEST = text(
    f"INSERT INTO {AccessLogEntry.__tablename__} ({', '.join(_LOG_COLUMNS)}) "
    "SELECT p, u, r, a, :method, :path, :status, :request_id, :at FROM unnest("
    "CAST(:patients AS integer[]), CAST(:users AS integer[]), "
    "CAST(:roles AS text[]), CAST(:actions AS text[])) AS t(p, u, r, a)"
).bindparams(bindparam("at", type_=UTCDateTime))


def _write_access_log(status: int) -> None:
    pending = take_access_log()
    if not pending:
        return
    # The request's facts once, not per row (a panel view logs 2,000 rows).
    path = _SECRET_SHOWN if _secret_in_url() else request.path[:300]
    facts = {
        "method": request.method,
        "path": path,
        "status": status,
        "request_id": g.request_id,
        "at": now(),
    }
    conn = db.session.connection()
    if conn.dialect.name == "postgresql":
        patients, users, roles, actions = (list(column) for column in zip(*pending, strict=True))
        conn.execute(
            _LOG_UNNEST,
            {"patients": patients, "users": users, "roles": roles, "actions": actions, **facts},
        )
        return
    # SQLite: a Core insert of the rows on the request's connection (the ORM's bulk path
    # cost more than the statement itself).
    conn.execute(
        _LOG_INSERT, [dict(zip(_LOG_COLUMNS[:4], row, strict=True)) | facts for row in pending]
    )
