/*
 * call: the one connection of a CLI run.  Nothing connects before a
 * command sends its first request, so usage errors and --help never touch
 * the network.
 */
#include "cli.h"
#include "wire.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cli_ctx_init(cli_ctx *g) {
  memset(g, 0, sizeof *g);
  cs_client_opts_init(&g->opts);
  cs_jbuf_init(&g->out.json, CS_JBUF_REPLACE);
  cs_jbuf_init(&g->out.text, CS_JBUF_REPLACE);
}

void cli_ctx_free(cli_ctx *g) {
  cs_client_close(g->client);
  g->client = NULL;
  out_discard(g);
  if (g->token_copy != NULL) {
    cli_free_secret(g->token_copy, strlen(g->token_copy));
    g->token_copy = NULL;
  }
}

int cli_call(cli_ctx *g, Custos__Request *req, int result, Custos__Response **res) {
  int rc;
  *res = NULL;
  if (g->client == NULL) {
    rc = cs_client_connect(&g->client, &g->opts);
    /* A bad address or a CA file that cannot be read is this side's
     * problem, not a request the server refused. */
    if (rc < 0)
      return cli_error(g, rc == CS_ECONFIG || rc == CS_EINVAL ? CS_ECLIENT : rc, "%s",
                       cs_error_message(rc));
  }
  rc = cs_client_call(g->client, req, res);
  if (rc < 0) {
    const char *msg = cs_client_errmsg(g->client);
    return cli_error(g, rc, "%s", msg[0] ? msg : cs_strerror(rc));
  }
  int got = (int)(*res)->result_case;
  if (got != result) {
    cs_wire_response_free(*res);
    *res = NULL;
    return cli_error(g, CS_EPROTO, "unexpected response from the server (result %d, expected %d)",
                     got, result);
  }
  return CLI_OK;
}

int cli_call_done(cli_ctx *g, Custos__Request *req, const char *key, const char *value,
                  const char *fmt, ...) {
  Custos__Response *res;
  int rc = cli_call(g, req, CUSTOS__RESPONSE__RESULT_EMPTY, &res);
  if (rc != CLI_OK)
    return rc;
  cs_wire_response_free(res);
  char text[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof text, fmt, ap);
  va_end(ap);
  out_done(g, key, value, "%s", text);
  return CLI_OK;
}
