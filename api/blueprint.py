"""The blueprint class every inferq resource uses: flask-smorest's, with the strict parser."""

from __future__ import annotations

from typing import Any

import flask_smorest
import marshmallow as ma

from api.validation import StrictParser


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint whose arguments are parsed by :class:`StrictParser`."""

    ARGUMENTS_PARSER = StrictParser()

    def arguments(self, schema: Any, *args: Any, **kwargs: Any) -> Any:
        """flask-smorest's, given one schema instance for every request.

        Handed a class, webargs builds a new instance per request, and building
        one (copying its declared fields) costs more than loading a body. Our
        schemas keep no state between loads, so one instance serves all.
        """
        if isinstance(schema, type) and issubclass(schema, ma.Schema):
            schema = schema()
        return super().arguments(schema, *args, **kwargs)
