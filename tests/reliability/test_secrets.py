"""The canary: known secrets in every place they travel, recorded by a real `tmproxy record`, then searched
for in every file the run wrote (cassette folder, mitmproxy's confdir, temp files, an audit report) and in
what it printed. Zero hits, in any encoding a file could hold them in."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import vcr
from reliability.harness import Reply, scripted_upstream, send

from proxy.cassette import load_cassette
from proxy.processes import recording

SECRETS = {
    "apikey": "canary-apikey-Q7mZ2xT9vLp4",
    "x_api_key": "canary-xapikey-W3nB8cR1kJ6",
    "client_secret": "canary-client-secret-R8kd02LmQ/+=",
    "oauth_code": "canary-auth-code-5Hq81Zz&x=1",
    "access_token": "canary-access-token-Yt6Pq0Ls9Df2",
    "refreshed_token": "canary-access-token-2-Mn4Bv7Cx1Z",
    "refresh_token": "canary-refresh-token-Kj3Hg5Fd8S",
    "id_token": "canary.id-token.Uy7Tr4Ee1Ww",
    "password": 'canary pass wörd "quoted" 9!',
    "cookie": "canary-cookie-Zx8Cv6Bn4Mq",
    "set_cookie": "canary-set-cookie-Lk2Jh9Gf5Ds",
    "basic": "partner:canary-basic-Pw0Oi9Uy8",
    "card_number": "4111111111111111",
    "card_cin": "canary+cin/AbCdEfGh0123456789==",
    "encryption_key": "canary-paysys-key.0.us.999",
}
TM = "/partners/v1/events/E1"


def forms(value: str) -> set[bytes]:
    """Every way a file could hold the value: raw, URL-encoded, JSON-escaped, base64."""
    texts = {value, quote(value), quote(value, safe=""), quote_plus(value), json.dumps(value)[1:-1]}
    texts |= {t.lower() for t in texts if "%" in t}
    raw = {t.encode() for t in texts} | {json.dumps(value, ensure_ascii=False)[1:-1].encode()}
    raw.add(base64.b64encode(value.encode()))
    return {r for r in raw if len(r) >= 8}


def hits(data: bytes) -> list[str]:
    return [name for name, value in SECRETS.items() if any(f in data for f in forms(value))]


def json_reply(value: object, status: int = 200, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(value).encode(), (("Content-Type", "application/json"), *headers))


def traffic(s: dict[str, str]) -> list[tuple[str, str, list[tuple[str, str]], bytes | None, Reply]]:
    """(method, path, headers, body, upstream reply): the partner's calls carrying each secret somewhere."""
    bearer = [("Authorization", f"Bearer {s['access_token']}")]
    form = [("Content-Type", "application/x-www-form-urlencoded")]
    as_json = [("Content-Type", "application/json")]
    token_grant = urlencode(
        {
            "grant_type": "authorization_code",
            "client_id": "partner",
            "client_secret": s["client_secret"],
            "code": s["oauth_code"],
            "redirect_uri": "https://partner.example/cb",
        }
    ).encode()
    issued = {
        "access_token": s["access_token"],
        "refresh_token": s["refresh_token"],
        "id_token": s["id_token"],
        "token_type": "Bearer",
        "expires_in": 3600,
    }
    card = {"number": s["card_number"], "cin": s["card_cin"], "encryption_key": s["encryption_key"]}
    payment = {"cart_id": "c1", "payment": {"type": "CC", "card": card, "password": s["password"]}}
    return [
        (
            "POST",
            "/oauth/token?case=grant",
            form,
            token_grant,
            json_reply(issued, headers=(("Set-Cookie", f"tmid={s['set_cookie']}; Path=/; HttpOnly"),)),
        ),
        (
            "POST",
            "/oauth/token?case=refresh",
            as_json,
            json.dumps(
                {
                    "grant_type": "refresh_token",
                    "refresh_token": s["refresh_token"],
                    "client_secret": s["client_secret"],
                }
            ).encode(),
            json_reply({"accessToken": s["refreshed_token"], "expires_in": 3600}),
        ),
        (
            "GET",
            f"/top-picks/v1/events/E1?apikey={quote_plus(s['apikey'])}&access_token={s['access_token']}&case=picks",
            [
                *bearer,
                ("x-api-key", s["x_api_key"]),
                ("Cookie", f"session={s['cookie']}; tmid={s['set_cookie']}; theme=dark"),
            ],
            None,
            json_reply({"echo": f"you are {s['apikey']}", "next": f"https://x/?apikey={quote(s['apikey'])}"}),
        ),
        (
            "GET",
            f"/top-picks/v1/events/E1?apikey={s['apikey']}&case=quota",
            [("Proxy-Authorization", "Basic " + base64.b64encode(s["basic"].encode()).decode())],
            None,
            json_reply(
                {
                    "fault": {
                        "faultstring": f"Rate limit quota violation. Identifier : {s['apikey']}",
                        "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
                    }
                },
                status=429,
                headers=(("X-Echo-Token", s["refreshed_token"]),),
            ),
        ),
        (
            "PUT",
            f"{TM}/cart/payment?apikey={s['apikey']}&case=payment",
            [("Authorization", f"Bearer {s['refreshed_token']}"), *as_json],
            json.dumps(payment).encode(),
            json_reply({"received": json.dumps(payment), "card": {"number": s["card_number"][-4:]}}),
        ),
        (
            "POST",
            f"/oauth/token?case=password-form&apikey={s['apikey']}",
            form,
            urlencode({"grant_type": "password", "username": "fan", "password": s["password"]}).encode(),
            Reply(400, f"invalid password {s['password']} for token {s['access_token']}".encode(), ()),
        ),
    ]


