"""Connexion's operations, each decorated once.

Connexion 3.3 wraps an operation's handler anew on every request: a new decorator object, its parameter decorator
reading the handler's signature with inspect, the sync/async and response wrappers, and a URI parser built from
the operation's parameters; about a twentieth of the REST tier's CPU per request (issue 28). None of it depends on
the request: the wrappers read the request and the operation from Connexion's context when they are called. Here
each operation builds them on its first request and keeps them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.decorators import StarletteDecorator


class OnceDecorator(StarletteDecorator):  # type: ignore[misc]
    """Connexion's decorator of one operation's handler, keeping what it builds for the handler and its URI parser."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._decorated: dict[Callable[..., Any], Callable[..., Any]] = {}
        self._uri_parser: Any = None

    @property
    def uri_parser(self) -> Any:
        if self._uri_parser is None:  # from the operation in Connexion's context: always this decorator's one
            self._uri_parser = super().uri_parser
        return self._uri_parser

    def decorate(self, function: Callable[..., Any]) -> Callable[..., Any]:
        decorated = self._decorated.get(function)
        if decorated is None:
            decorated = self._decorated[function] = super().decorate(function)
        return decorated


class OnceOperation(AsyncOperation):  # type: ignore[misc]
    """An operation whose decorated handler is built once (Connexion builds it in a property read per request)."""

    @functools.cached_property
    def fn(self) -> Callable[..., Any]:
        decorator = OnceDecorator(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)
        return decorator(self._fn)  # type: ignore[no-any-return]


class OnceApi(AsyncApi):  # type: ignore[misc]
    """Connexion's API of async operations, made of OnceOperations."""

    def make_operation(self, operation: Any) -> OnceOperation:
        return OnceOperation.from_operation(operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)  # type: ignore[no-any-return]
