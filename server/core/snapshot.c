/* snapshot: store payload and snapshot files.  See snapshot.h. */
#include "bytes.h"
#include "snapshot.h"
#include "termcount.h"
#include "barrier.h"
#include "cs_error.h"
#include "secmem.h"
#include "shamir.h"

#include <assert.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define P_SEAL_CONFIG "core/seal-config"
#define P_UNSEAL_ROOT "core/unseal/root-key"
#define P_KEYRING "core/keyring"
#define MAC_INFO "custos snapshot mac v1"

/* ---------------------------------------------------------------- payload */

static int collect_put(void *arg, const char *key, size_t key_len, const uint8_t *val,
                       size_t val_len) {
  (void)key_len;
  return cs_batch_put(arg, key, val, val_len);
}

int cs_snapshot_payload_view(cs_store_view *view, uint8_t **out, size_t *len, size_t *entries,
                             cs_batch *batch) {
  cs_batch b;
  cs_batch_init(&b);
  int rc = cs_store_view_scan(view, "", collect_put, &b);
  if (rc == 0)
    rc = cs_batch_encode(&b, out, len);
  if (rc == 0 && entries != NULL)
    *entries = b.n;
  if (rc == 0 && batch != NULL) {
    *batch = b;
    return 0;
  }
  cs_batch_clear(&b);
  return rc;
}

int cs_snapshot_payload(cs_store *store, uint8_t **out, size_t *len, size_t *entries,
                        cs_batch *batch) {
  cs_store_view *v;
  int rc = cs_store_view_begin(store, &v); /* one read transaction: a point in time */
  if (rc < 0)
    return rc;
  rc = cs_snapshot_payload_view(v, out, len, entries, batch);
  cs_store_view_end(v);
  return rc;
}

const cs_batch_op *cs_snapshot_find(const cs_batch *b, const char *key) {
  for (size_t i = 0; i < b->n; i++)
    if (!b->ops[i].del && !b->ops[i].check && strcmp(b->ops[i].key, key) == 0)
      return &b->ops[i];
  return NULL;
}

/* ---------------------------------------------------------------- helpers */

/* HMAC-SHA256 under HKDF(root key): the installation's snapshot MAC. */
static int snapshot_mac(const uint8_t root_key[CS_KEY_LEN], const uint8_t *body, size_t len,
                        uint8_t out[32]) {
  uint8_t k[32];
  const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  int rc = mbedtls_hkdf(md, NULL, 0, root_key, CS_KEY_LEN, (const uint8_t *)MAC_INFO,
                        sizeof MAC_INFO - 1, k, sizeof k);
  if (rc == 0)
    cs_hmac_sha256(k, sizeof k, body, len, out);
  cs_wipe(k, sizeof k);
  return rc == 0 ? 0 : cs_error_set(CS_ECRYPTO, "snapshot: key derivation failed");
}

/* Decrypts core/keyring of a snapshot batch with the root key. */
static int open_keyring(const cs_batch *b, const uint8_t root_key[CS_KEY_LEN], cs_keyring **kr) {
  const cs_batch_op *op = cs_snapshot_find(b, P_KEYRING);
  if (op == NULL)
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot has no keyring (core/keyring)");
  uint8_t *pt;
  size_t len;
  int rc = cs_barrier_open_with(root_key, P_KEYRING, op->val, op->val_len, &pt, &len);
  if (rc < 0)
    return rc;
  rc = cs_keyring_decode(pt, len, kr);
  cs_wipe(pt, len);
  free(pt);
  return rc;
}

/* ---------------------------------------------------------------- build */

static int fill_header(Custos__SnapshotHeader *h, const cs_batch *b, const cs_keyring *kr,
                       Custos__SnapshotTermInfo **terms_out) {
  const cs_batch_op *sc_op = cs_snapshot_find(b, P_SEAL_CONFIG);
  if (sc_op == NULL)
    return cs_error_set(CS_ENOTINIT, "nothing to snapshot: the server is not initialized");
  Custos__SealConfig *sc = custos__seal_config__unpack(NULL, sc_op->val_len, sc_op->val);
  if (sc == NULL)
    return cs_error_set(CS_ESTORECORRUPT, "core/seal-config is corrupt");
  h->shares = sc->shares;
  h->threshold = sc->threshold;
  custos__seal_config__free_unpacked(sc, NULL);
  size_t n = cs_keyring_count(kr);
  Custos__SnapshotTermInfo *t = calloc(n ? n : 1, sizeof *t);
  Custos__SnapshotTermInfo **tp = calloc(n ? n : 1, sizeof *tp);
  if (t == NULL || tp == NULL) {
    free(t);
    free(tp);
    return CS_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    cs_term_info ti;
    cs_keyring_info(kr, i, &ti);
    custos__snapshot_term_info__init(&t[i]);
    t[i].term = ti.term;
    t[i].install_time = ti.install_time;
    t[i].state = (Custos__TermState)ti.state;
    t[i].activation_time = ti.activation_time;
    t[i].retirement_time = ti.retirement_time;
    tp[i] = &t[i];
  }
  h->n_terms = n;
  h->terms = tp;
  h->active_term = cs_keyring_active(kr);
  *terms_out = t;
  return 0;
}

