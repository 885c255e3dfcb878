"""TLS between the REST tier and the proxy, with a CA and a server certificate made here."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from lambdallm.proxy.server import server_credentials
from lambdallm.rest.app import channel_credentials
from lambdallm.settings import ProxySettings, RestSettings, SettingsError
from tests.fakes.stack import AUTHORIZATION, running_proxy, running_rest
from tests.rest.test_query import VALID


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(folder: Path, name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, Path]:
    """A self-signed CA, its certificate written to folder/<name>.pem."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = folder / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate it signed for 127.0.0.1 and localhost with its key, and an unrelated CA."""
    ca_key, ca_cert, ca_path = make_ca(tmp_path, "ca")
    _, _, other_ca = make_ca(tmp_path, "other-ca")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("lambdallm proxy"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return {"ca": ca_path, "other_ca": other_ca, "cert": tmp_path / "tls.crt", "key": tmp_path / "tls.key"}


@pytest.fixture
async def tls_proxy(fake, pki):
    async with running_proxy(fake, tls_cert_file=str(pki["cert"]), tls_key_file=str(pki["key"])) as proxy:
        yield proxy


async def _query_and_ready(url: str) -> tuple[httpx.Response, httpx.Response]:
    async with httpx.AsyncClient(base_url=url, timeout=10, headers=AUTHORIZATION) as client:
        return await client.post("/query", json=VALID), await client.get("/ready")


async def test_the_rest_tier_reaches_a_tls_proxy_trusting_its_ca(tls_proxy, pki):
    async with running_rest(tls_proxy.target, grpc_ca_file=str(pki["ca"])) as url:
        answer, ready = await _query_and_ready(url)

    assert answer.status_code == 200, answer.text
    assert answer.json()["text"] == "echo: Hi there"
    assert ready.status_code == 200


@pytest.mark.parametrize("trust", ["other_ca", None])
async def test_an_untrusted_certificate_or_plaintext_does_not_reach_a_tls_proxy(tls_proxy, pki, trust):
    overrides = {"grpc_ca_file": str(pki[trust])} if trust else {}
    async with running_rest(tls_proxy.target, ready_timeout_s=1, deadline_s=2, **overrides) as url:
        answer, ready = await _query_and_ready(url)

    assert answer.status_code == 503, answer.text
    assert ready.status_code == 503
    assert tls_proxy.fake.requests == []


def test_half_a_tls_setting_or_an_unreadable_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="tls_key_file is not set"):
        server_credentials(ProxySettings(tls_cert_file=str(tmp_path / "tls.crt")))
    with pytest.raises(SettingsError, match="tls_cert_file: cannot read"):
        server_credentials(ProxySettings(tls_cert_file=str(tmp_path / "no"), tls_key_file=str(tmp_path / "no")))
    with pytest.raises(SettingsError, match="grpc_ca_file: cannot read"):
        channel_credentials(RestSettings(grpc_ca_file=str(tmp_path / "no")))
    assert channel_credentials(RestSettings()) is None
    assert channel_credentials(RestSettings(grpc_tls=True)) is not None
