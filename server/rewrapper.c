/* rewrapper: see rewrapper.h. */
#include "rewrapper.h"
#include "api.h"
#include "ha.h"
#include "barrier.h"
#include "crypto.h"
#include "cs_error.h"
#include "log.h"
#include "rewrap.h"
#include "snapshots.h"
#include "staged_ops.h"
#include "termcount.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 64        /* values per step up to FAST_RATE values/s */
#define MAX_BATCH_FAST 256  /* above it: an operator asked for speed over latency */
#define FAST_RATE 20000
#define IDLE_MS 1000       /* how often an idle driver looks for a pass to continue */
#define BACKOFF_MS 1000    /* after a failed step */

/* A request to start a pass, waiting for the step in flight. */
typedef struct pending_start {
  int set;
  uint32_t below_term;
  uint64_t rate;
  cs_rewrapper_reply_fn fn;
  void *arg;
} pending_start;

static struct {
  cs_api_env *d;
  uv_timer_t timer;
  int started;
  int inflight;            /* a batch of ours is being committed */
  int armed;               /* this node drove the current pass: sweep when it ends */
  unsigned sweeps;         /* passes started in a row because values were left */
  uint64_t pending_rate;   /* a rate change, persisted with the next step */
  double tokens;
  uint64_t refill_ms;
  uint64_t idle_until_ms;
  int running;             /* an unfinished pass was seen at the last look */
  /* Speed measured here: values moved since meas_ms (reset per pass). */
  uint64_t meas_ms, meas_done;
  uint32_t meas_target;
  uint64_t backoff_until_ms;
  char last_error[256];
  pending_start start;
  /* The step in flight. */
  size_t step_staged;
  int step_finished;
  cs_rewrapper_reply_fn start_fn; /* a start in flight answers here */
  void *start_arg;
} R;

static void schedule(uint64_t ms);
static void step(void);
static void respond_status(cs_rewrapper_reply_fn fn, void *arg);

/* 1 when this node may drive a rewrap now. */
static int eligible(void) {
  cs_api_env *d = R.d;
  return !(*d->shutting_down) && d->seal != NULL && cs_seal_keyring(d->seal) != NULL &&
         cs_ha_is_active(d) && !cs_snapshots_restoring(d);
}

static uint64_t effective_rate(const cs_rewrap_cursor *c) {
  uint64_t r = R.pending_rate ? R.pending_rate : c->rate;
  return r ? r : CS_REWRAP_DEFAULT_RATE;
}

/* Values per step for a rate: about 20 steps a second, 1..MAX_BATCH (a
 * step re-encrypts on the loop: 64 values are about 0.2 ms of it), or up
 * to MAX_BATCH_FAST above FAST_RATE. */
static size_t step_size(uint64_t rate) {
  uint64_t n = rate / 20, cap = rate > FAST_RATE ? MAX_BATCH_FAST : MAX_BATCH;
  return n < 1 ? 1 : n > cap ? (size_t)cap : (size_t)n;
}

static void set_error(const char *what, int rc) {
  snprintf(R.last_error, sizeof R.last_error, "%s: %s", what, cs_error_message(rc));
  cs_warn("rewrap: %s", R.last_error);
  R.backoff_until_ms = uv_now(R.d->loop) + BACKOFF_MS;
}

/* ---------------------------------------------------------------- steps */

static void on_step_done(void *arg, int status) {
  (void)arg;
  R.inflight = 0;
  cs_rewrapper_reply_fn fn = R.start_fn;
  void *farg = R.start_arg;
  R.start_fn = NULL;
  if (status < 0) {
    set_error("a step failed to commit (it is redone)", status);
    if (fn != NULL)
      fn(farg, status, NULL);
  } else {
    R.last_error[0] = '\0';
    R.meas_done += R.step_staged;
    if (R.step_finished)
      cs_info("rewrap: pass complete");
    if (fn != NULL)
      respond_status(fn, farg);
  }
  if (!R.started)
    return;
  if (R.start.set) { /* a start that waited for this step */
    R.start.set = 0;
    Custos__RewrapReq q = CUSTOS__REWRAP_REQ__INIT;
    q.below_term = R.start.below_term;
    q.rate = R.start.rate;
    cs_rewrapper_begin(R.d, &q, R.start.fn, R.start.arg);
    return;
  }
  schedule(0);
}

