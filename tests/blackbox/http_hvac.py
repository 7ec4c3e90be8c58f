#!/usr/bin/python3
"""The HTTP API driven by Debian's python3-hvac 0.11, as an hvac user would.

Usage: http_hvac.py URL CA_FILE.  Every call below is the documented hvac
API with its defaults; nothing is special-cased for custos.  Exits 0 when
every check passed, 1 with a message otherwise (77 when hvac is missing).
"""
import json
import sys

try:
    import hvac
    from hvac import exceptions as hx
except ImportError:
    print("SKIP: python3-hvac is not installed")
    sys.exit(77)

URL, CA = sys.argv[1], sys.argv[2]


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok - " + what)


def raises(exc, fn, *a, **kw):
    try:
        fn(*a, **kw)
    except exc as e:
        return e
    return None


c = hvac.Client(url=URL, verify=CA)

# Lifecycle: init, seal status, unseal with progress and reset.
check(not c.sys.is_initialized(), "sys.is_initialized() before init")
r = c.sys.initialize(secret_shares=3, secret_threshold=2)
keys, root = r["keys"], r["root_token"]
check(len(keys) == 3 and len(r["keys_base64"]) == 3 and root, "sys.initialize(3, 2)")
check(c.sys.is_initialized(), "sys.is_initialized() after init")
e = raises(hx.InvalidRequest, c.sys.initialize, secret_shares=3, secret_threshold=2)
check(e is not None, "a second sys.initialize raises InvalidRequest (400)")
check(c.sys.is_sealed(), "sys.is_sealed() after init")
st = c.sys.read_seal_status()
check(st["t"] == 2 and st["n"] == 3 and st["progress"] == 0 and st["type"] == "shamir",
      "sys.read_seal_status(): t=2 n=3 progress=0")
st = c.sys.submit_unseal_key(key=keys[0])
check(st["sealed"] and st["progress"] == 1, "submit_unseal_key: progress 1")
# custos's reset names the unseal it discards (its nonce): hvac's bare reset
# is refused with a message saying so, and the adapter sends the nonce.
e = raises(hx.InvalidRequest, c.sys.submit_unseal_key, reset=True)
check(e is not None and "nonce" in e.errors[0], "submit_unseal_key(reset=True) without a nonce: 400")
st = c.adapter.put("/v1/sys/unseal", json={"reset": True, "nonce": st["nonce"]})
check(st["sealed"] and st["progress"] == 0, "unseal reset with the nonce: progress 0")
e = raises(hx.InvalidRequest, c.sys.submit_unseal_key, key="not a key!")
check(e is not None, "a garbage unseal key raises InvalidRequest")
st = c.sys.submit_unseal_keys([r["keys_base64"][1], keys[2]])
check(not st["sealed"], "submit_unseal_keys (base64 + hex): unsealed")
check(not c.sys.is_sealed(), "sys.is_sealed() after unseal")
h = c.sys.read_health_status(method="GET")
check(h["initialized"] and not h["sealed"] and not h["standby"], "sys.read_health_status()")
ldr = c.sys.read_leader_status()
check(ldr["ha_enabled"] is False, "sys.read_leader_status(): standalone")

# Tokens: no token and a wrong one are 403, the root token works.
anon = hvac.Client(url=URL, verify=CA)
check(not anon.is_authenticated(), "is_authenticated() without a token is False")
e = raises(hx.Forbidden, anon.secrets.kv.v1.read_secret, path="app/db")
check(e is not None and e.errors == ["permission denied"], "no token: Forbidden, permission denied")
bad = hvac.Client(url=URL, verify=CA, token="cs.not-a-real-token")
e = raises(hx.Forbidden, bad.secrets.kv.v1.read_secret, path="app/db")
check(e is not None, "a bad token: Forbidden")
c.token = root
check(c.is_authenticated(), "is_authenticated() with the root token")
me = c.auth.token.lookup_self()["data"]
check("root" in me["policies"] and me["accessor"], "auth.token.lookup_self()")

# KV v1 at secret/: create (GET 404 -> POST), update (GET 200 -> PUT), read, list, delete.
kv = c.secrets.kv.v1
kv.create_or_update_secret(path="app/db", secret={"password": "s3cr3t", "user": "app"})
check(kv.read_secret(path="app/db")["data"] == {"password": "s3cr3t", "user": "app"},
      "kv.v1 create (POST) then read_secret")
