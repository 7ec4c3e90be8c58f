/*
 * ceremony_ops: the handlers of the key holders' operations that need no
 * token: verify-share and generate-root (init, update, status, cancel).
 * The seal (server/core/seal/genroot.c) does the work; these turn requests
 * into its calls, rate-limit verify-share per client address, log every
 * attempt with the client's address, and answer.
 *
 * What reaches the audit log: the share of a verify-share or a
 * generate-root update and the OTP of an init are HMACed in the request
 * record (sensitive_of); the encoded token in the completing response is
 * HMACed in the response record.  The token itself never exists here.
 */
#include "api_int.h"

#include "cs_error.h"
#include "crypto.h"
#include "log.h"
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- verify-share */

/* One limiter for the process; its rate follows the config (a reload). */
#define VERIFY_SLOTS 1024
static cs_ratelimit *verify_rl;
static unsigned verify_rate;

size_t cs_sens_verify_share(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"unseal_key", req->verify_share->key.data,
                                req->verify_share->key.len};
  return 1;
}

static int verify_allowed(cs_rq *r) {
  unsigned rate = r->d->cfg->verify_share_per_minute ? r->d->cfg->verify_share_per_minute : 10;
  int rc;
  if (verify_rl == NULL && (rc = cs_ratelimit_new(&verify_rl, rate, VERIFY_SLOTS)) < 0)
    return rc;
  if (rate != verify_rate) {
    cs_ratelimit_set_rate(verify_rl, rate);
    verify_rate = rate;
  }
  return cs_ratelimit_take(verify_rl, r->client, uv_now(r->d->loop));
}

void cs_op_verify_share(cs_rq *r) {
  const Custos__VerifyShareReq *q = r->req->verify_share;
  int rc = verify_allowed(r);
  if (rc == CS_ERATELIMIT)
    cs_warn("verify-share from %s refused: %s", r->client, cs_error_message(rc));
  if (rc == 0)
    rc = cs_seal_verify_share(r->d->seal, q->key.data, q->key.len);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  if (rc == 1)
    cs_info("verify-share from %s: the share is part of the current key set", r->client);
  else
    cs_warn("verify-share from %s: the share is NOT part of the current key set", r->client);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__VerifyShareRes vr = CUSTOS__VERIFY_SHARE_RES__INIT;
  vr.valid = rc == 1;
  res.result_case = CUSTOS__RESPONSE__RESULT_VERIFY_SHARE;
  res.verify_share = &vr;
  respond(r, 0, &res, NULL, 0);
}

/* ---------------------------------------------------------------- generate-root */

size_t cs_sens_genroot_init(const Custos__Request *req, cs_audit_sensitive *s) {
  const char *otp = req->generate_root_init->otp ? req->generate_root_init->otp : "";
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"otp", (const uint8_t *)otp, strlen(otp)};
  return 1;
}

size_t cs_sens_genroot_update(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"unseal_key", req->generate_root_update->key.data,
                                req->generate_root_update->key.len};
  return 1;
}

/* Answers with the attempt's status; the OTP and the encoded token it
 * carries are HMACed in the response record.  Wipes and clears st. */
static void respond_genroot(cs_rq *r, cs_genroot_status *st) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__GenerateRootStatusRes gr = CUSTOS__GENERATE_ROOT_STATUS_RES__INIT;
  gr.started = st->started;
  gr.nonce = st->nonce;
  gr.progress = st->progress;
  gr.required = st->required;
  gr.complete = st->complete;
  gr.encoded_token = st->encoded_token ? st->encoded_token : "";
  gr.encoded_token_age = st->encoded_token_age ? st->encoded_token_age : "";
  gr.otp = st->otp;
  gr.otp_length = st->otp_length;
  gr.recipient = st->recipient;
  gr.expires = st->expires;
  cs_audit_sensitive sens[3];
  size_t ns = 0;
  if (st->otp[0] != '\0')
    sens[ns++] = (cs_audit_sensitive){"otp", (const uint8_t *)st->otp, strlen(st->otp)};
  if (st->encoded_token != NULL)
    sens[ns++] = (cs_audit_sensitive){"encoded_token", (const uint8_t *)st->encoded_token,
                                      strlen(st->encoded_token)};
  if (st->encoded_token_age != NULL)
    sens[ns++] = (cs_audit_sensitive){"encoded_token_age",
                                      (const uint8_t *)st->encoded_token_age,
                                      strlen(st->encoded_token_age)};
  res.result_case = CUSTOS__RESPONSE__RESULT_GENERATE_ROOT;
  res.generate_root = &gr;
  respond(r, 0, &res, sens, ns);
  cs_genroot_status_clear(st);
}

