import pytest

from config.signing import SignatureError, sign, verify

SECRET = "whsec_test"
BODY = b'{"event_id": "evt_1"}'
NOW = 1_800_000_000


def test_a_fresh_signature_verifies():
    verify(sign(BODY, SECRET, NOW), BODY, SECRET, now=NOW)


@pytest.mark.parametrize("skew", [301, -301])
def test_a_timestamp_301_seconds_away_is_refused(skew):
    header = sign(BODY, SECRET, NOW - skew)
    with pytest.raises(SignatureError) as caught:
        verify(header, BODY, SECRET, now=NOW)
    assert caught.value.code == "stale_signature"


@pytest.mark.parametrize("skew", [300, -300])
def test_the_tolerance_is_inclusive(skew):
    verify(sign(BODY, SECRET, NOW - skew), BODY, SECRET, now=NOW)


@pytest.mark.parametrize(
    "header, code",
    [
        (None, "missing_signature"),
        ("", "missing_signature"),
        ("garbage", "invalid_signature_header"),
        ("t=abc,v1=00", "invalid_signature_header"),
        (f"t={NOW}", "invalid_signature_header"),
        (f"t={NOW},v1=" + "0" * 64, "invalid_signature"),
    ],
)
def test_malformed_or_wrong_headers_are_refused(header, code):
    with pytest.raises(SignatureError) as caught:
        verify(header, BODY, SECRET, now=NOW)
    assert caught.value.code == code


def test_a_changed_body_or_secret_is_refused():
    header = sign(BODY, SECRET, NOW)
    with pytest.raises(SignatureError):
        verify(header, BODY + b" ", SECRET, now=NOW)
    with pytest.raises(SignatureError):
        verify(header, BODY, "other-secret", now=NOW)


def test_an_unconfigured_secret_is_refused():
    with pytest.raises(SignatureError) as caught:
        verify(sign(BODY, "x", NOW), BODY, "", now=NOW)
    assert caught.value.code == "webhook_not_configured"
