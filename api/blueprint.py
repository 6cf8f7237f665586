"""The blueprint class every inferq resource uses: flask-smorest's, with the strict parser."""

from __future__ import annotations

import flask_smorest

from api.validation import StrictParser


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest blueprint whose arguments are parsed by :class:`StrictParser`."""

    ARGUMENTS_PARSER = StrictParser()