kv.create_or_update_secret(path="app/db", secret={"password": "n3w"})
check(kv.read_secret(path="app/db")["data"] == {"password": "n3w"}, "kv.v1 update (PUT)")
kv.create_or_update_secret(path="app/sub/x", secret={"a": "b"}, method="PUT")
kv.create_or_update_secret(path="top", secret={"k": "v"}, method="POST")
check(sorted(kv.list_secrets(path="app")["data"]["keys"]) == ["db", "sub/"],
      "kv.v1 list_secrets(app): LIST method")
check("top" in kv.list_secrets(path="")["data"]["keys"], "kv.v1 list_secrets at the mount root")
check(sorted(c.list("secret/app")["data"]["keys"]) == ["db", "sub/"], "legacy client.list (?list=True)")
check(c.read("secret/top")["data"] == {"k": "v"}, "legacy client.read")
check(c.read("secret/nothing") is None, "legacy client.read of a missing path is None")
e = raises(hx.InvalidPath, kv.read_secret, path="app/none")
check(e is not None, "read of a missing secret raises InvalidPath (404)")
e = raises(hx.InvalidPath, kv.list_secrets, path="empty")
check(e is not None, "an empty list raises InvalidPath (404)")
e = raises(hx.InvalidRequest, kv.create_or_update_secret, path="app/n", secret={"n": 1}, method="PUT")
check(e is not None and "string" in e.errors[0], "a non-string value is refused (400)")
kv.delete_secret(path="app/sub/x")
e = raises(hx.InvalidPath, kv.read_secret, path="app/sub/x")
check(e is not None, "kv.v1 delete_secret")

# KV v2 at kv/: every call is hvac's secrets.kv.v2 with mount_point="kv".
kv2 = c.secrets.kv.v2
M = "kv"
w = kv2.create_or_update_secret(path="app/db", secret={"password": "one"}, mount_point=M)
check(w["data"]["version"] == 1 and w["data"]["destroyed"] is False and w["data"]["deletion_time"] == "",
      "kv.v2 create_or_update_secret: version 1")
w = kv2.create_or_update_secret(path="app/db", secret={"password": "two"}, cas=1, mount_point=M)
check(w["data"]["version"] == 2, "kv.v2 create_or_update_secret(cas=1): version 2")
e = raises(hx.InvalidRequest, kv2.create_or_update_secret, path="app/db", secret={"password": "x"},
           cas=1, mount_point=M)
check(e is not None and "check-and-set" in e.errors[0], "kv.v2 stale cas: InvalidRequest (400)")
e = raises(hx.InvalidRequest, kv2.create_or_update_secret, path="app/db", secret={"password": "x"},
           cas=0, mount_point=M)
check(e is not None, "kv.v2 cas=0 on an existing secret: InvalidRequest")
r = kv2.read_secret_version(path="app/db", mount_point=M)
check(r["data"]["data"] == {"password": "two"} and r["data"]["metadata"]["version"] == 2,
      "kv.v2 read_secret_version (current)")
r = kv2.read_secret_version(path="app/db", version=1, mount_point=M)
check(r["data"]["data"] == {"password": "one"}, "kv.v2 read_secret_version(version=1)")
e = raises(hx.InvalidPath, kv2.read_secret_version, path="app/db", version=9, mount_point=M)
check(e is not None, "kv.v2 read of a version never written: InvalidPath (404)")
kv2.create_or_update_secret(path="app/sub/x", secret={"a": "b"}, mount_point=M)
check(sorted(kv2.list_secrets(path="app", mount_point=M)["data"]["keys"]) == ["db", "sub/"],
      "kv.v2 list_secrets")
e = raises(hx.InvalidPath, kv2.list_secrets, path="empty", mount_point=M)
check(e is not None, "kv.v2 list of nothing: InvalidPath")
kv2.delete_latest_version_of_secret(path="app/db", mount_point=M)
e = raises(hx.InvalidPath, kv2.read_secret_version, path="app/db", mount_point=M)
check(e is not None, "kv.v2 delete_latest_version_of_secret: the current version reads 404")
check(kv2.read_secret_version(path="app/db", version=1, mount_point=M)["data"]["data"] == {"password": "one"},
      "kv.v2 older version still readable")
kv2.undelete_secret_versions(path="app/db", versions=[2], mount_point=M)
check(kv2.read_secret_version(path="app/db", mount_point=M)["data"]["data"] == {"password": "two"},
      "kv.v2 undelete_secret_versions([2])")
