"""Each operation's handler is decorated once (lambdallm/rest/operations.py), and the validators' media-type lookups
are remembered (lambdallm/rest/validators.py), without changing what a request gets."""

from __future__ import annotations

import pytest
from connexion.decorators import StarletteDecorator

from lambdallm.rest.validators import VALIDATOR_MAP, JsonBodyValidator


async def test_each_operation_decorates_its_handler_once(http, monkeypatch: pytest.MonkeyPatch) -> None:
    decorated = []
    decorate = StarletteDecorator.decorate

    def counted(self: StarletteDecorator, function: object) -> object:
        decorated.append(function)
        return decorate(self, function)

    monkeypatch.setattr(StarletteDecorator, "decorate", counted)
    for _ in range(5):  # two operations Connexion serves (the keyed POSTs take the flat path: test_flat.py)
        assert (await http.get("/v1/models")).status_code == 200
        assert (await http.get("/models")).status_code == 200
    # Connexion decorated the handler on every request; each operation now does it on its first only.
    assert len(decorated) == len(set(decorated)) == 2


def test_media_type_lookups_are_remembered_and_bounded() -> None:
    body = VALIDATOR_MAP["body"]
    assert body["application/json"] is JsonBodyValidator
    assert body["application/problem+json"] is JsonBodyValidator
    assert body.get("text/plain") is not JsonBodyValidator
    for number in range(1000):  # a client chooses its media types: memory stays bounded
        body.get(f"application/x-{number}+json")
    assert len(body._found) <= 256
