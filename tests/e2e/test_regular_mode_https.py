"""Regular mode over HTTPS, as docs/https.md tells a partner to set it up: trust mitmproxy's CA."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from proxy.partner_flows import resale_offer
from proxy.processes import tmproxy
from proxy.sandbox.client import EVENT_ID
from proxy.sandbox.server import running_sandbox


def self_signed_context(folder: Path) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1, standing in for Ticketmaster's certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "upstream.pem", folder / "upstream.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context


def test_https_client_trusting_the_mitmproxy_ca_gets_sessions_injected(tmp_path: Path):
    confdir = tmp_path / "mitmproxy"
    with (
        running_sandbox(seed=21, ssl_context=self_signed_context(tmp_path)) as sandbox,
        tmproxy(
            "run", "--mode", "regular", "--sid", "inject", "--listen", "127.0.0.1:0",
            "--confdir", str(confdir), "--ssl-insecure",
        ) as proxy,
    ):  # fmt: skip
        assert sandbox.url.startswith("https://")
        client = requests.Session()
        client.trust_env = False
        client.proxies = {"https": proxy.url}
        client.verify = str(confdir / "mitmproxy-ca-cert.pem")
        picks = client.get(
            f"{sandbox.url}/top-picks/v1/events/{EVENT_ID}", params={"apikey": "k"}, timeout=30
        )
        assert picks.status_code == 200
        ticket = resale_offer(picks)["ticketId"]
        reserved = client.post(
            f"{sandbox.url}/partners/v1/events/{EVENT_ID}/cart",
            params={"apikey": "k"},
            json={"reserve": {"tickets": [{"id": ticket, "quantity": 1}]}},
            timeout=30,
        )
        assert reserved.status_code == 200
        sent = next(r for r in sandbox.requests() if r["method"] == "POST")
        assert sent["headers"].get("X-TM-SESSION-SID") == picks.json()["fanSession"]["resaleSid"]["sessionId"]
