"""AWS Signature Version 4, checked as API Gateway checks IAM-authorized methods, written from the SigV4
specification (not botocore's signer, which the tests use as the oracle)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "execute-api"
# How far a request's X-Amz-Date may be from the gateway's clock, either way.
MAX_SKEW = timedelta(minutes=5)
_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access "
    "Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this "
    "request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{string_to_sign}'\n"
)


class SignatureError(Exception):
    """API Gateway's refusal of a request it could not authenticate: a 403 with its error type and message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type, self.message = error_type, message


@dataclass(frozen=True)
class SignedRequest:
    """What the signature covers: method, path and query as sent (still percent-encoded), headers, body."""

    method: str
    raw_path: str
    raw_query: str
    headers: Mapping[str, Sequence[str]]  # lower-case names, every value sent
    body: bytes


@dataclass(frozen=True)
class SigV4Verifier:
    """Accepts requests signed for `service` in `region` with the one key pair it knows."""

    access_key_id: str
    secret_access_key: str
    region: str
    service: str = SERVICE

    def verify(self, request: SignedRequest, now: datetime | None = None) -> None:
        """Return if the request is signed with our key pair; raise SignatureError with API Gateway's words."""
        authorization = _one(request.headers, "authorization")
        if authorization is None:
            raise SignatureError("MissingAuthenticationTokenException", "Missing Authentication Token")
        algorithm, _, rest = authorization.strip().partition(" ")
        parts = dict(part.strip().partition("=")[::2] for part in rest.split(",") if "=" in part)
        amz_date = _one(request.headers, "x-amz-date")
        if algorithm != ALGORITHM:
            raise SignatureError("IncompleteSignatureException", f"Authorization header requires '{ALGORITHM}'.")
        missing = [f"Authorization header requires '{name}' parameter." for name in _PARTS if not parts.get(name)]
        if amz_date is None:
            missing.append("Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.")
        if missing or amz_date is None:
            raise SignatureError("IncompleteSignatureException", " ".join(missing))
        key_id, date, region, service, terminal = (parts["Credential"].split("/") + [""] * 5)[:5]
        signed = parts["SignedHeaders"].split(";")
        self._check_scope(key_id, date, region, service, terminal, amz_date, signed, now or datetime.now(UTC))
        canonical = canonical_request(request, signed)
        scope = f"{date}/{region}/{service}/aws4_request"
        string_to_sign = "\n".join((ALGORITHM, amz_date, scope, _sha256(canonical.encode())))
        expected = hmac.new(
            signing_key(self.secret_access_key, date, region, service), string_to_sign.encode(), "sha256"
        )
        if not hmac.compare_digest(expected.hexdigest(), parts["Signature"]):
            raise SignatureError(
                "InvalidSignatureException", _MISMATCH.format(canonical=canonical, string_to_sign=string_to_sign)
            )

    def _check_scope(
        self,
        key_id: str,
        date: str,
        region: str,
        service: str,
        terminal: str,
        amz_date: str,
        signed: list[str],
        now: datetime,
    ) -> None:
        if terminal != "aws4_request" or not date:
            raise SignatureError("IncompleteSignatureException", "Credential should be scoped with a valid terminator.")
        if not hmac.compare_digest(key_id.encode(), self.access_key_id.encode()):
            raise SignatureError(
                "UnrecognizedClientException", "The security token included in the request is invalid."
            )
        if service != self.service:
            raise SignatureError(
                "InvalidSignatureException", f"Credential should be scoped to correct service: '{self.service}'."
            )
        if region != self.region:
            raise SignatureError("InvalidSignatureException", "Credential should be scoped to a valid region.")
        if "host" not in signed:
            raise SignatureError(
                "InvalidSignatureException", "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization."
            )
        try:
            when = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise SignatureError(
                "IncompleteSignatureException", "X-Amz-Date must be in ISO-8601 basic format."
            ) from None
        if not amz_date.startswith(date):
            raise SignatureError(
                "InvalidSignatureException",
                f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: "
                f"'{date}' != '{amz_date[:8]}', from '{amz_date}'.",
            )
        stamp = "%Y%m%dT%H%M%SZ"
        if when < now - MAX_SKEW:
            raise SignatureError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is now earlier than {(now - MAX_SKEW).strftime(stamp)} "
                f"({now.strftime(stamp)} - 5 min.)",
            )
        if when > now + MAX_SKEW:
            raise SignatureError(
                "InvalidSignatureException",
                f"Signature not yet current: {amz_date} is still later than {(now + MAX_SKEW).strftime(stamp)} "
                f"({now.strftime(stamp)} + 5 min.)",
            )


_PARTS = ("Credential", "Signature", "SignedHeaders")


def canonical_request(request: SignedRequest, signed: list[str]) -> str:
    """SigV4's canonical request over the `signed` headers. As for every service but S3, the path is encoded once
    more as it was sent, and the payload is hashed whole."""
    pairs = sorted(part.partition("=")[::2] for part in request.raw_query.split("&") if part)
    headers = "".join(
        f"{name}:{','.join(' '.join(value.split()) for value in request.headers.get(name, ()))}\n" for name in signed
    )
    return "\n".join(
        (
            request.method.upper(),
            quote(request.raw_path or "/", safe="/~"),
            "&".join(f"{key}={value}" for key, value in pairs),
            headers,
            ";".join(signed),
            _sha256(request.body),
        )
    )


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """SigV4's derived key: the secret, HMAC'd with the date, region, service and terminator in turn."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), "sha256").digest()
    return key


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _one(headers: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[-1] if values else None
