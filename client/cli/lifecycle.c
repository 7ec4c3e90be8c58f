/*
 * lifecycle: key-status, rewrap, retire-term and `rotate --rewrap --retire`
 * (see lifecycle.h).
 *
 * Waiting (rewrap --wait, rotate --rewrap) polls rewrap-status (or
 * key-status, for an activation) four times a second.  On a terminal
 * (stderr) the progress is one line redrawn in place; otherwise a line
 * every 10 seconds, so a log of a scripted run still shows progress.
 * A transient refusal (RETRY, a leader election) or a dropped connection
 * is retried for up to a minute; a pass that makes no progress for five
 * minutes, or a step that keeps failing with the same error, ends the
 * wait with an error (the pass itself goes on in the server).
 */
#include "lifecycle.h"
#include "staged.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S(x) ((x) != NULL ? (x) : "")
#define POLL_MS 250
#define RETRY_FOR_MS 60000
#define STALL_MS (5 * 60 * 1000)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/*
 * One call that survives what a long wait meets: RETRY and a dead
 * connection are retried (reconnecting) for up to RETRY_FOR_MS.  Returns
 * CLI_OK with *res, or prints the error and returns CLI_FAIL/CLI_RETRY.
 */
static int call_patient(cli_ctx *g, Custos__Request *req, int result, Custos__Response **res) {
  uint64_t until = now_ms() + RETRY_FOR_MS;
  for (;;) {
    *res = NULL;
    int rc = 0;
    if (g->client == NULL)
      rc = cs_client_connect(&g->client, &g->opts);
    if (rc == 0)
      rc = cs_client_call(g->client, req, res);
    int transient = rc == CS_EBUSY || rc == CS_ECONN || rc == CS_ETIMEOUT || rc == CS_ETLS ||
                    rc == CS_EUNAVAIL || rc == CS_ESTANDBY;
    if (rc == 0 || !transient || now_ms() >= until) {
      if (rc < 0) {
        const char *msg = g->client != NULL ? cs_client_errmsg(g->client) : "";
        return cli_error(g, g->client == NULL && (rc == CS_ECONFIG || rc == CS_EINVAL) ? CS_ECLIENT : rc, "%s",
                         msg[0] ? msg : cs_error_message(rc));
      }
      break;
    }
    if (rc != CS_EBUSY && g->client != NULL) {
      cs_client_close(g->client);
      g->client = NULL;
    }
    sleep_ms(500);
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

static const char *state_name(Custos__TermState s) {
  switch (s) {
  case CUSTOS__TERM_STATE__TERM_STATE_STAGED: return "staged";
  case CUSTOS__TERM_STATE__TERM_STATE_ACTIVE: return "active";
  case CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY: return "decrypt-only";
  case CUSTOS__TERM_STATE__TERM_STATE_RETIRED: return "retired";
  default: return "unknown";
  }
}

/* ------------------------------------------------------------ key-status */

static int fetch_key_status(cli_ctx *g, int verify, int patient, Custos__Response **res) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KeyStatusReq op = CUSTOS__KEY_STATUS_REQ__INIT;
  op.verify = verify;
  req.op_case = CUSTOS__REQUEST__OP_KEY_STATUS;
  req.key_status = &op;
  return patient ? call_patient(g, &req, CUSTOS__RESPONSE__RESULT_KEY_STATUS, res)
                 : cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KEY_STATUS, res);
}