kv2.delete_secret_versions(path="app/db", versions=[1, 2], mount_point=M)
e = raises(hx.InvalidPath, kv2.read_secret_version, path="app/db", version=1, mount_point=M)
check(e is not None, "kv.v2 delete_secret_versions([1, 2])")
kv2.destroy_secret_versions(path="app/db", versions=[1], mount_point=M)
kv2.undelete_secret_versions(path="app/db", versions=[1, 2], mount_point=M)
e = raises(hx.InvalidPath, kv2.read_secret_version, path="app/db", version=1, mount_point=M)
check(e is not None, "kv.v2 destroy_secret_versions([1]): undelete cannot bring it back")
md = kv2.read_secret_metadata(path="app/db", mount_point=M)["data"]
check(md["current_version"] == 2 and md["oldest_version"] == 1 and md["versions"]["1"]["destroyed"]
      and not md["versions"]["2"]["destroyed"] and md["versions"]["2"]["deletion_time"] == "",
      "kv.v2 read_secret_metadata")
kv2.update_metadata(path="app/db", max_versions=2, cas_required=True, mount_point=M)
md = kv2.read_secret_metadata(path="app/db", mount_point=M)["data"]
check(md["max_versions"] == 2 and md["cas_required"] is True and md["delete_version_after"] == "0s",
      "kv.v2 update_metadata(max_versions=2, cas_required=True)")
e = raises(hx.InvalidRequest, kv2.create_or_update_secret, path="app/db", secret={"p": "3"}, mount_point=M)
check(e is not None and "required" in e.errors[0], "kv.v2 cas_required: a write without cas is refused")
w = kv2.create_or_update_secret(path="app/db", secret={"p": "3"}, cas=2, mount_point=M)
check(w["data"]["version"] == 3, "kv.v2 write with cas when required")
md = kv2.read_secret_metadata(path="app/db", mount_point=M)["data"]
check(md["oldest_version"] == 2 and sorted(md["versions"]) == ["2", "3"], "kv.v2 max_versions=2 prunes")
p = kv2.patch(path="app/db", secret={"q": "4"}, mount_point=M)
check(p["data"]["version"] == 4, "kv.v2 patch (read + write with cas)")
check(kv2.read_secret_version(path="app/db", mount_point=M)["data"]["data"] == {"p": "3", "q": "4"},
      "kv.v2 patch merged the fields")
kv2.configure(max_versions=5, mount_point=M)
cfg = kv2.read_configuration(mount_point=M)["data"]
check(cfg["max_versions"] == 5 and cfg["cas_required"] is False, "kv.v2 configure / read_configuration")
e = raises(hx.InvalidRequest, kv2.create_or_update_secret, path="app/n", secret={"n": 1}, mount_point=M)
check(e is not None and "string" in e.errors[0], "kv.v2 a non-string value is refused (400)")
kv2.delete_metadata_and_all_versions(path="app/db", mount_point=M)
e = raises(hx.InvalidPath, kv2.read_secret_metadata, path="app/db", mount_point=M)
check(e is not None, "kv.v2 delete_metadata_and_all_versions")
w = kv2.create_or_update_secret(path="app/db", secret={"password": "v2"}, mount_point=M)
check(w["data"]["version"] == 1, "kv.v2 a new secret at the path starts at version 1")
mounts = c.sys.list_mounted_secrets_engines()["data"]
check(mounts["kv/"]["options"]["version"] == "2" and mounts["secret/"]["options"]["version"] == "1",
      "sys.list_mounted_secrets_engines: kv/ is version 2, secret/ version 1")

# Policies (hvac 0.11 uses sys/policy) and a child token limited by one.
doc = json.dumps({"rules": [{"path": "app/*", "capabilities": ["read", "list"]}]})
c.sys.create_or_update_policy(name="app-read", policy=doc)
check("app-read" in c.sys.list_policies()["policies"], "sys.list_policies()")
check(json.loads(c.sys.read_policy(name="app-read")["rules"]) == json.loads(doc), "sys.read_policy()")
t = c.auth.token.create(policies=["app-read"], ttl="1h")["auth"]
check(t["client_token"] and t["policies"] == ["app-read"] and 3500 < t["lease_duration"] <= 3600,
      "auth.token.create(policies, ttl=1h)")
