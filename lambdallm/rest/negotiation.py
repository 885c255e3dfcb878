"""Content negotiation for POST /query: the `Accept` header chooses one JSON answer or server-sent events."""

from __future__ import annotations

from connexion.exceptions import ProblemException

from llm_wire.negotiation import EXACT, media_ranges, quality

JSON = "application/json"
EVENT_STREAM = "text/event-stream"


def chosen_media_type(accept: str | None) -> str:
    """The media type to answer `accept` with (RFC 9110 12.5.1: by quality, then by the most specific range),
    JSON when there is no `Accept`; a 406 ProblemException when it allows neither."""
    if accept is None or not accept.strip():
        return JSON
    ranges = media_ranges(accept)
    as_json, as_stream = quality(JSON, ranges), quality(EVENT_STREAM, ranges)
    # Named outright, the stream wins a tie with JSON: a client that lists it wants it.
    if as_stream[0] > 0 and (as_stream > as_json or (as_stream == as_json and as_stream[1] == EXACT)):
        return EVENT_STREAM
    if as_json[0] > 0:
        return JSON
    detail = f"accept: must allow {JSON} or {EVENT_STREAM}"
    raise ProblemException(status=406, title="Not Acceptable", detail=detail)