int cs_snapshot_build(cs_store *store, const uint8_t root_key[CS_KEY_LEN],
                      const cs_snapshot_info *info, uint8_t **out, size_t *len) {
  assert(store && root_key && info && out && len);
  *out = NULL;
  *len = 0;
  cs_batch b;
  uint8_t *payload = NULL, *file = NULL;
  size_t plen = 0, entries = 0;
  cs_keyring *kr = NULL;
  Custos__SnapshotTermInfo *terms = NULL;
  Custos__SnapshotHeader h = CUSTOS__SNAPSHOT_HEADER__INIT;
  uint8_t digest[32];
  int rc = cs_snapshot_payload(store, &payload, &plen, &entries, &b);
  if (rc < 0)
    return rc;
  if (cs_snapshot_find(&b, P_SEAL_CONFIG) == NULL) {
    rc = cs_error_set(CS_ENOTINIT, "nothing to snapshot: the server is not initialized");
    goto out;
  }
  if ((rc = open_keyring(&b, root_key, &kr)) < 0) {
    if (rc == CS_EAUTH)
      rc = cs_error_set(CS_ESTORECORRUPT, "snapshot: the root key does not open core/keyring");
    goto out;
  }
  if ((rc = fill_header(&h, &b, kr, &terms)) < 0)
    goto out;
  cs_sha256(payload, plen, digest);
  h.format_version = CS_SNAPSHOT_VERSION;
  h.created = cs_now();
  h.server_version = (char *)(info->server_version ? info->server_version : "");
  h.node_id = (char *)(info->node_id ? info->node_id : "");
  h.raft_index = info->raft_index;
  h.raft_term = info->raft_term;
  h.entries = entries;
  h.payload_len = plen;
  h.payload_sha256.data = digest;
  h.payload_sha256.len = sizeof digest;
  size_t hlen = custos__snapshot_header__get_packed_size(&h);
  if (hlen > CS_SNAPSHOT_HEADER_MAX) {
    rc = cs_error_set(CS_ETOOBIG, "snapshot header of %zu bytes is too large", hlen);
    goto out;
  }
  size_t body = CS_SNAPSHOT_PREFIX + hlen + plen;
  if ((file = malloc(body + CS_SNAPSHOT_TRAILER)) == NULL) {
    rc = cs_error_set(CS_ENOMEM, "out of memory for a %zu-byte snapshot", body);
    goto out;
  }
  memcpy(file, CS_SNAPSHOT_MAGIC, 8);
  cs_put_be32(file + 8, CS_SNAPSHOT_VERSION);
  cs_put_be32(file + 12, (uint32_t)hlen);
  custos__snapshot_header__pack(&h, file + CS_SNAPSHOT_PREFIX);
  if (plen)
    memcpy(file + CS_SNAPSHOT_PREFIX + hlen, payload, plen);
  cs_sha256(file, body, file + body);
  if ((rc = snapshot_mac(root_key, file, body, file + body + 32)) < 0)
    goto out;
  *out = file;
  *len = body + CS_SNAPSHOT_TRAILER;
  file = NULL;
out:
  free(file);
  free(payload);
  free(terms);
  free(h.terms);
  cs_keyring_free(kr);
  cs_batch_clear(&b);
  return rc;
}

/* ---------------------------------------------------------------- parse */