int cli_key_status(cli_ctx *g, int argc, char **argv) {
  int verify = 0, rc;
  const cli_opt opts[] = {{.name = "verify", .arg = 0, .flag = &verify}, {0}};
  size_t npos;
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Response *res;
  if ((rc = fetch_key_status(g, verify, 0, &res)) != 0)
    return rc;
  const Custos__KeyStatusRes *k = res->key_status;
  char when[64], act[64], ret[64];
  cli_fmt_time(k->install_time, 0, when, sizeof when);
  out_u64(g, "term", "Key Term", k->term);
  out_str(g, "install_time", "Install Time", when);
  out_u64(g, "encryptions", "Encryption Count", k->encryptions);
  cli_staged_key_status(g, k); /* a staged term: deadline, voters waited for */
  out_text(g, "\n");
  out_list_begin(g, "terms", "");
  for (size_t i = 0; i < k->n_terms; i++) {
    const Custos__TermStatus *t = k->terms[i];
    cli_fmt_time(t->install_time, 0, when, sizeof when);
    cli_fmt_time(t->activation_time, 1, act, sizeof act);
    cli_fmt_time(t->retirement_time, 1, ret, sizeof ret);
    out_obj_begin(g);
    out_u64(g, "term", "Term", t->term);
    out_str(g, "state", "State", state_name(t->state));
    out_str(g, "install_time", "Install Time", when);
    out_str(g, "activation_time", NULL, act);
    out_str(g, NULL, "Activation Time", act[0] ? act : "-");
    out_str(g, "retirement_time", NULL, ret);
    out_u64(g, "encryptions", "Encryptions", t->encryptions);
    out_u64(g, "values", "Values", t->values);
    if (k->verified)
      out_u64(g, "scanned_values", "Scanned", t->scanned_values);
    out_str(g, NULL, "Retired", ret[0] ? ret : "-");
    out_obj_end(g);
  }
  out_list_end(g);
  out_u64(g, "unknown_term_values", NULL, k->unknown_values);
  if (k->verified) {
    out_bool(g, "verified", NULL, 1);
    out_bool(g, "counts_match", NULL, k->counts_match);
  }
  if (k->unknown_values)
    out_text(g, "\n%llu stored value(s) are under a term this keyring does not know.\n",
             (unsigned long long)k->unknown_values);
  if (k->verified)
    out_text(g, "\nFull scan: %s\n", k->counts_match ? "the kept counts match every stored value"
                                                   : "MISMATCH: the kept counts differ from the data");
  int bad = k->verified && !k->counts_match;
  cs_wire_response_free(res);
  if (bad)
    return cli_fail(g, "the kept value counts do not match a full scan");
  return CLI_OK;
}

/* ---------------------------------------------------------------- rewrap */

static int fetch_rewrap_status(cli_ctx *g, Custos__Response **res) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RewrapStatusReq op = CUSTOS__REWRAP_STATUS_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_REWRAP_STATUS;
  req.rewrap_status = &op;
  return call_patient(g, &req, CUSTOS__RESPONSE__RESULT_REWRAP_STATUS, res);
}

static const char *rewrap_state(const Custos__RewrapStatusRes *s) {
  return !s->exists ? "none" : s->finished ? "finished" : s->running ? "running" : "paused";
}

static void print_rewrap(cli_ctx *g, const Custos__RewrapStatusRes *s) {
  char started[64], updated[64], eta[32];
  cli_fmt_time(s->started, 1, started, sizeof started);
  cli_fmt_time(s->updated, 1, updated, sizeof updated);
  if (s->eta_seconds >= 0)
    cli_fmt_duration((uint64_t)s->eta_seconds, eta, sizeof eta);
  else
    snprintf(eta, sizeof eta, "unknown");
  const char *ex = s->exists ? "" : NULL; /* text rows only when a pass exists */
  out_str(g, "state", "State", rewrap_state(s));
  out_u64(g, "active_term", "Active Term", s->active_term);
  out_u64(g, "target_term", ex ? "Target Term" : NULL, s->target_term);
  out_u64(g, "below_term", NULL, s->below_term);
  if (ex && s->below_term)
    out_row_fmt(g, "Selected Terms", "below %u", s->below_term);
  else if (ex)
    out_row_fmt(g, "Selected Terms", "every term older than %u", s->target_term);
  out_u64(g, "done", NULL, s->done);
  out_u64(g, "total", NULL, s->total);
  if (ex)
    out_row_fmt(g, "Done", "%llu/%llu", (unsigned long long)s->done, (unsigned long long)s->total);
  out_u64(g, "remaining", ex ? "Remaining" : NULL, s->remaining);
  out_u64(g, "skipped", ex ? "Skipped" : NULL, s->skipped);
  out_u64(g, "rate", NULL, s->rate);
  out_u64(g, "values_per_second", NULL, s->values_per_second);
  if (ex) {
    out_row_fmt(g, "Rate Limit", "%llu values/s", (unsigned long long)s->rate);
    out_row_fmt(g, "Speed", "%llu values/s", (unsigned long long)s->values_per_second);
    out_row_fmt(g, "ETA", "%s", eta);
  }
  out_i64(g, "eta_seconds", NULL, s->eta_seconds);
  out_str(g, "started", ex ? "Started" : NULL, started);
  out_str(g, "updated", ex ? "Updated" : NULL, updated);
  out_str(g, "last_error", s->last_error && s->last_error[0] ? "Last Error" : NULL, S(s->last_error));
}