child = hvac.Client(url=URL, verify=CA, token=t["client_token"])
check(child.secrets.kv.v1.read_secret(path="app/db")["data"]["password"] == "n3w", "child token reads app/db")
e = raises(hx.Forbidden, child.secrets.kv.v1.create_or_update_secret, path="app/db",
           secret={"x": "y"}, method="PUT")
check(e is not None, "child token may not write: Forbidden")
e = raises(hx.Forbidden, child.secrets.kv.v1.read_secret, path="top")
check(e is not None, "child token may not read outside app/")
look = c.auth.token.lookup(token=t["client_token"])["data"]
check(look["accessor"] == t["accessor"] and look["policies"] == ["app-read"], "auth.token.lookup(token)")
ren = child.auth.token.renew_self(increment="2h")["auth"]
check(ren["lease_duration"] > 3600, "auth.token.renew_self(increment=2h)")
child.auth.token.revoke_self()
e = raises(hx.Forbidden, child.secrets.kv.v1.read_secret, path="app/db")
check(e is not None, "auth.token.revoke_self(): the token is gone")
t2 = c.auth.token.create(policies=["app-read"], ttl=600)["auth"]["client_token"]
c.auth.token.revoke(token=t2)
check(not hvac.Client(url=URL, verify=CA, token=t2).is_authenticated(), "auth.token.revoke(token)")
e = raises(hx.InvalidRequest, c.auth.token.create, policies=["app-read"], num_uses=3)
check(e is not None, "auth.token.create(num_uses=3) is refused, not ignored")
c.sys.delete_policy(name="app-read")
check("app-read" not in c.sys.list_policies()["policies"], "sys.delete_policy()")

# Key rotation and its status.
before = c.sys.get_encryption_key_status()
c.sys.rotate_encryption_key()
after = c.sys.get_encryption_key_status()
check(after["term"] == before["term"] + 1, "sys.rotate_encryption_key(): term %d -> %d"
      % (before["term"], after["term"]))
check(kv.read_secret(path="app/db")["data"] == {"password": "n3w"}, "data readable after rotation")
check(kv2.read_secret_version(path="app/db", mount_point="kv")["data"]["data"] == {"password": "v2"},
      "kv.v2 data readable after rotation")

# Rekey with verification: the old shares start and complete it, the new
# ones verify it; afterwards only the new shares unseal.
r = c.sys.start_rekey(secret_shares=3, secret_threshold=2, require_verification=True)
check(r["started"] and r["nonce"] and r["verification_required"], "sys.start_rekey(require_verification)")
check(c.sys.read_rekey_progress()["nonce"] == r["nonce"], "sys.read_rekey_progress()")
r = c.sys.rekey_multi(keys[:2], nonce=r["nonce"])
check(r.get("complete") and len(r["keys"]) == 3 and r["verification_nonce"], "sys.rekey_multi: new shares out")
new_keys, vnonce = r["keys"], r["verification_nonce"]
check(c.sys.read_rekey_verify_progress()["nonce"] == vnonce, "sys.read_rekey_verify_progress()")
v = c.sys.rekey_verify_multi(new_keys[1:], nonce=vnonce)
check(v.get("complete"), "sys.rekey_verify_multi: verified")
c.sys.seal()
e = raises(hx.InvalidRequest, c.sys.submit_unseal_keys, keys[:2])
check(e is not None, "the old shares no longer unseal")
st = c.sys.read_seal_status()
if st["progress"]:
    c.adapter.put("/v1/sys/unseal", json={"reset": True, "nonce": st["nonce"]})
check(not c.sys.submit_unseal_keys(new_keys[:2])["sealed"], "the new shares unseal")
keys = new_keys

# Seal: everything but status is 503 now.
c.sys.seal()
check(c.sys.is_sealed(), "sys.seal()")
e = raises(hx.VaultDown, kv.read_secret, path="app/db")
check(e is not None and e.errors == ["Vault is sealed"], "sealed: VaultDown (503)")
st = c.sys.submit_unseal_keys(keys[:2])
check(not st["sealed"], "unsealed again")
check(kv.read_secret(path="app/db")["data"] == {"password": "n3w"}, "data survives seal/unseal")
check(kv2.read_secret_version(path="app/db", mount_point="kv")["data"]["data"] == {"password": "v2"},
      "kv.v2 data survives seal/unseal")
print("all hvac checks passed")