int cs_snapshot_parse(const uint8_t *buf, size_t len, cs_snapshot *out) {
  assert(out && (buf || len == 0));
  memset(out, 0, sizeof *out);
  if (len < 8 || memcmp(buf, CS_SNAPSHOT_MAGIC, 8) != 0)
    return cs_error_set(CS_ESNAPCORRUPT, "not a custos snapshot (bad magic)");
  if (len < CS_SNAPSHOT_PREFIX + CS_SNAPSHOT_TRAILER)
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot is truncated (%zu bytes)", len);
  uint32_t version = cs_get_be32(buf + 8), hlen = cs_get_be32(buf + 12);
  if (version != CS_SNAPSHOT_VERSION)
    return cs_error_set(CS_ESNAPVERSION, "snapshot format version %u is not supported (this "
                        "build reads version %u)", version, CS_SNAPSHOT_VERSION);
  size_t body = len - CS_SNAPSHOT_TRAILER;
  if (hlen > CS_SNAPSHOT_HEADER_MAX || hlen > body - CS_SNAPSHOT_PREFIX)
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot is truncated (header of %u bytes in a "
                        "%zu-byte file)", hlen, len);
  uint8_t digest[32];
  cs_sha256(buf, body, digest);
  /* A checksum, not a secret: but compare as for one anyway. */
  if (!cs_ct_equal(digest, buf + body, 32))
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot checksum mismatch: the file is corrupt or "
                        "truncated");
  Custos__SnapshotHeader *h =
      custos__snapshot_header__unpack(NULL, hlen, buf + CS_SNAPSHOT_PREFIX);
  if (h == NULL)
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot header is malformed");
  size_t plen = body - CS_SNAPSHOT_PREFIX - hlen;
  int rc = 0;
  if (h->format_version != CS_SNAPSHOT_VERSION)
    rc = cs_error_set(CS_ESNAPVERSION, "snapshot header version %u is not supported",
                      h->format_version);
  else if (h->payload_len != plen)
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot payload is %zu bytes, the header says %llu",
                      plen, (unsigned long long)h->payload_len);
  else if (h->payload_sha256.len != 32)
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot header has no payload checksum");
  if (rc == 0) {
    cs_sha256(buf + CS_SNAPSHOT_PREFIX + hlen, plen, digest);
    if (!cs_ct_equal(digest, h->payload_sha256.data, 32))
      rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot payload checksum mismatch");
  }
  if (rc < 0) {
    custos__snapshot_header__free_unpacked(h, NULL);
    return rc;
  }
  out->hdr = h;
  out->payload = buf + CS_SNAPSHOT_PREFIX + hlen;
  out->payload_len = plen;
  out->body = buf;
  out->body_len = body;
  out->mac = buf + body + 32;
  return 0;
}

void cs_snapshot_free(cs_snapshot *s) {
  if (s->hdr != NULL)
    custos__snapshot_header__free_unpacked(s->hdr, NULL);
  memset(s, 0, sizeof *s);
}

int cs_snapshot_check_mac(const cs_snapshot *s, const uint8_t root_key[CS_KEY_LEN]) {
  uint8_t mac[32];
  int rc = snapshot_mac(root_key, s->body, s->body_len, mac);
  if (rc == 0 && !cs_ct_equal(mac, s->mac, 32))
    rc = cs_error_set(CS_ESNAPAUTH, "snapshot authentication failed: it was not made by this "
                      "installation (or under this root key), or it was altered");
  cs_wipe(mac, sizeof mac);
  return rc;
}

