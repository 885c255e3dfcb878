"""The proxy's SigV4 signer: the region it signs for, and a clear stop when the AWS chain has no credentials."""

from __future__ import annotations

import pytest

from lambdallm.proxy.signing import BackendSigner, backend_region
from lambdallm.settings import ProxySettings, SettingsError


@pytest.mark.parametrize(
    ("url", "region", "expected"),
    [
        ("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", "", "eu-west-3"),
        ("https://abc123.execute-api.eu-west-3.amazonaws.com/prod", "us-west-2", "us-west-2"),
        ("http://127.0.0.1:3000", "", "us-east-1"),
    ],
)
def test_the_region_is_the_setting_else_the_urls_else_the_local_clouds(url: str, region: str, expected: str) -> None:
    assert backend_region(ProxySettings(backend_url=url, backend_region=region)) == expected


def test_iam_without_credentials_stops_the_proxy_naming_the_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")

    with pytest.raises(SettingsError, match=r"no credentials.*AWS_ACCESS_KEY_ID"):
        BackendSigner.from_settings(ProxySettings(backend_auth="iam"))
    assert BackendSigner.from_settings(ProxySettings()) is None