/* One progress line: a bar on a terminal, a plain line otherwise. */
static void progress(int tty, const char *what, uint64_t done, uint64_t total, uint64_t vps,
                     int64_t eta) {
  char etas[32] = "?";
  if (eta >= 0)
    cli_fmt_duration((uint64_t)eta, etas, sizeof etas);
  unsigned pct = total ? (unsigned)(done * 100 / total) : 100;
  if (pct > 100)
    pct = 100;
  if (tty) {
    char bar[31];
    unsigned fill = pct * 30 / 100;
    for (unsigned i = 0; i < 30; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%s [%s] %3u%%  %llu/%llu  %llu values/s  ETA %s   ", what, bar, pct,
            (unsigned long long)done, (unsigned long long)total, (unsigned long long)vps, etas);
  } else {
    fprintf(stderr, "%s: %llu/%llu values (%u%%), %llu values/s, ETA %s\n", what,
            (unsigned long long)done, (unsigned long long)total, pct, (unsigned long long)vps,
            etas);
  }
  fflush(stderr);
}

/* Waits until the pass is finished; prints progress.  CLI_OK or an error. */
static int wait_rewrap(cli_ctx *g, Custos__Response **final) {
  int tty = isatty(2) && !g->json;
  uint64_t last_line = 0, last_progress = now_ms();
  uint64_t last_remaining = UINT64_MAX;
  *final = NULL;
  for (;;) {
    Custos__Response *res;
    int rc = fetch_rewrap_status(g, &res);
    if (rc != CLI_OK)
      return rc;
    const Custos__RewrapStatusRes *s = res->rewrap_status;
    uint64_t t = now_ms();
    if (s->remaining != last_remaining) {
      last_remaining = s->remaining;
      last_progress = t;
    }
    if (!g->json && (tty || t - last_line >= 10000 || s->finished)) {
      progress(tty, "rewrap", s->done, s->total, s->values_per_second, s->eta_seconds);
      last_line = t;
    }
    if (!s->exists) {
      cs_wire_response_free(res);
      return cli_fail(g, "no rewrap pass exists (start one with `custos operator rewrap`)");
    }
    if (s->finished) {
      if (tty)
        fputc('\n', stderr);
      *final = res;
      return CLI_OK;
    }
    if (s->last_error && strstr(s->last_error, "passes") != NULL) {
      if (tty)
        fputc('\n', stderr);
      rc = cli_fail(g, "rewrap: %s", s->last_error);
      cs_wire_response_free(res);
      return rc;
    }
    if (t - last_progress > STALL_MS) {
      if (tty)
        fputc('\n', stderr);
      rc = cli_fail(g, "rewrap made no progress for %d minutes (%s%s); it goes on in the server: "
                    "see `custos operator rewrap --status`",
                    STALL_MS / 60000, rewrap_state(s),
                    s->last_error && s->last_error[0] ? s->last_error : "");
      cs_wire_response_free(res);
      return rc;
    }
    cs_wire_response_free(res);
    sleep_ms(POLL_MS);
  }
}

/* Starts (or joins) a pass; *res is the server's first status. */
static int start_rewrap(cli_ctx *g, uint32_t below, uint64_t rate, Custos__Response **res) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RewrapReq op = CUSTOS__REWRAP_REQ__INIT;
  op.below_term = below;
  op.rate = rate;
  req.op_case = CUSTOS__REQUEST__OP_REWRAP;
  req.rewrap = &op;
  return call_patient(g, &req, CUSTOS__RESPONSE__RESULT_REWRAP_STATUS, res);
}

static int parse_rate(cli_ctx *g, const char *s, uint64_t *rate) {
  *rate = 0;
  if (s == NULL)
    return 0;
  if (cli_parse_u64(s, 1, 1000000, rate) != 0)
    return cli_usage(g, "--rate must be a whole number of values per second from 1 to 1000000 "
                        "(got \"%.64s\")", s);
  return 0;
}