static int submit(cs_batch *b) {
  int rc = cs_commitq_submit(R.d->commitq, b, on_step_done, NULL);
  cs_batch_clear(b);
  if (rc == 0)
    R.inflight = 1;
  return rc;
}

/* Begins a pass (the cursor at the first key) into b. */
static int stage_start(uint32_t below_term, uint64_t rate, cs_rewrap_cursor *c, cs_batch *b) {
  cs_api_env *d = R.d;
  cs_keyring *kr = cs_seal_keyring(d->seal);
  int rc = cs_rewrap_start(d->store, kr, below_term, cs_now(), c, b);
  if (rc < 0)
    return rc;
  c->rate = rate;
  cs_batch_clear(b);
  cs_batch_init(b);
  if ((rc = cs_rewrap_stage_cursor(kr, c, b)) < 0)
    return rc;
  R.meas_ms = uv_now(d->loop);
  R.meas_done = 0;
  R.meas_target = c->target_term;
  R.tokens = 0;
  R.refill_ms = R.meas_ms;
  R.step_staged = 0;
  R.step_finished = 0;
  return 0;
}

/* A pass just ended (or was found ended): another one when values are left. */
static void maybe_sweep(cs_rewrap_cursor *c) {
  cs_api_env *d = R.d;
  uint64_t left;
  int rc = cs_rewrap_remaining(d->store, cs_seal_keyring(d->seal), c->below_term, &left);
  if (rc < 0) {
    set_error("counting the values left", rc);
    return;
  }
  if (!R.armed)
    return; /* not ours to redo (see rewrapper.h) */
  if (left <= c->skipped || c->target_term != cs_keyring_active(cs_seal_keyring(d->seal))) {
    /* Done; or the pass was done and a rotation came since: a new pass
     * towards the new term is the operator's call, not a sweep. */
    R.armed = 0;
    return;
  }
  if (R.sweeps >= CS_REWRAP_SWEEPS) {
    snprintf(R.last_error, sizeof R.last_error,
             "%llu value(s) still under older terms after %u passes",
             (unsigned long long)left, R.sweeps + 1);
    cs_warn("rewrap: %s", R.last_error);
    R.armed = 0;
    return;
  }
  R.sweeps++;
  cs_info("rewrap: %llu value(s) left under older terms after the pass: another pass (%u of %u)",
          (unsigned long long)left, R.sweeps, CS_REWRAP_SWEEPS);
  cs_batch b;
  cs_batch_init(&b);
  cs_rewrap_cursor n;
  if ((rc = stage_start(c->below_term, c->rate, &n, &b)) < 0 || (rc = submit(&b)) < 0) {
    cs_batch_clear(&b);
    set_error("starting another pass", rc);
  }
}

