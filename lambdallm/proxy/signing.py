"""SigV4 signing of the proxy's backend requests (IAM authorization of API Gateway), with botocore's signer and
credentials from the standard AWS chain."""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import urlsplit

import botocore.session
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, ReadOnlyCredentials, RefreshableCredentials

from lambdallm.settings import ProxySettings, SettingsError

SERVICE = "execute-api"
DEFAULT_REGION = "us-east-1"  # the local cloud's
# botocore's own: credentials this close to their expiry are not used any more, whatever a refresh does.
MANDATORY_REFRESH_S: int = getattr(RefreshableCredentials, "_mandatory_refresh_timeout", 600)
log = logging.getLogger("lambdallm.proxy")
_EXECUTE_API_HOST = re.compile(r"^[a-z0-9]+\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")


def _log_failure(refresh: asyncio.Future[ReadOnlyCredentials]) -> None:
    # Read here, so that a refresh no request waited for never fails unseen.
    if not refresh.cancelled() and (exc := refresh.exception()) is not None:
        log.warning("AWS credentials refresh failed", extra={"cause": repr(exc)})


def backend_region(settings: ProxySettings) -> str:
    """The region to sign for: `backend_region`, else the one an execute-api URL names, else us-east-1."""
    if settings.backend_region:
        return settings.backend_region
    found = _EXECUTE_API_HOST.match(urlsplit(settings.backend_url).hostname or "")
    return found.group(1) if found else DEFAULT_REGION


class BackendSigner:
    """Signs each backend request for execute-api in one region. Refreshable credentials (a role's, a
    credential_process's) are refreshed in a worker thread, never on the event loop: while the ones in hand are
    still valid, requests go on with them during the refresh; once they are about to expire, requests wait for it
    (one refresh at a time, shared by all)."""

    def __init__(self, credentials: Credentials, region: str) -> None:
        self._credentials, self.region = credentials, region
        self._refresh: asyncio.Future[ReadOnlyCredentials] | None = None

    @classmethod
    def from_settings(cls, settings: ProxySettings) -> BackendSigner | None:
        """The signer `backend_auth = "iam"` asks for (None otherwise); a SettingsError when the standard chain
        (AWS_ACCESS_KEY_ID..., AWS_PROFILE, a container or instance role) has no credentials."""
        if settings.backend_auth != "iam":
            return None
        credentials = botocore.session.get_session().get_credentials()
        if credentials is None:
            raise SettingsError(
                'backend_auth is "iam" but the standard AWS chain has no credentials '
                "(AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role)"
            )
        return cls(credentials, backend_region(settings))

    async def credentials(self) -> ReadOnlyCredentials:
        """Credentials to sign with now, without blocking the event loop on a refresh."""
        credentials = self._credentials
        if not isinstance(credentials, RefreshableCredentials) or not credentials.refresh_needed():
            return credentials.get_frozen_credentials()  # no refresh due: no I/O
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.ensure_future(asyncio.to_thread(credentials.get_frozen_credentials))
            self._refresh.add_done_callback(_log_failure)
        in_hand = getattr(credentials, "_frozen_credentials", None)  # botocore's, as of its last refresh
        if isinstance(in_hand, ReadOnlyCredentials) and not credentials.refresh_needed(MANDATORY_REFRESH_S):
            return in_hand  # still valid for a while: the refresh goes on behind this request
        return await asyncio.shield(self._refresh)

    async def sign(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        """`headers` with X-Amz-Date, Authorization (and X-Amz-Security-Token) for this very request."""
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        SigV4Auth(await self.credentials(), SERVICE, self.region).add_auth(request)
        return dict(request.headers.items())
