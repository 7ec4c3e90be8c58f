/*
 * token_race: a small pipelining test client for test_token.sh.
 *
 *   token_race ADDR CA_FILE ROOT_TOKEN TRIALS RENEWS
 *
 * Each trial creates a renewable token T (ttl 1h) with the root token, then
 * writes, without waiting for any answer, RENEWS self-renews of T, one
 * revoke of T (by root), and RENEWS more self-renews of T, on one
 * connection, so that the server dispatches the renews that follow the
 * revoke while the revoke's delete is still queued for commit.  Once every
 * answer is in, it looks T up with the root token: a token that is still
 * there after its revoke was acknowledged is a survivor.
 *
 * Prints "survivors: S of N" and how the renews behind each revoke were
 * answered; exits 0 when no token survived and none of those renews was
 * answered as done, 1 otherwise, 2 on a usage or transport failure.  The CLI cannot pipeline,
 * hence this client (built from client/lib, like the CLI).
 *
 *   token_race --empty-revoke ADDR CA_FILE TOKEN
 *
 * sends a token_revoke with neither a token nor the self flag (the CLI
 * refuses to): exits 0 when the server accepts it, or prints
 * "Error: <message>" and exits 1.
 *
 *   token_race --renew ADDR CA_FILE TOKEN INCREMENT
 *   token_race --reset ADDR CA_FILE NONCE
 *
 * send one self-renew with any uint64 increment (the CLI's parser stops
 * below 2^64-1), or one unseal reset with the given nonce ("-" for none),
 * and print the wire outcome: "OK expire_time=<n>" / "OK progress=<n>", or
 * the ErrorCode name and message ("BAD_REQUEST: ..."); exit 0 either way,
 * 2 on a transport failure.
 */
#include "custos_client.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(cs_client *c, const char *what, int rc) {
  fprintf(stderr, "token_race: %s: %s\n", what, c ? cs_client_errmsg(c) : cs_error_message(rc));
  return 2;
}

/* Creates a renewable 1h token with the connection's (root) token. */
static int create_token(cs_client *c, char *out, size_t cap) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenCreateReq op = CUSTOS__TOKEN_CREATE_REQ__INIT;
  char *pol[] = {"default"};
  op.policies = pol;
  op.n_policies = 1;
  op.ttl_seconds = 3600;
  op.renewable = 1;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_CREATE;
  req.token_create = &op;
  Custos__Response *res;
  int rc = cs_client_call(c, &req, &res);
  if (rc < 0)
    return rc;
  snprintf(out, cap, "%s", res->token->token);
  cs_wire_response_free(res);
  return 0;
}

/* Renews pipelined behind the revoke: answered "renewed", or refused by
 * the check at commit time ("it was revoked"), or refused at lookup. */
static unsigned long after_ok, after_commit, after_lookup;

/* One trial.  Returns 1 if T survived its revoke, 0 if not, < 0 on error. */
static int trial(cs_client *c, unsigned renews) {
  char tok[128];
  int rc = create_token(c, tok, sizeof tok);
  if (rc < 0)
    return rc;
  ProtobufCBinaryData t = {strlen(tok), (uint8_t *)tok};
  Custos__TokenRenewReq renew = CUSTOS__TOKEN_RENEW_REQ__INIT;      /* self */
  Custos__TokenRevokeReq revoke = CUSTOS__TOKEN_REVOKE_REQ__INIT;   /* T, by root */
  revoke.token = t;
  unsigned sent = 0;
  for (unsigned i = 0; i < 2 * renews + 1; i++) {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    if (i == renews) {
      req.op_case = CUSTOS__REQUEST__OP_TOKEN_REVOKE;
      req.token_revoke = &revoke;
    } else {
      req.token = t; /* the renew authenticates with T itself */
      req.op_case = CUSTOS__REQUEST__OP_TOKEN_RENEW;
      req.token_renew = &renew;
    }
    if ((rc = cs_client_send(c, &req)) < 0)
      return rc;
    sent++;
  }
  int revoked = 0;
  for (unsigned i = 0; i < sent; i++) {
    Custos__Response *res;
    if ((rc = cs_client_recv(c, &res)) < 0)
      return rc;
    if (i == renews)
      revoked = res->error == NULL;
    else if (i > renews && res->error == NULL)
      after_ok++;
    else if (i > renews && res->error->message && strstr(res->error->message, "revoked"))
      after_commit++;
    else if (i > renews)
      after_lookup++;
    cs_wire_response_free(res);
  }
  if (!revoked) {
    fprintf(stderr, "token_race: the revoke itself failed\n");
    return CS_EINTERNAL;
  }
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenLookupReq look = CUSTOS__TOKEN_LOOKUP_REQ__INIT;
  look.token = t;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_LOOKUP;
  req.token_lookup = &look;
  Custos__Response *res;
  rc = cs_client_call(c, &req, &res);
  if (rc == 0) {
    cs_wire_response_free(res);
    return 1;
  }
  return rc == CS_ENOTFOUND ? 0 : rc;
}