static void step(void) {
  cs_api_env *d = R.d;
  uint64_t now = uv_now(d->loop);
  if (R.inflight)
    return; /* on_step_done schedules the next one */
  if (!eligible()) {
    R.running = 0;
    R.armed = 0; /* a new leader decides afresh */
    schedule(IDLE_MS);
    return;
  }
  if (now < R.backoff_until_ms) {
    schedule(R.backoff_until_ms - now);
    return;
  }
  cs_keyring *kr = cs_seal_keyring(d->seal);
  cs_rewrap_cursor c;
  int rc = cs_rewrap_load(d->store, kr, &c);
  if (rc == CS_ENOTFOUND) {
    R.running = 0;
    schedule(IDLE_MS);
    return;
  }
  if (rc < 0) {
    set_error("reading the cursor", rc);
    schedule(BACKOFF_MS);
    return;
  }
  if (c.finished) {
    R.running = 0;
    maybe_sweep(&c);
    if (!R.inflight)
      schedule(IDLE_MS);
    return;
  }
  if (!R.running) {
    cs_info("rewrap: continuing the pass towards term %u after %s", c.target_term,
            c.after[0] ? c.after : "(start)");
    R.running = 1;
    R.armed = 1;
    R.refill_ms = now;
    R.tokens = 0;
    if (R.meas_target != c.target_term || R.meas_ms == 0) {
      R.meas_ms = now;
      R.meas_done = 0;
      R.meas_target = c.target_term;
    }
  }
  uint64_t rate = effective_rate(&c);
  size_t want = step_size(rate);
  double cap = (double)want;
  R.tokens += (double)rate * (double)(now - R.refill_ms) / 1000.0;
  R.refill_ms = now;
  if (R.tokens > cap)
    R.tokens = cap;
  if (R.tokens < (double)want) {
    uint64_t wait = (uint64_t)(((double)want - R.tokens) * 1000.0 / (double)rate) + 1;
    schedule(wait);
    return;
  }
  if (R.pending_rate) {
    c.rate = R.pending_rate;
    R.pending_rate = 0;
  }
  cs_batch b;
  cs_batch_init(&b);
  cs_rewrap_step res;
  uint32_t target = c.target_term;
  rc = cs_rewrap_build(d->store, kr, &c, want, cs_now(), &b, &res);
  if (rc < 0) {
    cs_batch_clear(&b);
    set_error("building a step", rc);
    schedule(BACKOFF_MS);
    return;
  }
  if (res.restarted || c.target_term != target) {
    R.meas_ms = now;
    R.meas_done = 0;
    R.meas_target = c.target_term;
    R.sweeps = 0;
  }
  /* Keys read cost too (a store with little left to move). */
  double cost = (double)res.staged + (double)res.examined / 16.0;
  R.tokens -= cost < 1 ? 1 : cost;
  R.step_staged = res.staged;
  R.step_finished = res.finished;
  if ((rc = submit(&b)) < 0) {
    cs_batch_clear(&b);
    set_error("submitting a step", rc);
    schedule(BACKOFF_MS);
  }
}

static void on_timer(uv_timer_t *t) {
  (void)t;
  step();
}

static void schedule(uint64_t ms) {
  if (R.started)
    uv_timer_start(&R.timer, on_timer, ms, 0);
}

int cs_rewrapper_start(cs_api_env *d) {
  memset(&R, 0, sizeof R);
  R.d = d;
  uv_timer_init(d->loop, &R.timer);
  R.started = 1;
  schedule(IDLE_MS);
  return 0;
}

void cs_rewrapper_stop(cs_api_env *d) {
  (void)d;
  if (!R.started)
    return;
  R.started = 0;
  uv_timer_stop(&R.timer);
  uv_close((uv_handle_t *)&R.timer, NULL);
  if (R.start.set) {
    R.start.set = 0;
    R.start.fn(R.start.arg, cs_error_set(CS_EUNAVAIL, "the server is stopping"), NULL);
  }
}

/* ---------------------------------------------------------------- requests */

