"""The local API Gateway in IAM mode: requests signed by botocore go in; unsigned or badly signed ones get API
Gateway's 403, before the function runs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from lambdallm.local_cloud.server import LocalCloud, running_local_cloud
from lambdallm.local_cloud.sigv4 import SignatureError, SignedRequest, SigV4Verifier
from tests.local_cloud.conftest import settings

BODY = json.dumps({"prompt": "alpha beta gamma", "max_tokens": 2}).encode()


@pytest.fixture(scope="module")
def iam_cloud() -> Iterator[LocalCloud]:
    with running_local_cloud(settings(engine="instant", apigw_auth="iam")) as cloud:
        yield cloud


def signed(
    url: str,
    body: bytes = BODY,
    key: tuple[str, str] = ("local", "local"),
    region: str = "us-east-1",
    service: str = "execute-api",
) -> dict[str, str]:
    """The headers botocore's SigV4 signer gives a JSON POST of `body` to `url`."""
    request = AWSRequest("POST", url, data=body, headers={"Content-Type": "application/json", "X-Request-ID": "s1"})
    SigV4Auth(Credentials(*key), service, region).add_auth(request)
    return dict(request.headers.items())


def post(cloud: LocalCloud, headers: dict[str, str], body: bytes = BODY, path: str = "/query") -> httpx.Response:
    return httpx.post(cloud.apigw_url + path, content=body, headers=headers, timeout=30)


def assert_refused(response: httpx.Response, error_type: str, message: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-amzn-errortype"] == error_type
    assert response.json()["message"].startswith(message)


def test_a_request_signed_by_botocore_goes_through(iam_cloud: LocalCloud) -> None:
    response = post(iam_cloud, signed(iam_cloud.apigw_url + "/query"))

    assert response.status_code == 200, response.text
    assert response.json()["text"] == "alpha beta"


def test_a_signed_stream_request_goes_through(iam_cloud: LocalCloud) -> None:
    url = iam_cloud.apigw_url + "/query/stream"

    response = post(iam_cloud, signed(url), path="/query/stream")

    assert response.status_code == 200, response.text
    assert json.loads(response.text.splitlines()[-1])["type"] == "done"


def test_an_unsigned_request_is_missing_its_authentication_token(iam_cloud: LocalCloud) -> None:
    response = post(iam_cloud, {"Content-Type": "application/json"})

    assert_refused(response, "MissingAuthenticationTokenException", "Missing Authentication Token")


@pytest.mark.parametrize(
    ("change", "error_type", "message"),
    [
        ({"key": ("local", "wrong")}, "InvalidSignatureException", "The request signature we calculated does not"),
        ({"key": ("someone", "local")}, "UnrecognizedClientException", "The security token included in the request"),
        ({"region": "eu-west-1"}, "InvalidSignatureException", "Credential should be scoped to a valid region."),
        ({"service": "lambda"}, "InvalidSignatureException", "Credential should be scoped to correct service"),
        ({"body": BODY.replace(b"alpha", b"omega")}, "InvalidSignatureException", "The request signature we"),
    ],
)
def test_a_badly_signed_request_is_refused_as_api_gateway_does(
    iam_cloud: LocalCloud, change: dict[str, object], error_type: str, message: str
) -> None:
    body = change.pop("body", None)
    headers = signed(iam_cloud.apigw_url + "/query", **change)  # type: ignore[arg-type]

    response = post(iam_cloud, headers, body=body or BODY)  # type: ignore[arg-type]

    assert_refused(response, error_type, message)


def test_a_mismatch_shows_the_canonical_request_it_expected(iam_cloud: LocalCloud) -> None:
    headers = signed(iam_cloud.apigw_url + "/query", key=("local", "wrong"))

    message = post(iam_cloud, headers).json()["message"]

    assert f"POST\n/query\n\ncontent-type:application/json\nhost:127.0.0.1:{iam_cloud.apigw_port}\n" in message
    assert "wrong" not in message and "AWS4-HMAC-SHA256\n" in message


def test_a_header_changed_after_signing_is_refused(iam_cloud: LocalCloud) -> None:
    headers = signed(iam_cloud.apigw_url + "/query") | {"X-Request-ID": "s2"}

    assert_refused(post(iam_cloud, headers), "InvalidSignatureException", "The request signature we calculated")


def test_an_authorization_that_is_not_sigv4_is_incomplete(iam_cloud: LocalCloud) -> None:
    response = post(iam_cloud, {"Authorization": "Bearer something", "Content-Type": "application/json"})

    assert_refused(response, "IncompleteSignatureException", "Authorization header requires")


def test_an_old_or_future_signature_is_refused() -> None:
    url = "http://127.0.0.1:3000/query"
    headers = signed(url)
    request = SignedRequest(
        "POST", "/query", "", {k.lower(): [v] for k, v in headers.items()} | {"host": ["127.0.0.1:3000"]}, BODY
    )
    verifier = SigV4Verifier("local", "local", "us-east-1")
    verifier.verify(request)  # now: fine

    for shift, words in ((timedelta(minutes=6), "Signature expired"), (-timedelta(minutes=6), "not yet current")):
        with pytest.raises(SignatureError, match=words):
            verifier.verify(request, now=datetime.now(UTC) + shift)
