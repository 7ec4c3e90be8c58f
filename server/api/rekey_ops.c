/*
 * rekey_ops: the handlers of the rekey family: rekey-init/update/verify/
 * status/cancel (new shares to age recipients, optional backup), the rekey
 * backup's retrieval and deletion, and the cluster half of
 * `unseal --cluster` (the relay to the other members and its answer).
 * The seal (server/core/seal/rekey.c) does the work; shares come back only
 * in age files when the rekey has recipients, and a plaintext share only
 * ever passes through the audit log's HMAC.
 */
#include "api_int.h"

#include "cs_error.h"
#include "ha.h"
#include "log.h"
#include "secmem.h"
#include "shamir.h"
#include "unseal_relay.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- rekey */

size_t cs_sens_rekey_update(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"unseal_key", req->rekey_update->key.data,
                                req->rekey_update->key.len};
  return 1;
}

size_t cs_sens_rekey_verify(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"new_unseal_key", req->rekey_verify->key.data,
                                req->rekey_verify->key.len};
  return 1;
}

static void respond_rekey(cs_rq *r, cs_rekey_status *st) {
  ProtobufCBinaryData keys[CS_SHAMIR_MAX_SHARES];
  cs_audit_sensitive sens[CS_SHAMIR_MAX_SHARES];
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RekeyStatusRes rs = CUSTOS__REKEY_STATUS_RES__INIT;
  rs.started = st->started;
  rs.nonce = st->nonce;
  rs.t = st->t;
  rs.n = st->n;
  rs.progress = st->progress;
  rs.required = st->required;
  rs.verification_required = st->verification_required;
  rs.complete = st->complete;
  rs.verification_nonce = st->verification_nonce;
  rs.verification_progress = st->verification_progress;
  rs.backup = st->backup;
  rs.n_recipients = st->n_recipients;
  rs.recipients = st->recipients;
  size_t ns = 0;
  if (st->keys != NULL) {
    for (unsigned i = 0; i < st->n; i++, ns++) {
      keys[i].data = st->keys + (size_t)i * st->key_len;
      keys[i].len = st->key_len;
      sens[i] = (cs_audit_sensitive){"new_unseal_key", keys[i].data, keys[i].len};
    }
    rs.n_keys = st->n;
    rs.keys = keys;
  }
  /* With recipients only the age files go out: nothing in the clear. */
  rs.n_keys_age = st->n_age;
  rs.keys_age = st->keys_age;
  res.result_case = CUSTOS__RESPONSE__RESULT_REKEY;
  res.rekey = &rs;
  respond(r, 0, &res, sens, ns);
  cs_rekey_status_clear(st);
}

static void on_rekey_done(void *arg, int status, cs_seal_result *res) {
  cs_rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    cs_warn("rekey: %s", cs_error_message(status));
    respond(r, status, NULL, NULL, 0);
    return;
  }
  cs_rekey_status copy = res->rekey;
  memset(&res->rekey, 0, sizeof res->rekey); /* respond_rekey wipes and frees the keys */
  respond_rekey(r, &copy);
}

/*
 * The recipients of a rekey-init as C strings.  They travel as `bytes` so
 * that a NUL inside one is refused here rather than silently cutting it
 * short (protobuf-c keeps it in a char *); a count above the share count
 * is refused before any of them is looked at.  0 or CS_EAGEKEY/CS_EINVAL.
 */
static int take_recipients(const Custos__RekeyInitReq *q, unsigned n, char ***out) {
  *out = NULL;
  if (q->n_recipients == 0)
    return 0;
  if (q->n_recipients != n)
    return cs_error_set(CS_EINVAL, "%zu age recipients for %u key shares: give one per share",
                        q->n_recipients, n);
  char **v = calloc(q->n_recipients, sizeof *v);
  if (v == NULL)
    return CS_ENOMEM;
  for (size_t i = 0; i < q->n_recipients; i++) {
    const ProtobufCBinaryData *b = &q->recipients[i];
    if (b->len == 0 || b->len > 128 || memchr(b->data, 0, b->len) != NULL) {
      for (size_t j = 0; j < i; j++)
        free(v[j]);
      free(v);
      return cs_error_set(CS_EAGEKEY, "recipient %zu is not an age recipient (age1...)", i + 1);
    }
    if ((v[i] = malloc(b->len + 1)) == NULL) {
      for (size_t j = 0; j < i; j++)
        free(v[j]);
      free(v);
      return CS_ENOMEM;
    }
    memcpy(v[i], b->data, b->len);
    v[i][b->len] = '\0';
  }
  *out = v;
  return 0;
}

