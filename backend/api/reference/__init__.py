"""The API reference page at ``/docs``: Swagger UI over ``/openapi.json``, served entirely
by this app (no CDN, nothing fetched at run time).

Swagger UI's files come from the ``flask-swagger-ui`` package's ``dist`` folder (Swagger UI
5, which reads OpenAPI 3.1); only its files, not its blueprint, are used. Our page has no
inline script (``init.js`` starts the UI), so it runs under a Content-Security-Policy that
allows only this server; Swagger UI sets inline styles and draws icons as ``data:`` images,
so those two are allowed. The page holds no data: "Try it out" calls need a Bearer token
(the Authorize button), like any client.
"""

from __future__ import annotations

from importlib.resources import files

from flask import Blueprint, Response, abort

blp = Blueprint("reference", __name__, url_prefix="/docs")

_HERE = files(__package__)
_SWAGGER_UI = files("flask_swagger_ui").joinpath("dist")
# What the page loads (and the maps and preset a browser may ask for): nothing else is served.
_ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


@blp.after_request
def _secure(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@blp.get("", endpoint="page")
@blp.get("/", endpoint="page_slash")
def page() -> Response:
    """The reference page."""
    return Response(_HERE.joinpath("index.html").read_bytes(), mimetype="text/html")


@blp.get("/init.js", endpoint="init")
def init() -> Response:
    return Response(_HERE.joinpath("init.js").read_bytes(), mimetype="text/javascript")


@blp.get("/assets/<name>", endpoint="asset")
def asset(name: str) -> Response:
    if name not in _ASSETS:
        abort(404)
    response = Response(_SWAGGER_UI.joinpath(name).read_bytes(), mimetype=_ASSETS[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
