from __future__ import annotations

from services.cronofy import sign, verify_hmac

SECRET = "pDY0Oi7TJSP2hfNmZNkm5"
BODY = b'{"example":"well-known"}'
EXPECTED = "6r2/HjBkqymGegX0wOfifieeUXbbHwtV/LohHS+jv6c="


def test_sign_matches_the_documented_vector():
    assert sign(BODY, SECRET) == EXPECTED


def test_verify_accepts_the_documented_vector():
    assert verify_hmac(BODY, EXPECTED, [SECRET])


def test_verify_accepts_any_of_several_header_values_and_secrets():
    header = f"{sign(BODY, 'old-secret')}, {EXPECTED}"
    assert verify_hmac(BODY, header, ["rotated-away", SECRET])


def test_verify_rejects_a_tampered_body():
    assert not verify_hmac(b'{"example":"tampered"}', EXPECTED, [SECRET])


def test_verify_rejects_a_wrong_secret():
    assert not verify_hmac(BODY, EXPECTED, ["someone-else"])


def test_verify_rejects_missing_or_garbage_headers():
    assert not verify_hmac(BODY, None, [SECRET])
    assert not verify_hmac(BODY, "", [SECRET])
    assert not verify_hmac(BODY, " , ,", [SECRET])
    assert not verify_hmac(BODY, "ünïcode-garbage", [SECRET])


def test_verify_with_no_secrets_rejects():
    assert not verify_hmac(BODY, EXPECTED, [])