/* The end of a wait: the summary, and a failure when values were left. */
static int report_done(cli_ctx *g, const Custos__RewrapStatusRes *s) {
  /* JSON: the whole status; the text says it in one sentence. */
  if (g->json)
    print_rewrap(g, s);
  out_text(g, "Success! Rewrap complete: every selected value is under term %u (%llu re-encrypted",
           s->target_term, (unsigned long long)s->done);
  if (s->skipped)
    out_text(g, ", %llu could not be opened and were left as they are",
             (unsigned long long)s->skipped);
  out_text(g, ")\n");
  if (s->remaining > s->skipped && s->active_term != s->target_term)
    out_text(g, "Note: term %u is active since; %llu value(s) are under older terms: run the "
             "rewrap again to move them\n", s->active_term, (unsigned long long)s->remaining);
  if (s->skipped)
    return cli_fail(g, "%llu value(s) could not be re-encrypted (see the server log)",
                    (unsigned long long)s->skipped);
  return CLI_OK;
}

int cli_rewrap(cli_ctx *g, int argc, char **argv) {
  int status = 0, wait = 0, rc;
  const char *below_s = NULL, *rate_s = NULL;
  const cli_opt opts[] = {
      {.name = "status", .arg = 0, .flag = &status},
      {.name = "wait", .arg = 0, .flag = &wait},
      {.name = "below-term", .arg = 1, .val = &below_s},
      {.name = "rate", .arg = 1, .val = &rate_s},
      {0},
  };
  size_t npos;
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  uint64_t below = 0, rate = 0;
  if (status && (below_s || rate_s))
    return cli_usage(g, "--status takes no other option but --wait");
  if (below_s && cli_parse_u64(below_s, 1, UINT32_MAX, &below) != 0)
    return cli_usage(g, "--below-term must be a term number from 1 to %u (got \"%.64s\")",
                     UINT32_MAX, below_s);
  if ((rc = parse_rate(g, rate_s, &rate)) != 0)
    return rc;
  Custos__Response *res;
  if (status && !wait) {
    if ((rc = fetch_rewrap_status(g, &res)) != 0)
      return rc;
    print_rewrap(g, res->rewrap_status);
    cs_wire_response_free(res);
    return CLI_OK;
  }
  if (!status) {
    if ((rc = start_rewrap(g, (uint32_t)below, rate, &res)) != 0)
      return rc;
    const Custos__RewrapStatusRes *s = res->rewrap_status;
    if (!wait) {
      out_text(g, "Success! Rewrap started: %llu value(s) to re-encrypt to term %u at up to %llu "
                  "values/s\n\n",
               (unsigned long long)s->remaining, s->target_term, (unsigned long long)s->rate);
      print_rewrap(g, s);
      cs_wire_response_free(res);
      return CLI_OK;
    }
    cs_wire_response_free(res);
  }
  if ((rc = wait_rewrap(g, &res)) != CLI_OK)
    return rc;
  rc = report_done(g, res->rewrap_status);
  cs_wire_response_free(res);
  return rc;
}

/* ---------------------------------------------------------------- retire */

static int retire(cli_ctx *g, uint32_t term, int quiet_json) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RetireTermReq op = CUSTOS__RETIRE_TERM_REQ__INIT;
  op.term = term;
  req.op_case = CUSTOS__REQUEST__OP_RETIRE_TERM;
  req.retire_term = &op;
  Custos__Response *res;
  int rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_RETIRE_TERM, &res);
  if (rc != CLI_OK)
    return rc;
  char when[64];
  cli_fmt_time(res->retire_term->retirement_time, 0, when, sizeof when);
  if (!quiet_json) {
    out_bool(g, "success", NULL, 1);
    out_u64(g, "term", NULL, res->retire_term->term);
    out_str(g, "retirement_time", NULL, when);
  }
  out_text(g, "Success! Term %u retired on %s: its key is wiped and no longer stored\n",
           res->retire_term->term, when);
  cs_wire_response_free(res);
  return CLI_OK;
}

int cli_retire_term(cli_ctx *g, int argc, char **argv) {
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  uint64_t term;
  if (npos != 1)
    return cli_usage(g, "missing the term number");
  if (cli_parse_u64(pos[0], 1, UINT32_MAX, &term) != 0)
    return cli_usage(g, "\"%.64s\" is not a term number (1 to %u)", pos[0], UINT32_MAX);
  return retire(g, (uint32_t)term, 0);
}

/* ------------------------------------------------- rotate --rewrap --retire */

