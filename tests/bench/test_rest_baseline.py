"""The bench's baseline REST tier (lambdallm/bench/rest_baseline.py) leaves out exactly issue 18's edge: the
Admission middleware and the bounded HTTP protocol; keys, metrics and the request context stay."""

from __future__ import annotations

import functools

from lambdallm.http_protocol import ProblemHttpProtocol
from lambdallm.metrics import Measured
from lambdallm.rest.app import create_app, uvicorn_server
from lambdallm.rest.edge import Admission, Edge
from lambdallm.rest.flat import FlatPath, Junction, SharedLimits
from lambdallm.rest.limits import KeyLimits
from lambdallm.rest.middleware import RequestContext
from lambdallm.settings import RestSettings

SETTINGS = RestSettings(port=0, api_keys="k" * 32, grpc_token="t" * 32)


def ours(app: object) -> set[type]:
    """The classes of our middleware in the app's stack, and of the limits chain both ways in share (its layers
    each lead to the next by `app`, down to the flat path's Junction)."""
    layers = [layer for layer in app.middleware.middlewares if isinstance(layer, functools.partial)]  # type: ignore[attr-defined]
    classes = {layer.func for layer in layers}
    chain = next(layer.keywords["limits"] for layer in layers if layer.func is SharedLimits)
    while not isinstance(chain, Junction):
        classes.add(type(chain))
        chain = chain.app
    return classes


def test_the_baseline_app_lacks_only_admission() -> None:
    shipped, baseline = ours(create_app(SETTINGS)), ours(create_app(SETTINGS, admission=False))
    assert shipped - baseline == {Admission}
    assert baseline > {RequestContext, Measured, Edge, KeyLimits, FlatPath}  # and every other layer of the shipped tier


def test_the_baseline_server_takes_uvicorn_s_stock_protocol() -> None:
    assert issubclass(uvicorn_server(SETTINGS, create_app(SETTINGS)).config.http, ProblemHttpProtocol)  # type: ignore[arg-type]
    assert uvicorn_server(SETTINGS, create_app(SETTINGS), http="httptools").config.http == "httptools"
