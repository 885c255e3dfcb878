"""Content negotiation (RFC 9110 12.5.1): what an `Accept` header allows, by quality and specificity. It ships
with the function, which answers 406 to an `Accept` it cannot meet, and the REST tier negotiates with it too."""

from __future__ import annotations

EXACT = 2  # specificity of a range that names the type outright (`type/*` is 1, `*/*` 0)
MediaRange = tuple[str, str, float]  # type, subtype, q; lower-cased


def media_ranges(accept: str) -> list[MediaRange]:
    """The media ranges of an `Accept` value; elements that are not media ranges are left out."""
    return [parsed for item in accept.split(",") if (parsed := _media_range(item)) is not None]


def quality(offered: str, ranges: list[MediaRange]) -> tuple[float, int]:
    """(q, specificity) of the most specific range that matches `offered`; (0, -1) when none does."""
    kind, _, subtype = offered.partition("/")
    best = (0.0, -1)
    for range_kind, range_subtype, q in ranges:
        if (range_kind, range_subtype) == (kind, subtype):
            specificity = EXACT
        elif (range_kind, range_subtype) == (kind, "*"):
            specificity = 1
        elif (range_kind, range_subtype) == ("*", "*"):
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (q, specificity)
    return best


def allows(accept: str | None, offered: str) -> bool:
    """Whether `accept` allows `offered`; no `Accept` (or an empty one) allows anything."""
    if accept is None or not accept.strip():
        return True
    return quality(offered, media_ranges(accept))[0] > 0


def _media_range(item: str) -> MediaRange | None:
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
