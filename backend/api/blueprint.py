"""The API's blueprint: flask-smorest's, with argument schemas built once.

webargs builds a new instance of a schema *class* for every request it parses (a tenth of a
millisecond for a small query schema, more for a body); a schema instance is stateless for
``load``, so each route's is built once, when the route is declared.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flask_smorest
import marshmallow as ma


class Blueprint(flask_smorest.Blueprint):
    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Callable[..., Any]:
        if isinstance(schema, type) and issubclass(schema, ma.Schema):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