static void fill_status(Custos__RewrapStatusRes *st, char *err_buf, size_t cap) {
  cs_api_env *d = R.d;
  cs_keyring *kr = cs_seal_keyring(d->seal);
  cs_rewrap_cursor c;
  st->active_term = cs_keyring_active(kr);
  st->eta_seconds = -1;
  snprintf(err_buf, cap, "%s", R.last_error);
  st->last_error = err_buf;
  int rc = cs_rewrap_load(d->store, kr, &c);
  if (rc < 0) {
    if (rc != CS_ENOTFOUND)
      snprintf(err_buf, cap, "reading the cursor: %s", cs_error_message(rc));
    return;
  }
  uint64_t left = 0;
  if ((rc = cs_rewrap_remaining(d->store, kr, c.below_term, &left)) < 0)
    snprintf(err_buf, cap, "counting the values left: %s", cs_error_message(rc));
  st->exists = 1;
  st->below_term = c.below_term;
  st->target_term = c.target_term;
  st->total = c.total;
  st->remaining = left;
  st->done = c.total > left ? c.total - left : 0;
  st->skipped = c.skipped;
  st->rate = c.rate ? c.rate : CS_REWRAP_DEFAULT_RATE;
  if (R.pending_rate)
    st->rate = R.pending_rate;
  st->started = c.started;
  st->updated = c.updated;
  /* A pass done towards an older term (a rotation came since) is finished:
   * `remaining` then says what a new pass would move. */
  st->finished = c.finished && (left <= c.skipped || c.target_term != st->active_term);
  st->running = !st->finished && (R.running || R.inflight) && eligible();
  uint64_t now = uv_now(d->loop);
  if (R.meas_target == c.target_term && R.meas_ms && now > R.meas_ms + 200)
    st->values_per_second = R.meas_done * 1000 / (now - R.meas_ms);
  if (st->finished)
    st->eta_seconds = 0;
  else if (st->values_per_second > 0)
    st->eta_seconds = (int64_t)((left + st->values_per_second - 1) / st->values_per_second);
  else if (st->rate > 0)
    st->eta_seconds = (int64_t)((left + st->rate - 1) / st->rate);
}

static void respond_status(cs_rewrapper_reply_fn fn, void *arg) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RewrapStatusRes st = CUSTOS__REWRAP_STATUS_RES__INIT;
  char err[300];
  fill_status(&st, err, sizeof err);
  res.result_case = CUSTOS__RESPONSE__RESULT_REWRAP_STATUS;
  res.rewrap_status = &st;
  fn(arg, 0, &res);
}

void cs_rewrapper_status(cs_api_env *d, cs_rewrapper_reply_fn fn, void *arg) {
  (void)d;
  if (cs_seal_keyring(R.d->seal) == NULL) {
    fn(arg, cs_error_set(CS_ESEALED, "server is sealed"), NULL);
    return;
  }
  respond_status(fn, arg);
}

void cs_rewrapper_begin(cs_api_env *d, const Custos__RewrapReq *q, cs_rewrapper_reply_fn fn,
                        void *arg) {
  cs_keyring *kr = cs_seal_keyring(d->seal);
  if (kr == NULL) {
    fn(arg, cs_error_set(CS_ESEALED, "server is sealed"), NULL);
    return;
  }
  if (q->rate > CS_REWRAP_MAX_RATE) {
    fn(arg,
       cs_error_set(CS_EINVAL, "rate %llu is out of range: 1 to %u values per second (0: the default %u)",
                    (unsigned long long)q->rate, CS_REWRAP_MAX_RATE, CS_REWRAP_DEFAULT_RATE),
       NULL);
    return;
  }
  if (!R.started || !eligible()) {
    fn(arg, cs_error_set(CS_EBUSY, "this node cannot drive a rewrap now; retry"), NULL);
    return;
  }
  uint32_t active = cs_keyring_active(kr);
  uint32_t below = q->below_term >= active ? 0 : q->below_term; /* the same selection */
  if (R.inflight) {
    if (R.start.set || R.start_fn != NULL) {
      fn(arg, cs_error_set(CS_EBUSY, "another rewrap request is being started; retry"), NULL);
      return;
    }
    R.start = (pending_start){1, q->below_term, q->rate, fn, arg};
    return; /* begun again when the step in flight is done */
  }
  cs_rewrap_cursor c;
  int rc = cs_rewrap_load(d->store, kr, &c);
  if (rc < 0 && rc != CS_ENOTFOUND) {
    fn(arg, rc, NULL);
    return;
  }
  if (rc == 0 && !c.finished && c.below_term == below && c.target_term == active) {
    /* Running already: join it. */
    if (q->rate)
      R.pending_rate = q->rate;
    cs_info("rewrap: requested again: the running pass continues%s", q->rate ? " at a new rate" : "");
    respond_status(fn, arg);
    schedule(0);
    return;
  }
  cs_batch b;
  cs_batch_init(&b);
  uint64_t rate = q->rate ? q->rate : (rc == 0 && c.below_term == below ? c.rate : 0);
  if ((rc = stage_start(below, rate, &c, &b)) < 0) {
    cs_batch_clear(&b);
    fn(arg, rc, NULL);
    return;
  }
  R.pending_rate = 0;
  R.armed = 1;
  R.sweeps = 0;
  R.running = 1;
  R.start_fn = fn;
  R.start_arg = arg;
  cs_info("rewrap: pass started towards term %u (%llu value(s) under %s, %llu values/s)",
          c.target_term, (unsigned long long)c.total,
          below ? "the selected terms" : "older terms",
          (unsigned long long)(rate ? rate : CS_REWRAP_DEFAULT_RATE));
  if ((rc = submit(&b)) < 0) {
    cs_batch_clear(&b);
    R.start_fn = NULL;
    R.running = 0;
    fn(arg, rc, NULL);
  }
}