static void on_genroot_done(void *arg, int status, cs_seal_result *res) {
  cs_rq *r = arg;
  cs_error_clear();
  if (status < 0) {
    cs_warn("generate-root: writing the new root token failed (%s); start a new attempt",
            cs_error_message(status));
    respond(r, status, NULL, NULL, 0);
    return;
  }
  cs_genroot_status st = res->genroot;
  memset(&res->genroot, 0, sizeof res->genroot); /* respond_genroot wipes and frees */
  cs_warn("generate-root attempt %s completed by %s: a new root token was written", st.nonce,
          r->client);
  respond_genroot(r, &st);
}

/* Not initialized is said as such (the core only knows "not unsealed"). */
static int check_initialized(cs_rq *r) {
  cs_seal_status ss;
  cs_seal_get_status(r->d->seal, &ss);
  return ss.initialized ? 0 : cs_error_set(CS_ENOTINIT, "server is not initialized");
}

void cs_op_generate_root(cs_rq *r) {
  const Custos__Request *req = r->req;
  cs_seal *seal = r->d->seal;
  cs_genroot_status st = {0};
  int64_t now = cs_now();
  int rc = check_initialized(r);
  switch (rc < 0 ? 0 : req->op_case) {
  case CUSTOS__REQUEST__OP_GENERATE_ROOT_INIT: {
    const Custos__GenerateRootInitReq *q = req->generate_root_init;
    rc = cs_seal_genroot_init(seal, q->otp, q->generate_otp, q->recipient,
                              r->d->cfg->generate_root_timeout, now, &st);
    if (rc == 0)
      cs_warn("generate-root attempt %s started by %s", st.nonce, r->client);
    else
      cs_warn("generate-root init from %s refused: %s", r->client, cs_error_message(rc));
    break;
  }
  case CUSTOS__REQUEST__OP_GENERATE_ROOT_UPDATE: {
    const Custos__GenerateRootUpdateReq *q = req->generate_root_update;
    rc = cs_seal_genroot_update(seal, q->nonce, q->key.data, q->key.len, now, &st,
                                on_genroot_done, r);
    if (rc == 0)
      cs_info("generate-root share from %s accepted (%u of %u)", r->client, st.progress,
              st.required);
    else if (rc < 0 && rc != CS_EBUSY)
      cs_warn("generate-root share from %s refused: %s", r->client, cs_error_message(rc));
    break;
  }
  case CUSTOS__REQUEST__OP_GENERATE_ROOT_CANCEL:
    rc = cs_seal_genroot_cancel(seal, req->generate_root_cancel->nonce, now);
    if (rc == 0)
      cs_warn("generate-root attempt cancelled by %s", r->client);
    else
      cs_warn("generate-root cancel from %s refused: %s", r->client, cs_error_message(rc));
    if (rc == 0) {
      respond_empty(r);
      return;
    }
    break;
  case CUSTOS__REQUEST__OP_GENERATE_ROOT_STATUS:
    cs_seal_genroot_status(seal, now, &st);
    break;
  default:
    break;
  }
  if (rc < 0 && park(r, rc)) {
    cs_genroot_status_clear(&st);
  } else if (rc < 0) {
    cs_genroot_status_clear(&st);
    respond(r, rc, NULL, NULL, 0);
  } else if (rc != CS_SEAL_PENDING) { /* else on_genroot_done answers */
    respond_genroot(r, &st);
  }
}