static int rekey_init(cs_rq *r, cs_rekey_status *st) {
  const Custos__RekeyInitReq *q = r->req->rekey_init;
  unsigned n = q->shares ? q->shares : 5;
  unsigned t = q->threshold ? q->threshold : n == 1 ? 1 : 3;
  char **rv;
  int rc = take_recipients(q, n, &rv);
  if (rc < 0)
    return rc;
  cs_rekey_params p = {.n = n, .t = t, .verify = q->verify, .recipients = rv,
                       .n_recipients = rv ? q->n_recipients : 0, .backup = q->backup};
  rc = cs_seal_rekey_start(r->d->seal, &p, st);
  for (size_t i = 0; rv != NULL && i < q->n_recipients; i++)
    free(rv[i]);
  free(rv);
  return rc;
}

/* The five rekey rows share this handler. */
void cs_op_rekey(cs_rq *r) {
  const Custos__Request *req = r->req;
  cs_seal *seal = r->d->seal;
  cs_rekey_status st = {0};
  int rc = 0;
  switch (req->op_case) {
  case CUSTOS__REQUEST__OP_REKEY_INIT:
    rc = rekey_init(r, &st);
    break;
  case CUSTOS__REQUEST__OP_REKEY_UPDATE:
    rc = cs_seal_rekey_update(seal, req->rekey_update->nonce, req->rekey_update->key.data,
                              req->rekey_update->key.len, &st, on_rekey_done, r);
    break;
  case CUSTOS__REQUEST__OP_REKEY_VERIFY:
    rc = cs_seal_rekey_verify(seal, req->rekey_verify->nonce, req->rekey_verify->key.data,
                              req->rekey_verify->key.len, &st, on_rekey_done, r);
    break;
  case CUSTOS__REQUEST__OP_REKEY_CANCEL:
    rc = cs_seal_rekey_cancel(seal);
    break;
  default:
    cs_seal_rekey_status(seal, &st);
    break;
  }
  if (rc < 0 && park(r, rc)) {
    cs_rekey_status_clear(&st);
  } else if (rc < 0) {
    if (rc != CS_EBADNONCE && rc != CS_ENOOP && rc != CS_EINPROGRESS && rc != CS_EBUSY)
      cs_warn("rekey: %s", cs_error_message(rc));
    cs_rekey_status_clear(&st);
    respond(r, rc, NULL, NULL, 0);
  } else if (rc != CS_SEAL_PENDING) { /* else on_rekey_done answers after the swap */
    respond_rekey(r, &st);
  }
}

/* ---------------------------------------------------------------- backup */

void cs_op_rekey_backup(cs_rq *r) {
  uint8_t *buf;
  size_t len;
  int rc = cs_seal_rekey_backup_read(r->d->seal, &buf, &len);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  Custos__RekeyBackup *b = custos__rekey_backup__unpack(NULL, len, buf);
  free(buf);
  if (b == NULL) {
    respond(r, cs_error_set(CS_ESTORECORRUPT, "the rekey backup does not decode"), NULL, NULL, 0);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  res.result_case = CUSTOS__RESPONSE__RESULT_REKEY_BACKUP;
  res.rekey_backup = b;
  cs_info("rekey backup (nonce %s) retrieved by %s", b->nonce, r->accessor);
  respond(r, 0, &res, NULL, 0);
  custos__rekey_backup__free_unpacked(b, NULL);
}

static void on_backup_deleted(void *arg, int status, cs_seal_result *res) {
  (void)res;
  cs_rq *r = arg;
  if (status < 0) {
    respond(r, status, NULL, NULL, 0);
    return;
  }
  cs_info("rekey backup deleted by %s", r->accessor);
  respond_empty(r);
}

void cs_op_rekey_backup_delete(cs_rq *r) {
  int rc = cs_seal_rekey_backup_delete(r->d->seal, on_backup_deleted, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}

/* ---------------------------------------------------------------- unseal --cluster */

static void on_relayed(void *arg, const cs_relay_result *rr, size_t n) {
  cs_rq *r = arg;
  Custos__UnsealRelayResult items[16], *ptrs[16];
  if (n > 16)
    n = 16;
  for (size_t i = 0; i < n; i++) {
    custos__unseal_relay_result__init(&items[i]);
    items[i].node_id = (char *)rr[i].node_id;
    items[i].delivered = rr[i].delivered;
    items[i].sealed = rr[i].sealed;
    items[i].progress = rr[i].progress;
    items[i].t = rr[i].t;
    items[i].error = (char *)rr[i].error;
    ptrs[i] = &items[i];
  }
  cs_info("unseal share from %s relayed to %zu member(s)", r->client, n);
  cs_op_status_relayed(r, ptrs, n);
}

void cs_unseal_cluster(cs_rq *r) {
  const Custos__UnsealReq *q = r->req->unseal;
  /* Only a share of the current key set is relayed, even by a node that is
   * unsealed (whose unseal did not look at it): an anonymous client cannot
   * make the members handshake for garbage. */
  int rc = cs_seal_verify_share(r->d->seal, q->key.data, q->key.len);
  if (rc == 0)
    rc = cs_error_set(CS_ENOTMEMBER, "share is not part of the current key set (not relayed)");
  if (rc == 1)
    rc = cs_unseal_relay(r->d, q->key.data, q->key.len, on_relayed, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}