def test_no_secret_reaches_any_file_or_log(tmp_path: Path):
    assert all(hits(value.encode()) for value in SECRETS.values())  # the search itself finds them
    cassettes, confdir, tmpdir, home = (tmp_path / d for d in ("cassettes", "confdir", "tmp", "home"))
    for folder in (cassettes, confdir, tmpdir, home):
        folder.mkdir()
    cassette = cassettes / "secrets.yaml"
    env = {"TMPDIR": str(tmpdir), "HOME": str(home)}
    with scripted_upstream() as upstream:
        calls = traffic(SECRETS)
        with recording(
            cassette,
            upstream.url,
            "--confdir",
            str(confdir),
            env=env,
        ) as proxy:
            for method, path, headers, body, reply in calls:
                upstream.replies[path.split("case=")[1].split("&")[0]] = reply
                answer = send(proxy.url, method, path, headers, body)
                assert (answer.status, answer.body) == (reply.status, reply.body), path
            assert proxy.stop() == 0
        assert len(upstream.seen) == len(calls)
        assert hits(b"".join(s.body + json.dumps(s.headers).encode() for s in upstream.seen))

    report = tmp_path / "audit.json"
    audited = subprocess.run(
        [sys.executable, "-m", "proxy.cli", "audit", str(cassette), "--format", "json", "-o", str(report)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    assert audited.returncode in (0, 1), audited.stderr
    assert json.loads(report.read_text())["summary"]["by_rule"].get("secret-in-recording", 0) == 0

    loaded = load_cassette(cassette)
    assert len(loaded.exchanges) == len(calls)
    assert "unencrypted-card" in {f.rule for f in loaded.findings}  # the finding is kept, the number is not
    with vcr.use_cassette(str(cassette), record_mode="none") as played:
        assert len(played.data) == len(calls)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert cassette in written and report in written
    assert any(p.parent == confdir for p in written), "mitmproxy wrote its CA where it was told"
    assert not (home / ".mitmproxy").exists()
    leaks = {str(p.relative_to(tmp_path)): found for p in written if (found := hits(p.read_bytes()))}
    assert leaks == {}
    printed = (proxy.stdout + proxy.stderr_text + audited.stdout + audited.stderr).encode()
    assert hits(printed) == []