/* ---------------------------------------------------------------- retire */

typedef struct retire_req {
  cs_rewrapper_reply_fn fn;
  void *arg;
} retire_req;

static void on_retired(void *arg, int status, cs_seal_result *res) {
  retire_req *rr = arg;
  if (status < 0) {
    rr->fn(rr->arg, status, NULL);
  } else {
    Custos__Response out = CUSTOS__RESPONSE__INIT;
    Custos__RetireTermRes rt = CUSTOS__RETIRE_TERM_RES__INIT;
    rt.term = res->term;
    rt.retirement_time = res->install_time;
    out.result_case = CUSTOS__RESPONSE__RESULT_RETIRE_TERM;
    out.retire_term = &rt;
    rr->fn(rr->arg, 0, &out);
  }
  free(rr);
}

int cs_rewrapper_retire(cs_api_env *d, const Custos__RetireTermReq *q, cs_rewrapper_reply_fn fn,
                        void *arg) {
  if (q->term == 0)
    return cs_error_set(CS_EINVAL, "term 0 is not a data term (terms start at 1)");
  retire_req *rr = malloc(sizeof *rr);
  if (rr == NULL)
    return CS_ENOMEM;
  rr->fn = fn;
  rr->arg = arg;
  int rc = cs_seal_retire(d->seal, q->term, on_retired, rr);
  if (rc < 0) {
    free(rr);
    return rc;
  }
  cs_info("retire: term %u: submitted", q->term);
  return 0;
}

/* ---------------------------------------------------------------- key status */

/* Answers key-status from the counts read (both freed here): every term of
 * the live keyring, on the loop. */
