"""API keys, quota, OAuth, and the error shape for everything that goes wrong."""

import pytest

from proxy.sandbox.client import API_KEY, EVENT_ID, SandboxClient
from proxy.sandbox.errors import INTERNAL_ERROR, METHOD_NOT_ALLOWED, TICKETING_SYSTEM_DOWN, UNKNOWN_ENDPOINT
from proxy.sandbox.quota import DEFAULT_QUOTA
from proxy.sandbox.testing import assert_error

QUOTA_HEADERS = ("Ratelimit-Quota-Allowed", "Ratelimit-Quota-Available", "Ratelimit-Expiry")


def test_an_api_key_is_required(sandbox):
    response = SandboxClient(sandbox.url, api_key=None).top_picks()
    assert response.status_code == 401
    assert response.json()["fault"]["detail"]["errorcode"] == "steps.oauth.v2.FailedToResolveAPIKey"


def test_the_key_may_come_as_a_parameter_or_a_header(sandbox, tm):
    assert tm.top_picks().status_code == 200
    by_header = SandboxClient(sandbox.url, api_key=None).request(
        "GET", f"/top-picks/v1/events/{EVENT_ID}", headers={"x-api-key": API_KEY}
    )
    assert by_header.status_code == 200


def test_every_answer_carries_the_quota_headers(sandbox, tm):
    before_ms = round(sandbox.now() * 1000)
    first, second = tm.top_picks(), tm.top_picks("0000000000000000")

    assert first.headers["Ratelimit-Quota-Allowed"] == str(DEFAULT_QUOTA)
    assert first.headers["Ratelimit-Quota-Available"] == str(DEFAULT_QUOTA - 1)
    assert second.headers["Ratelimit-Quota-Available"] == str(DEFAULT_QUOTA - 2)
    expiry = int(first.headers["Ratelimit-Expiry"])
    assert before_ms + 59_000 <= expiry <= before_ms + 61_000


def test_over_the_quota_is_a_429_fault_until_the_window_resets(sandbox, tm):
    sandbox.set_quota(2)
    assert [tm.top_picks().status_code for _ in range(2)] == [200, 200]
    assert tm.request("GET", "/_sandbox/state").status_code == 200  # controls never count

    refused = tm.top_picks()

    assert refused.status_code == 429
    assert refused.json() == {
        "fault": {
            "faultstring": f"Rate limit quota violation. Quota limit exceeded. Identifier : {API_KEY}",
            "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
        }
    }
    assert [refused.headers[h] for h in QUOTA_HEADERS[:2]] == ["2", "0"]
    assert int(refused.headers["Ratelimit-Expiry"]) > round(sandbox.now() * 1000)
    assert SandboxClient(sandbox.url, api_key="another-key").top_picks().status_code == 200
    sandbox.advance_clock(60)
    assert tm.top_picks().status_code == 200


def test_the_quota_control_over_http(sandbox, tm):
    assert tm.request("POST", "/_sandbox/quota", json={"limit": 0}).status_code == 200
    assert tm.top_picks().status_code == 429


def test_the_oauth_token_endpoint(tm):
    form = {"grant_type": "refresh_token", "client_id": "id", "client_secret": "s3cret", "refresh_token": "r"}
    response = tm.request("POST", "/oauth/token", data=form)
    assert response.status_code == 200
    body = response.json()
    assert (body["expires_in"], body["token_type"]) == (3600, "bearer")
    assert body["access_token"] and body["refresh_token"]
    del form["client_secret"]
    assert_error(tm.request("POST", "/oauth/token", data=form), 400)


def test_unknown_paths_are_404s(tm):
    assert_error(tm.request("GET", "/nowhere"), 404, UNKNOWN_ENDPOINT)
    assert_error(tm.request("GET", "/partners/v1/events/X/cart/nowhere"), 404, UNKNOWN_ENDPOINT)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", f"/top-picks/v1/events/{EVENT_ID}"),
        ("DELETE", f"/partners/v1/events/{EVENT_ID}/cart/shipping"),
        ("GET", f"/partners/v1/events/{EVENT_ID}/cart/payment"),
        ("GET", "/_sandbox/reset"),
    ],
)
def test_wrong_methods_are_405s(tm, method, path):
    response = tm.request(method, path)
    assert_error(response, 405, METHOD_NOT_ALLOWED)
    assert response.headers["Allow"]


def test_an_unexpected_exception_is_a_500_without_a_traceback(sandbox, tm):
    sandbox.fail_next()
    response = tm.top_picks()
    error = assert_error(response, 500, INTERNAL_ERROR)
    assert "injected" not in error["message"]
    assert tm.top_picks().status_code == 200


def test_an_injected_outage_answers_the_ticketing_system_down_error(tm):
    assert tm.request("POST", "/_sandbox/fail", json={"count": 2, "status": 503}).status_code == 200
    for _ in range(2):
        assert_error(tm.top_picks(), 503, TICKETING_SYSTEM_DOWN)
    assert tm.top_picks().status_code == 200