int cli_rotate_is_lifecycle(int argc, char **argv) {
  for (int i = 0; i < argc; i++) {
    if (strcmp(argv[i], "--") == 0)
      break;
    const char *a = argv[i];
    if (strcmp(a, "--rewrap") == 0 || strcmp(a, "-rewrap") == 0 || strcmp(a, "--retire") == 0 ||
        strcmp(a, "-retire") == 0)
      return 1;
  }
  return 0;
}

int cli_rotate_lifecycle(cli_ctx *g, int argc, char **argv) {
  int rewrap = 0, retire_old = 0, rc;
  const char *rate_s = NULL;
  const cli_opt opts[] = {
      {.name = "rewrap", .arg = 0, .flag = &rewrap},
      {.name = "retire", .arg = 0, .flag = &retire_old},
      {.name = "rate", .arg = 1, .val = &rate_s},
      {0},
  };
  size_t npos;
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (retire_old && !rewrap)
    return cli_usage(g, "--retire needs --rewrap (the values under the older "
                           "terms must be re-encrypted before their keys can go)");
  if (rate_s && !rewrap)
    return cli_usage(g, "--rate goes with --rewrap");
  uint64_t rate;
  if ((rc = parse_rate(g, rate_s, &rate)) != 0)
    return rc;

  /* 1. rotate */
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RotateReq op = CUSTOS__ROTATE_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_ROTATE;
  req.rotate = &op;
  Custos__Response *res;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_ROTATE, &res)) != 0)
    return rc;
  uint32_t term = res->rotate->term;
  int staged = res->rotate->staged;
  cs_wire_response_free(res);
  if (!g->json)
    fprintf(stderr, "rotate: term %u installed%s\n", term,
            staged ? " (staged until every member holds it)" : "");

  /* 2. activation (immediate standalone; a cluster waits for every voter) */
  if (staged && (rc = cli_rotate_wait(g, term)) != CLI_OK) /* staged.c */
    return rc;
  if (!g->json)
    fprintf(stderr, "rotate: term %u is active\n", term);

  /* 3. rewrap everything older */
  if ((rc = start_rewrap(g, 0, rate, &res)) != CLI_OK)
    return rc;
  cs_wire_response_free(res);
  if ((rc = wait_rewrap(g, &res)) != CLI_OK)
    return rc;
  uint64_t moved = res->rewrap_status->done, skipped = res->rewrap_status->skipped;
  uint32_t target = res->rewrap_status->target_term;
  cs_wire_response_free(res);
  if (skipped)
    return cli_fail(g, "rewrap left %llu value(s) it could not open under older terms: no term "
                    "retired", (unsigned long long)skipped);
  if (!g->json)
    fprintf(stderr, "rewrap: %llu value(s) now under term %u\n", (unsigned long long)moved, target);

  /* 4. retire every older term */
  uint32_t retired[64];
  size_t nretired = 0, more = 0;
  if (retire_old) {
    if ((rc = fetch_key_status(g, 0, 1, &res)) != CLI_OK)
      return rc;
    const Custos__KeyStatusRes *k = res->key_status;
    uint32_t *todo = calloc(k->n_terms ? k->n_terms : 1, sizeof *todo);
    size_t ntodo = 0;
    if (todo == NULL) {
      cs_wire_response_free(res);
      return cli_fail(g, "out of memory");
    }
    for (size_t i = 0; i < k->n_terms; i++)
      if (k->terms[i]->term < target &&
          k->terms[i]->state == CUSTOS__TERM_STATE__TERM_STATE_DECRYPT_ONLY)
        todo[ntodo++] = k->terms[i]->term;
    cs_wire_response_free(res);
    for (size_t i = 0; i < ntodo; i++) {
      if ((rc = retire(g, todo[i], 1)) != CLI_OK) {
        free(todo);
        return rc;
      }
      if (nretired < sizeof retired / sizeof retired[0])
        retired[nretired++] = todo[i];
      else
        more++;
    }
    free(todo);
  }
  out_bool(g, "success", NULL, 1);
  out_u64(g, "term", NULL, term);
  out_u64(g, "rewrapped", NULL, moved);
  out_list_begin(g, "retired", NULL);
  for (size_t i = 0; i < nretired; i++)
    out_item_u64(g, retired[i]);
  out_list_end(g);
  out_text(g, "Success! Term %u is active; %llu value(s) re-encrypted to it", term,
           (unsigned long long)moved);
  if (retire_old)
    out_text(g, "; %zu older term(s) retired", nretired + more);
  out_text(g, "\n");
  return CLI_OK;
}
