/*
 * token: token create / lookup / renew / revoke.
 *
 * A token is a string on the command line and `bytes` on the wire; the
 * one being created is printed once and wiped with the response.
 */
#include "cli.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>

#define S(x) ((x) != NULL ? (x) : "")
#define MAX_POLICIES 64

static int print_token(cli_ctx *g, const Custos__TokenRes *t) {
  char expire[64], issue[64];
  cli_fmt_time(t->expire_time, 1, expire, sizeof expire);
  cli_fmt_time(t->issue_time, 1, issue, sizeof issue);
  char pol[2048];
  size_t off = 0;
  pol[0] = '\0';
  for (size_t i = 0; i < t->n_policies && off < sizeof pol; i++) {
    int n = snprintf(pol + off, sizeof pol - off, "%s%s", i ? " " : "", S(t->policies[i]));
    if (n < 0)
      break;
    off += (size_t)n;
  }
  out_str(g, "token", t->token && t->token[0] ? "Token" : NULL, S(t->token));
  out_str(g, "accessor", "Accessor", S(t->accessor));
  out_list_begin(g, "policies", NULL);
  for (size_t i = 0; i < t->n_policies; i++)
    out_item(g, t->policies[i]);
  out_list_end(g);
  out_row_fmt(g, "Policies", "[%s]", pol);
  out_str(g, "issue_time", NULL, issue);
  out_row_fmt(g, "Issue Time", "%s", issue[0] ? issue : "n/a");
  out_str(g, "expire_time", NULL, expire);
  out_row_fmt(g, "Expire Time", "%s", expire[0] ? expire : "never");
  out_bool(g, "renewable", "Renewable", t->renewable);
  return CLI_OK;
}

static int token_create(cli_ctx *g, int argc, char **argv) {
  const char *policies[MAX_POLICIES], *ttl = NULL;
  size_t npolicies = 0, npos;
  int renewable = 0, rc;
  const cli_opt opts[] = {
    { .name = "policy", .arg = 2, .list = policies, .nlist = &npolicies, .cap = MAX_POLICIES },
    { .name = "ttl", .arg = 1, .val = &ttl },
    { .name = "renewable", .arg = 0, .flag = &renewable },
    { 0 },
  };
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (npolicies == 0)
    return cli_usage(g, "at least one --policy is needed");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenCreateReq op = CUSTOS__TOKEN_CREATE_REQ__INIT;
  Custos__Response *res;
  if (ttl != NULL && cli_parse_duration(ttl, &op.ttl_seconds) != 0)
    return cli_usage(g, "bad --ttl \"%.64s\" (e.g. 90s, 24h, 7d)", ttl);
  op.policies = (char **)policies;
  op.n_policies = npolicies;
  op.renewable = renewable;
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_CREATE;
  req.token_create = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_TOKEN, &res)) != 0)
    return rc;
  rc = print_token(g, res->token);
  cs_wire_response_free(res);
  return rc;
}

static int token_lookup(cli_ctx *g, int argc, char **argv) {
  const char *accessor = NULL;
  const cli_opt opts[] = { { .name = "accessor", .arg = 1, .val = &accessor }, { 0 } };
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (npos > 0 && accessor != NULL)
    return cli_usage(g, "give TOKEN or --accessor, not both");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenLookupReq op = CUSTOS__TOKEN_LOOKUP_REQ__INIT;
  Custos__Response *res;
  if (npos) {
    op.token.data = (uint8_t *)pos[0];
    op.token.len = strlen(pos[0]);
  }
  op.accessor = (char *)(accessor != NULL ? accessor : "");
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_LOOKUP;
  req.token_lookup = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_TOKEN, &res)) != 0)
    return rc;
  rc = print_token(g, res->token);
  cs_wire_response_free(res);
  return rc;
}

static int token_renew(cli_ctx *g, int argc, char **argv) {
  const char *incr = NULL;
  const cli_opt opts[] = { { .name = "increment", .arg = 1, .val = &incr }, { 0 } };
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenRenewReq op = CUSTOS__TOKEN_RENEW_REQ__INIT;
  Custos__Response *res;
  if (incr != NULL && cli_parse_duration(incr, &op.increment_seconds) != 0)
    return cli_usage(g, "bad --increment \"%.64s\" (e.g. 90s, 24h, 7d)", incr);
  if (npos) {
    op.token.data = (uint8_t *)pos[0];
    op.token.len = strlen(pos[0]);
  }
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_RENEW;
  req.token_renew = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_TOKEN, &res)) != 0)
    return rc;
  rc = print_token(g, res->token);
  cs_wire_response_free(res);
  return rc;
}

/* TOKEN, or --self for the caller's own: never a silent default, since an
 * empty revoke used to revoke whatever token the caller held (root). */
static int token_revoke(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int self = 0, rc;
  const char *accessor = NULL;
  const cli_opt opts[] = { { .name = "self", .arg = 0, .flag = &self },
                           { .name = "accessor", .arg = 1, .val = &accessor },
                           { 0 } };
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  int given = (npos > 0) + (self != 0) + (accessor != NULL);
  if (given == 0)
    return cli_usage(g, "missing TOKEN (or --accessor A, or --self for your own token)");
  if (given > 1)
    return cli_usage(g, "give one of TOKEN, --accessor or --self");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__TokenRevokeReq op = CUSTOS__TOKEN_REVOKE_REQ__INIT;
  op.self = self;
  op.accessor = (char *)(accessor != NULL ? accessor : "");
  if (npos > 0) {
    op.token.data = (uint8_t *)pos[0];
    op.token.len = strlen(pos[0]);
  }
  req.op_case = CUSTOS__REQUEST__OP_TOKEN_REVOKE;
  req.token_revoke = &op;
  return cli_call_done(g, &req, NULL, NULL, "Revoked the token.");
}

const cli_cmd cli_token_cmds[] = {
  { "create", token_create, NULL, "create a token", "--policy P [--policy Q ...] [--ttl DURATION] [--renewable]",
    "Options:\n"
    "  --policy P          a policy of the new token (repeat for more; at least one)\n"
    "  --ttl DURATION      lifetime (default: never for a root token's children,\n"
    "                      else token.max_ttl); at most token.max_ttl\n"
    "  --renewable         the token may be renewed\n"
    "\n"
    "The token is shown only here.\n" },
  { "lookup", token_lookup, NULL, "show a token (default: your own)", "[TOKEN]\n--accessor A",
    "Shows TOKEN, the token with accessor A (the audit log's handle of a\n"
    "token; needs sudo on sys/token/lookup), or without either your own.\n" },
  { "renew", token_renew, NULL, "extend a token's expiry", "[TOKEN] [--increment DURATION]",
    "Sets the expiry to now + --increment (default: the token's TTL), never past\n"
    "its issue time + token.max_ttl.\n" },
  { "revoke", token_revoke, NULL, "revoke a token", "TOKEN\n--accessor A\n--self",
    "Revokes TOKEN, the token with accessor A (as the audit log shows it), or\n"
    "with --self the caller's own token.  Exactly one is required, so a\n"
    "forgotten argument never revokes the token in use.\n" },
  { 0 },
};
