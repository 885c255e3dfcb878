"""Content negotiation for POST /query: the `Accept` header chooses one JSON answer or server-sent events."""

from __future__ import annotations

from connexion.exceptions import ProblemException

JSON = "application/json"
EVENT_STREAM = "text/event-stream"
_EXACT = 2  # specificity of a range that names the type outright (`type/*` is 1, `*/*` 0)


def chosen_media_type(accept: str | None) -> str:
    """The media type to answer `accept` with (RFC 9110 12.5.1: by quality, then by the most specific range),
    JSON when there is no `Accept`; a 406 ProblemException when it allows neither."""
    if accept is None or not accept.strip():
        return JSON
    ranges = [parsed for item in accept.split(",") if (parsed := _media_range(item)) is not None]
    as_json, as_stream = _quality(JSON, ranges), _quality(EVENT_STREAM, ranges)
    # Named outright, the stream wins a tie with JSON: a client that lists it wants it.
    if as_stream[0] > 0 and (as_stream > as_json or (as_stream == as_json and as_stream[1] == _EXACT)):
        return EVENT_STREAM
    if as_json[0] > 0:
        return JSON
    detail = f"accept: must allow {JSON} or {EVENT_STREAM}"
    raise ProblemException(status=406, title="Not Acceptable", detail=detail)


def _media_range(item: str) -> tuple[str, str, float] | None:
    """(type, subtype, q) of one element of `Accept`, lower-cased; None for one that is not a media range."""
    media_type, *parameters = item.split(";")
    kind, slash, subtype = media_type.strip().lower().partition("/")
    if not (slash and kind and subtype) or (kind == "*" and subtype != "*"):
        return None
    q = 1.0
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            if not 0 <= q <= 1:
                return None
    return kind, subtype, q


def _quality(offered: str, ranges: list[tuple[str, str, float]]) -> tuple[float, int]:
    """(q, specificity) of the most specific range that matches `offered`; (0, -1) when none does."""
    kind, _, subtype = offered.partition("/")
    best = (0.0, -1)
    for range_kind, range_subtype, q in ranges:
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = _EXACT
        elif (range_kind, range_subtype) == (kind, "*"):
            specificity = 1
        elif (range_kind, range_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (q, specificity)
    return best