static int cmp_key(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* *dup = 1 when two ops of b name the same key (keys hold no NUL:
 * cs_batch_decode).  0 or CS_ENOMEM. */
static int has_duplicate_key(const cs_batch *b, int *dup) {
  *dup = 0;
  if (b->n < 2)
    return 0;
  char **keys = malloc(b->n * sizeof *keys);
  if (keys == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory checking a snapshot of %zu entries", b->n);
  for (size_t i = 0; i < b->n; i++)
    keys[i] = b->ops[i].key;
  qsort(keys, b->n, sizeof *keys, cmp_key);
  for (size_t i = 1; i < b->n && !*dup; i++)
    *dup = strcmp(keys[i - 1], keys[i]) == 0;
  free(keys);
  return 0;
}

int cs_snapshot_batch(const cs_snapshot *s, cs_batch *b) {
  int rc = cs_batch_decode(s->payload, s->payload_len, b);
  if (rc < 0)
    return cs_error_set(CS_ESNAPCORRUPT, "snapshot payload: %s", cs_error_message(rc));
  for (size_t i = 0; i < b->n; i++)
    if (b->ops[i].del || b->ops[i].if_exists || b->ops[i].create || b->ops[i].check ||
        b->ops[i].if_digest) {
      cs_batch_clear(b);
      return cs_error_set(CS_ESNAPCORRUPT, "snapshot payload holds a delete or a conditional put");
    }
  /* The checks before a restore (cs_snapshot_find) read the first op of a
   * key, the store keeps the last: a key named twice would let a lying file
   * pass them with one key set and install another.  A real snapshot is
   * one scan: every key once. */
  int dup = 0;
  if ((rc = has_duplicate_key(b, &dup)) < 0 || dup) {
    cs_batch_clear(b);
    return rc < 0 ? rc : cs_error_set(CS_ESNAPCORRUPT, "snapshot payload names a key twice");
  }
  b->clear = 1;
  return 0;
}

/* ---------------------------------------------------------------- verify */

/* 1 when HMAC(salt, share) is one of the seal config's share MACs. */
static int share_member(const Custos__SealConfig *sc, const uint8_t *share, size_t len) {
  uint8_t mac[32];
  int found = 0;
  cs_hmac_sha256(sc->share_salt.data, sc->share_salt.len, share, len, mac);
  for (size_t i = 0; i < sc->n_share_macs; i++)
    found |= sc->share_macs[i].len == 32 && cs_ct_equal(sc->share_macs[i].data, mac, 32);
  cs_wipe(mac, sizeof mac);
  return found;
}

static int check_shares(const Custos__SealConfig *sc, const uint8_t *const *shares, size_t n,
                        size_t share_len) {
  size_t want = sc->shares == 1 ? CS_KEY_LEN : CS_KEY_LEN + 1;
  if (n < sc->threshold)
    return cs_error_set(CS_EBADSHARE, "the snapshot needs %u shares, got %zu", sc->threshold, n);
  if (share_len != want)
    return cs_error_set(CS_EBADSHARE, "key share must be %zu bytes, got %zu", want, share_len);
  for (size_t i = 0; i < n; i++)
    if (!share_member(sc, shares[i], share_len))
      return cs_error_set(CS_ENOTMEMBER, "share %zu is not part of the snapshot's key set", i + 1);
  return 0;
}

int cs_snapshot_verify(const cs_snapshot *s, const uint8_t *const *shares, size_t n,
                       size_t share_len, size_t *terms) {
  cs_batch b;
  uint8_t kek[CS_KEY_LEN], root[CS_KEY_LEN];
  uint8_t *pt = NULL;
  size_t pt_len = 0;
  cs_keyring *kr = NULL;
  Custos__SealConfig *sc = NULL;
  int rc = cs_snapshot_batch(s, &b);
  if (rc < 0)
    return rc;
  const cs_batch_op *sc_op = cs_snapshot_find(&b, P_SEAL_CONFIG);
  const cs_batch_op *ur_op = cs_snapshot_find(&b, P_UNSEAL_ROOT);
  if (sc_op == NULL || ur_op == NULL ||
      (sc = custos__seal_config__unpack(NULL, sc_op->val_len, sc_op->val)) == NULL ||
      sc->shares < 1 || sc->threshold < 1 || sc->threshold > sc->shares) {
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot has no valid key set (core/seal-config)");
    goto out;
  }
  if ((rc = check_shares(sc, shares, n, share_len)) < 0)
    goto out;
  if (sc->shares == 1)
    memcpy(kek, shares[0], CS_KEY_LEN);
  else if ((rc = cs_shamir_combine(shares, n, share_len, kek)) < 0)
    goto out;
  rc = cs_barrier_open_with(kek, P_UNSEAL_ROOT, ur_op->val, ur_op->val_len, &pt, &pt_len);
  if (rc == CS_EAUTH)
    rc = cs_error_set(CS_EKEYMISMATCH, "the shares do not open the snapshot's root key");
  if (rc < 0)
    goto out;
  if (pt_len != CS_KEY_LEN) {
    rc = cs_error_set(CS_ESNAPCORRUPT, "snapshot root key has the wrong length");
    goto out;
  }
  memcpy(root, pt, CS_KEY_LEN);
  if ((rc = cs_snapshot_check_mac(s, root)) < 0)
    goto out;
  if ((rc = open_keyring(&b, root, &kr)) < 0) {
    if (rc == CS_EAUTH)
      rc = cs_error_set(CS_ESNAPCORRUPT, "the root key does not open the snapshot's keyring");
    goto out;
  }
  *terms = cs_keyring_count(kr);
out:
  cs_wipe(kek, sizeof kek);
  cs_wipe(root, sizeof root);
  if (pt != NULL) {
    cs_wipe(pt, pt_len);
    free(pt);
  }
  if (sc != NULL)
    custos__seal_config__free_unpacked(sc, NULL);
  cs_keyring_free(kr);
  cs_batch_clear(&b);
  return rc;
}

/* ---------------------------------------------------------------- retired terms */

/* Values per term among the puts of b (the rule of termcount.h). */
static int count_batch(const cs_batch *b, cs_termcounts *c) {
  cs_termcounts_init(c);
  for (size_t i = 0; i < b->n; i++) {
    const cs_batch_op *op = &b->ops[i];
    uint32_t term;
    if (op->del || !cs_termcount_classify(op->key, strlen(op->key), op->val, op->val_len, &term))
      continue;
    int rc = cs_termcounts_inc(c, term);
    if (rc < 0) {
      cs_termcounts_free(c);
      return rc;
    }
  }
  return 0;
}

int cs_snapshot_guard_retired(cs_batch *b, const uint8_t root_key[CS_KEY_LEN],
                              const cs_keyring *live, int allow_revive, size_t *kept,
                              size_t *revived) {
  assert(b && root_key && live && kept && revived);
  *kept = *revived = 0;
  cs_keyring *kr = NULL;
  cs_termcounts tc;
  uint32_t terms[64];
  int rc = open_keyring(b, root_key, &kr);
  if (rc < 0)
    return rc;
  size_t n = cs_keyring_revived(live, kr, terms, sizeof terms / sizeof terms[0]);
  if (n == 0) {
    cs_keyring_free(kr);
    return 0;
  }
  if ((rc = count_batch(b, &tc)) < 0) {
    cs_keyring_free(kr);
    return rc;
  }
  size_t shown = n < sizeof terms / sizeof terms[0] ? n : sizeof terms / sizeof terms[0];
  uint64_t in_use = 0;
  char list[256] = "";
  size_t used = 0;
  int keep_all = 1;
  for (size_t i = 0; i < shown; i++) {
    uint64_t v = cs_termcounts_get(&tc, terms[i]);
    cs_term_info ti;
    int snap_active = cs_keyring_term_info(kr, terms[i], &ti) == 0 && ti.state != CS_TERM_DECRYPT_ONLY;
    if (v || snap_active || n > shown)
      keep_all = 0;
    in_use += v;
    if (used < sizeof list - 16)
      used += (size_t)snprintf(list + used, sizeof list - used, "%s%u", i ? ", " : "", terms[i]);
  }
  if (keep_all) {
    /* No value of the snapshot needs those keys: restore it with the terms
     * still retired (as the live keyring has them, dates included). */
    for (size_t i = 0; i < n && rc == 0; i++) {
      cs_term_info ti;
      if ((rc = cs_keyring_term_info(live, terms[i], &ti)) == 0)
        rc = cs_keyring_transition(kr, terms[i], CS_TERM_RETIRED, ti.retirement_time);
    }
    uint8_t *pt = NULL, *ct = NULL;
    size_t len = 0, ct_len = 0;
    if (rc == 0)
      rc = cs_keyring_encode(kr, &pt, &len);
    if (rc == 0) {
      rc = cs_barrier_seal_with(root_key, 0, P_KEYRING, pt, len, &ct, &ct_len);
      cs_wipe(pt, len);
      free(pt);
    }
    for (size_t i = 0; rc == 0 && i < b->n; i++) {
      cs_batch_op *op = &b->ops[i];
      if (op->del || strcmp(op->key, P_KEYRING) != 0)
        continue;
      cs_wipe(op->val, op->val_len);
      free(op->val);
      op->val = ct;
      op->val_len = ct_len;
      ct = NULL;
    }
    free(ct);
    if (rc == 0)
      *kept = n;
  } else if (allow_revive) {
    *revived = n;
  } else {
    rc = cs_error_set(CS_ETERMSTATE,
                      "the snapshot holds the key(s) of term(s) %s%s, retired here since, and "
                      "%llu stored value(s) under them: restoring it would bring retired keys "
                      "back; nothing was changed. Restore with --force to bring them back anyway "
                      "(then rewrap and retire them again)",
                      list, n > shown ? ", ..." : "", (unsigned long long)in_use);
  }
  cs_termcounts_free(&tc);
  cs_keyring_free(kr);
  return rc;
}

int cs_snapshot_marker_read(cs_store *store, uint64_t *id, int *forced) {
  uint8_t *v;
  size_t len;
  *id = 0;
  *forced = 0;
  int rc = cs_store_get(store, CS_SNAPSHOT_MARKER, &v, &len);
  if (rc == CS_ENOTFOUND)
    return 0;
  if (rc < 0)
    return rc;
  if (len == 9) {
    for (int i = 0; i < 8; i++)
      *id = *id << 8 | v[i];
    *forced = v[8] != 0;
  }
  free(v);
  return 0;
}