static void answer_key_status(cs_api_env *d, int verify, cs_termcounts *kept,
                              cs_termcounts *scanned, cs_rewrapper_reply_fn fn, void *arg) {
  cs_keyring *kr = cs_seal_keyring(d->seal);
  size_t n = kr != NULL ? cs_keyring_count(kr) : 0;
  Custos__TermStatus *ts = calloc(n ? n : 1, sizeof *ts);
  Custos__TermStatus **ptrs = calloc(n ? n : 1, sizeof *ptrs);
  if (ts == NULL || ptrs == NULL || n == 0) {
    free(ts);
    free(ptrs);
    cs_termcounts_free(kept);
    cs_termcounts_free(scanned);
    fn(arg, n == 0 ? cs_error_set(CS_ESEALED, "server is sealed") : CS_ENOMEM, NULL);
    return;
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__KeyStatusRes ks = CUSTOS__KEY_STATUS_RES__INIT;
  uint64_t known = 0;
  cs_term_info ti;
  for (size_t i = 0; i < n; i++) {
    cs_keyring_info(kr, i, &ti);
    custos__term_status__init(&ts[i]);
    ts[i].term = ti.term;
    ts[i].install_time = ti.install_time;
    ts[i].encryptions = ti.encryptions;
    ts[i].state = (Custos__TermState)ti.state;
    ts[i].activation_time = ti.activation_time;
    ts[i].retirement_time = ti.retirement_time;
    ts[i].values = cs_termcounts_get(kept, ti.term);
    ts[i].scanned_values = cs_termcounts_get(scanned, ti.term);
    known += ts[i].values;
    ptrs[i] = &ts[i];
    if (ti.state == CS_TERM_ACTIVE) {
      ks.term = ti.term;
      ks.install_time = ti.install_time;
      ks.encryptions = ti.encryptions;
    }
  }
  ks.unknown_values = cs_termcounts_total(kept) - known;
  if (verify) {
    ks.verified = 1;
    ks.counts_match = cs_termcounts_equal(kept, scanned);
    if (!ks.counts_match)
      cs_error("key-status --verify: the kept value counts differ from a full scan");
  }
  ks.n_terms = n;
  ks.terms = ptrs;
  cs_staged_key_status staged; /* a staged term: its deadline and who it waits for */
  cs_staged_key_status_fill(d, &ks, &staged);
  res.result_case = CUSTOS__RESPONSE__RESULT_KEY_STATUS;
  res.key_status = &ks;
  fn(arg, 0, &res);
  free(ts);
  free(ptrs);
  cs_termcounts_free(kept);
  cs_termcounts_free(scanned);
}

/* key-status --verify: the full scan reads the whole store, so it runs on
 * a worker thread (one LMDB read transaction; MDB_NOTLS lets any thread
 * read) and the loop keeps serving; the answer is built back on the loop. */
typedef struct verify_job {
  uv_work_t work;
  cs_api_env *d;
  cs_termcounts kept, scanned;
  int rc;
  char detail[256];
  cs_rewrapper_reply_fn fn;
  void *arg;
} verify_job;

static void verify_work(uv_work_t *w) {
  verify_job *j = w->data;
  j->rc = cs_store_term_counts_verify(j->d->store, &j->kept, &j->scanned);
  if (j->rc < 0) /* details are per thread: carry it to the loop */
    snprintf(j->detail, sizeof j->detail, "%s", cs_error_message(j->rc));
}

static void verify_done(uv_work_t *w, int status) {
  verify_job *j = w->data;
  if (status < 0 && j->rc == 0) {
    cs_termcounts_free(&j->kept);
    cs_termcounts_free(&j->scanned);
    j->rc = cs_error_set(CS_EINTERNAL, "the scan was cancelled");
  } else if (j->rc < 0) {
    cs_error_set(j->rc, "%s", j->detail);
  }
  if (j->rc == 0 && *j->d->shutting_down) { /* the seal may be closed by now */
    cs_termcounts_free(&j->kept);
    cs_termcounts_free(&j->scanned);
    j->rc = cs_error_set(CS_EUNAVAIL, "the server is shutting down");
  }
  if (j->rc < 0)
    j->fn(j->arg, j->rc, NULL);
  else
    answer_key_status(j->d, 1, &j->kept, &j->scanned, j->fn, j->arg);
  free(j);
}

void cs_rewrapper_key_status(cs_api_env *d, const Custos__KeyStatusReq *q, cs_rewrapper_reply_fn fn,
                             void *arg) {
  if (cs_seal_keyring(d->seal) == NULL) {
    fn(arg, cs_error_set(CS_ESEALED, "server is sealed"), NULL);
    return;
  }
  cs_termcounts kept, scanned;
  if (q->verify) {
    verify_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
      fn(arg, CS_ENOMEM, NULL);
      return;
    }
    j->d = d;
    j->fn = fn;
    j->arg = arg;
    j->work.data = j;
    if (uv_queue_work(d->loop, &j->work, verify_work, verify_done) != 0) {
      free(j);
      fn(arg, cs_error_set(CS_EINTERNAL, "cannot start the scan"), NULL);
    }
    return;
  }
  int rc = cs_store_term_counts(d->store, &kept);
  if (rc < 0) {
    fn(arg, rc, NULL);
    return;
  }
  cs_termcounts_init(&scanned);
  answer_key_status(d, 0, &kept, &scanned, fn, arg);
}
