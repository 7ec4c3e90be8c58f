/*
 * staged: the CLI's side of staged activation (docs/ha.md, "Staged
 * activation"): `operator rotate --wait` waits until the rotated term is
 * active, and the key-status / status lines about a staged term and a node
 * that sealed itself.  Entry points are in cli.h ("staged.c").
 */
#include "cli.h"
#include "cs_error.h"
#include "staged.h"
#include "wire.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static void pause_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* One key-status, quietly: 0 and *out, or <0 (the detail in *why). */
static int key_status(cli_ctx *g, Custos__Response **out, char *why, size_t cap) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KeyStatusReq op = CUSTOS__KEY_STATUS_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_KEY_STATUS;
  req.key_status = &op;
  *out = NULL;
  int rc = g->client ? 0 : cs_client_connect(&g->client, &g->opts);
  if (rc == 0)
    rc = cs_client_call(g->client, &req, out);
  if (rc < 0) {
    snprintf(why, cap, "%s", g->client && cs_client_errmsg(g->client)[0]
                                 ? cs_client_errmsg(g->client) : cs_error_message(rc));
    /* A connection that failed (the active went away) is not reused. */
    if (g->client != NULL && rc != CS_EBUSY) {
      cs_client_close(g->client);
      g->client = NULL;
    }
    return rc;
  }
  if ((*out)->result_case != CUSTOS__RESPONSE__RESULT_KEY_STATUS) {
    snprintf(why, cap, "unexpected response from the server (result %d)", (*out)->result_case);
    cs_wire_response_free(*out);
    *out = NULL;
    return CS_EPROTO;
  }
  return 0;
}

int cli_rotate_wait(cli_ctx *g, uint32_t term) {
  /* The server activates the term at most seal.max_activation_delay after
   * the rotation and says by when (activation_deadline); a minute more
   * covers a leader change.  Without a deadline (not seen yet), wait for
   * one to appear. */
  time_t start = time(NULL), limit = 0;
  char why[256] = "";
  int said = 0;
  for (;;) {
    Custos__Response *res;
    int rc = key_status(g, &res, why, sizeof why);
    if (rc == 0) {
      const Custos__KeyStatusRes *k = res->key_status;
      if (k->term >= term) {
        cs_wire_response_free(res);
        return CLI_OK;
      }
      if (k->activation_deadline > 0)
        limit = (time_t)k->activation_deadline + 60;
      if (!said && !g->json && k->n_activation_waiting_for > 0) {
        fprintf(stderr, "Waiting for term %u to be acknowledged by", term);
        for (size_t i = 0; i < k->n_activation_waiting_for; i++)
          fprintf(stderr, "%s %s", i ? "," : "", k->activation_waiting_for[i]);
        fprintf(stderr, "...\n");
        said = 1;
      }
      cs_wire_response_free(res);
    } else if (rc == CS_EPERM || rc == CS_ESEALED) {
      return cli_fail(g, "waiting for term %u to become active: %s", term, why);
    }
    time_t now = time(NULL);
    if ((limit != 0 && now > limit) || (limit == 0 && now - start > 15 * 60))
      return cli_fail(g, "term %u is still not active%s%s", term, why[0] ? ": " : "", why);
    pause_ms(250);
  }
}

void cli_staged_status(cli_ctx *g, const Custos__StatusRes *s) {
  if (s->seal_reason != NULL && s->seal_reason[0])
    out_str(g, "seal_reason", "Seal Reason", s->seal_reason);
}

void cli_staged_key_status(cli_ctx *g, const Custos__KeyStatusRes *k) {
  if (k->activation_deadline == 0)
    return;
  uint32_t staged = k->n_terms ? k->terms[k->n_terms - 1]->term : 0;
  char when[64], who[512] = "";
  cli_fmt_time(k->activation_deadline, 0, when, sizeof when);
  size_t off = 0;
  for (size_t i = 0; i < k->n_activation_waiting_for && off < sizeof who; i++) {
    int n = snprintf(who + off, sizeof who - off, "%s%s", i ? ", " : "",
                     k->activation_waiting_for[i]);
    off += n > 0 ? (size_t)n : 0;
  }
  out_row_fmt(g, "Staged Term", "%u", staged);
  out_str(g, "activation_deadline", "Activates By", when);
  out_list_begin(g, "activation_waiting_for", NULL);
  for (size_t i = 0; i < k->n_activation_waiting_for; i++)
    out_item(g, k->activation_waiting_for[i]);
  out_list_end(g);
  out_row_fmt(g, "Waiting For", "%s", who[0] ? who : "(every voter holds it: activating)");
}
