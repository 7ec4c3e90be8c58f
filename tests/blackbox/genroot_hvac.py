"""generate-root over the HTTP API with a real Vault client (hvac 0.11):
start (server-made OTP, and the client's own OTP), progress without the
nonce, updates, the encoded token decoded and used, a cancel that must name
the attempt, PGP refused.  argv: URL CA_FILE KEY1 KEY2 KEY3."""
import base64
import sys

import hvac

url, ca, keys = sys.argv[1], sys.argv[2], sys.argv[3:6]
c = hvac.Client(url=url, verify=ca)


def decode(enc, otp):
    raw = base64.urlsafe_b64decode(enc + "=" * (-len(enc) % 4))
    assert len(raw) == len(otp) == 46, (len(raw), len(otp))
    return bytes(a ^ b for a, b in zip(raw, otp.encode())).decode()


def expect(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    raise AssertionError("%s did not raise %s" % (fn.__name__, exc.__name__))


p = c.sys.read_root_generation_progress()
assert p["started"] is False, p

# Server-made OTP (neither otp nor pgp_key): returned once, at the start.
s = c.sys.start_root_token_generation()
nonce, otp = s["nonce"], s["otp"]
assert s["started"] and len(otp) == 46 and s["otp_length"] == 46 and s["required"] == 3, s
p = c.sys.read_root_generation_progress()
assert p["started"] and p["nonce"] == "" and p["otp"] == "" and p["progress"] == 0, p
e = expect(hvac.exceptions.InvalidRequest, c.sys.start_root_token_generation)
assert "already in progress" in str(e), e
e = expect(hvac.exceptions.InvalidRequest, c.sys.generate_root, key=keys[0], nonce="x" + nonce[1:])
assert "nonce does not match" in str(e), e
r = c.sys.generate_root(key=keys[0], nonce=nonce)
assert r["progress"] == 1 and not r["complete"], r
r = c.sys.generate_root(key=base64.b64encode(bytes.fromhex(keys[1])).decode(), nonce=nonce)
assert r["progress"] == 2, r
r = c.sys.generate_root(key=keys[2], nonce=nonce)
assert r["complete"] and r["encoded_token"] and r["encoded_root_token"] == r["encoded_token"], r
tok = decode(r["encoded_token"], otp)
assert tok.startswith("cs."), tok
n = hvac.Client(url=url, verify=ca, token=tok)
assert n.is_authenticated()
assert n.lookup_token()["data"]["policies"] == ["root"]
print("ok - hvac: server-made OTP, updates (hex and base64 shares), token decoded and root")

# The client's own OTP; hvac's cancel sends no nonce: refused, the attempt
# stays; a DELETE with the nonce ends it.
mine = "A" * 20 + "b" * 26
s = c.sys.start_root_token_generation(otp=mine)
assert s["otp"] == "" and s["nonce"], s
e = expect(hvac.exceptions.InvalidRequest, c.sys.cancel_root_generation)
assert "no nonce given" in str(e), e
assert c.sys.read_root_generation_progress()["started"]
resp = c.adapter.delete("/v1/sys/generate-root/attempt", json={"nonce": s["nonce"]})
assert resp.status_code == 204, resp
assert not c.sys.read_root_generation_progress()["started"]
s = c.sys.start_root_token_generation(otp=mine)
resp = c.adapter.delete("/v1/sys/generate-root/attempt?nonce=" + s["nonce"])
assert resp.status_code == 204, resp
e = expect(hvac.exceptions.InvalidRequest, c.sys.start_root_token_generation, otp="short")
assert "46 characters" in str(e), e
e = expect(hvac.exceptions.InvalidRequest, c.sys.start_root_token_generation, pgp_key="mQENBF")
assert "PGP keys are not supported" in str(e), e
assert not c.sys.read_root_generation_progress()["started"]
print("ok - hvac: client OTP; cancel needs the nonce (body or ?nonce=); bad OTP and PGP refused")