static int empty_revoke(const cs_client_opts *o) {
  cs_client *c;
  int rc = cs_client_connect(&c, o);
  if (rc < 0)
    return die(NULL, "connect", rc);
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenRevokeReq op = CUSTOS__TOKEN_REVOKE_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_REVOKE;
  req.token_revoke = &op;
  Custos__Response *res;
  rc = cs_client_call(c, &req, &res);
  if (rc == 0) {
    cs_wire_response_free(res);
    cs_client_close(c);
    return 0;
  }
  fprintf(stderr, "Error: %s\n", cs_client_errmsg(c));
  cs_client_close(c);
  return 1;
}

/* One request; prints its outcome as described above. */
static int one_call(const cs_client_opts *o, Custos__Request *req) {
  cs_client *c;
  int rc = cs_client_connect(&c, o);
  if (rc < 0)
    return die(NULL, "connect", rc);
  Custos__Response *res;
  if ((rc = cs_client_send(c, req)) < 0 || (rc = cs_client_recv(c, &res)) < 0) {
    int ret = die(c, "call", rc);
    cs_client_close(c);
    return ret;
  }
  if (res->error != NULL) {
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&custos__error_code__descriptor, res->error->code);
    printf("%s: %s\n", v ? v->name : "?", res->error->message ? res->error->message : "");
  } else if (res->result_case == CUSTOS__RESPONSE__RESULT_TOKEN) {
    printf("OK expire_time=%lld\n", (long long)res->token->expire_time);
  } else if (res->result_case == CUSTOS__RESPONSE__RESULT_STATUS) {
    printf("OK progress=%u\n", res->status->progress);
  } else {
    printf("OK\n");
  }
  cs_wire_response_free(res);
  cs_client_close(c);
  return 0;
}

int main(int argc, char **argv) {
  cs_client_opts o;
  cs_client_opts_init(&o);
  o.timeout_ms = 30000;
  if (argc == 5 && strcmp(argv[1], "--empty-revoke") == 0) {
    o.addr = argv[2];
    o.ca_file = argv[3];
    o.token = argv[4];
    return empty_revoke(&o);
  }
  if (argc == 6 && strcmp(argv[1], "--renew") == 0) {
    o.addr = argv[2];
    o.ca_file = argv[3];
    o.token = argv[4];
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__TokenRenewReq op = CUSTOS__TOKEN_RENEW_REQ__INIT;
    op.increment_seconds = strtoull(argv[5], NULL, 10);
    req.op_case = CUSTOS__REQUEST__OP_TOKEN_RENEW;
    req.token_renew = &op;
    return one_call(&o, &req);
  }
  if (argc == 5 && strcmp(argv[1], "--reset") == 0) {
    o.addr = argv[2];
    o.ca_file = argv[3];
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__UnsealReq op = CUSTOS__UNSEAL_REQ__INIT;
    op.reset = 1;
    if (strcmp(argv[4], "-") != 0)
      op.nonce = argv[4];
    req.op_case = CUSTOS__REQUEST__OP_UNSEAL;
    req.unseal = &op;
    return one_call(&o, &req);
  }
  if (argc != 6) {
    fprintf(stderr, "usage: token_race ADDR CA_FILE ROOT_TOKEN TRIALS RENEWS\n"
                    "       token_race --empty-revoke ADDR CA_FILE TOKEN\n"
                    "       token_race --renew ADDR CA_FILE TOKEN INCREMENT\n"
                    "       token_race --reset ADDR CA_FILE NONCE\n");
    return 2;
  }
  o.addr = argv[1];
  o.ca_file = argv[2];
  o.token = argv[3];
  unsigned trials = (unsigned)strtoul(argv[4], NULL, 10);
  unsigned renews = (unsigned)strtoul(argv[5], NULL, 10);
  if (trials == 0 || renews == 0 || renews > 1000) {
    fprintf(stderr, "token_race: TRIALS must be > 0 and RENEWS 1..1000\n");
    return 2;
  }
  cs_client *c;
  int rc = cs_client_connect(&c, &o);
  if (rc < 0)
    return die(NULL, "connect", rc);
  unsigned survivors = 0;
  for (unsigned i = 0; i < trials; i++) {
    rc = trial(c, renews);
    if (rc < 0) {
      int ret = die(c, "trial", rc);
      cs_client_close(c);
      return ret;
    }
    survivors += (unsigned)rc;
  }
  cs_client_close(c);
  printf("survivors: %u of %u\n", survivors, trials);
  printf("renews behind the revoke: %lu renewed, %lu refused at commit, %lu refused at lookup\n",
         after_ok, after_commit, after_lookup);
  return survivors == 0 && after_ok == 0 ? 0 : 1;
}
