/*
 * custos-bench: a load generator for custosd.
 *
 *   custos-bench --connections C (--duration S | --requests N)
 *                --op get|put|mixed[:READ_PERCENT]|status|rotate|seal|unseal
 *                [--value-size B] [--keys K] [--pipeline P] [--verify-percent V]
 *                [--unseal-key KEY] [--format text|json]
 *                [--addr HOST:PORT] [--ca-cert FILE] [--token TOKEN]
 *   custos-bench --connections-only N --hold S [--concurrency H]
 *
 * One libuv loop drives every connection (bconn.c: mbedTLS over memory
 * buffers), each keeping P requests in flight (closed loop).  Latency is
 * measured from the moment a request is queued to the moment its response
 * is decoded, into a log-bucket histogram (hist.c).
 *
 * Honesty rules:
 *  - get and mixed runs first write each of the K keys once (pipelined, on
 *    all connections) and report how long that took;
 *  - every value is derived from its key and a generation number (an 8-byte
 *    header key|gen, then bytes from a PRNG seeded with both), so a sample
 *    of GET results (--verify-percent, default 1) is checked byte for byte
 *    and for freshness: the generation read must be at least the last one
 *    acknowledged when the GET was sent, and at most the last one issued.
 *    Writes to a key always go through the same connection (key % C), so the
 *    server sees them in order.  A mismatch is an error;
 *  - every failed request (error response, dead connection, mismatch) is
 *    counted and reported; the exit status is 1 when there was any.
 */
#define _GNU_SOURCE
#include "addr.h"
#include "tls_policy.h"
#include "cs_error.h"
#include "bconn.h"
#include "hist.h"
#include "custos.pb-c.h"
#include "ip_san.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mbedtls/base64.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/x509_crt.h>

enum op { OP_GET, OP_PUT, OP_MIXED, OP_STATUS, OP_ROTATE, OP_SEAL, OP_UNSEAL };
enum phase { PH_CONNECT, PH_POPULATE, PH_RUN, PH_DONE };

/* One request in flight. */
typedef struct slot {
  uint64_t t0;        /* uv_hrtime when queued */
  uint64_t id;
  uint32_t key;
  uint32_t gen_lo;    /* GET: acked generation when sent; PUT: generation written */
  uint8_t kind;       /* OP_GET / OP_PUT / other */
  uint8_t verify;
} slot;

typedef struct bench_conn {
  csb_conn c;
  unsigned idx;
  slot *ring;         /* FIFO of `pipeline` slots: responses come in order */
  unsigned head, count;
  uint64_t next_id;
  uint32_t pop_next;  /* populate: next key index (idx + C*n) */
  int failed;
  int closed;
} bench_conn;

static struct {
  /* options */
  const char *addr, *ca_file, *token, *unseal_key;
  unsigned conns, pipeline, keys, value_size, read_pct;
  double duration, verify_pct, hold;
  uint64_t requests;
  enum op op;
  const char *op_name;
  int json;
  unsigned only_conns, concurrency;

  /* TLS */
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt ca;
  mbedtls_ssl_config conf;
  char host[256];
  int host_is_ip;
  unsigned char ip[16];
  size_t ip_len;
  struct sockaddr_storage sa;

  uv_loop_t *loop;
  uv_timer_t timer;
  bench_conn *bc;
  unsigned nready, nsettled, nstarted;
  enum phase phase;
  int stopping;

  /* per-key generations */
  uint32_t *issued, *acked;

  uint8_t *unseal_bytes;
  size_t unseal_len;

  /* counters */
  uint64_t t_start, t_end, t_pop_start, t_pop_end;
  uint64_t issued_reqs, done_reqs, errors, verified, pop_done, pop_errors;
  uint64_t conn_errors;
  struct rusage ru0, ru1;
  csb_hist hist;
  char first_errors[5][256];
  unsigned n_first;
  uint64_t rng;
} B;

/* ---------------------------------------------------------------- helpers */

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint32_t rnd(uint32_t n) { return (uint32_t)(splitmix(&B.rng) % n); }

/* The value of generation `gen` of key `key`: key|gen big-endian, then PRNG
 * bytes seeded by both. */
static void make_value(uint8_t *v, size_t len, uint32_t key, uint32_t gen) {
  uint8_t hdr[8] = {key >> 24, key >> 16, key >> 8, key, gen >> 24, gen >> 16, gen >> 8, gen};
  size_t n = len < 8 ? len : 8;
  memcpy(v, hdr, n);
  uint64_t s = ((uint64_t)key << 32 | gen) ^ 0x637573746f73ull;
  for (size_t off = 8; off < len; off += 8) {
    uint64_t r = splitmix(&s);
    size_t m = len - off < 8 ? len - off : 8;
    memcpy(v + off, &r, m);
  }
}

static void key_path(char *buf, size_t cap, uint32_t key) {
  snprintf(buf, cap, "bench/k%07" PRIu32, key);
}

static void record_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record_error(const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (unsigned i = 0; i < B.n_first; i++)
    if (strcmp(B.first_errors[i], msg) == 0)
      return;
  if (B.n_first < 5)
    snprintf(B.first_errors[B.n_first++], sizeof B.first_errors[0], "%s", msg);
}

/* ---------------------------------------------------------------- requests */

static int send_request(bench_conn *bc, Custos__Request *req, const slot *proto) {
  req->id = ++bc->next_id;
  if (B.token != NULL) {
    req->token.data = (uint8_t *)B.token;
    req->token.len = strlen(B.token);
  }
  size_t n = custos__request__get_packed_size(req);
  uint8_t *dst = csb_conn_reserve(&bc->c, 4 + n);
  if (dst == NULL)
    return -1;
  dst[0] = (uint8_t)(n >> 24);
  dst[1] = (uint8_t)(n >> 16);
  dst[2] = (uint8_t)(n >> 8);
  dst[3] = (uint8_t)n;
  custos__request__pack(req, dst + 4);
  csb_conn_commit(&bc->c, 4 + n);
  slot *s = &bc->ring[(bc->head + bc->count) % B.pipeline];
  *s = *proto;
  s->id = req->id;
  s->t0 = uv_hrtime();
  bc->count++;
  return 0;
}

static int send_put(bench_conn *bc, uint32_t key, uint32_t gen, uint8_t kind) {
  char path[32];
  uint8_t value[B.value_size ? B.value_size : 1];
  key_path(path, sizeof path, key);
  make_value(value, B.value_size, key, gen);
  Custos__KvPair pair = CUSTOS__KV_PAIR__INIT, *pairs[1] = {&pair};
  pair.key = "v";
  pair.value.data = value;
  pair.value.len = B.value_size;
  Custos__KvPutReq put = CUSTOS__KV_PUT_REQ__INIT;
  put.path = path;
  put.n_data = 1;
  put.data = pairs;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  req.op_case = CUSTOS__REQUEST__OP_KV_PUT;
  req.kv_put = &put;
  slot s = {.key = key, .gen_lo = gen, .kind = kind};
  return send_request(bc, &req, &s);
}

/* Issues the next request of the timed run on `bc`. */
static int issue_one(bench_conn *bc) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  slot s = {.kind = (uint8_t)B.op};
  enum op op = B.op;
  if (op == OP_MIXED)
    op = rnd(100) < B.read_pct ? OP_GET : OP_PUT;
  B.issued_reqs++;
  switch (op) {
  case OP_GET: {
    char path[32];
    Custos__KvGetReq get = CUSTOS__KV_GET_REQ__INIT;
    s.key = rnd(B.keys);
    s.gen_lo = B.acked[s.key];
    s.kind = OP_GET;
    s.verify = B.verify_pct > 0 && (double)rnd(1000000) < B.verify_pct * 10000.0;
    key_path(path, sizeof path, s.key);
    get.path = path;
    req.op_case = CUSTOS__REQUEST__OP_KV_GET;
    req.kv_get = &get;
    return send_request(bc, &req, &s);
  }
  case OP_PUT: {
    /* Keys owned by this connection: idx, idx + C, idx + 2C, ... */
    uint32_t owned = (B.keys - bc->idx + B.conns - 1) / B.conns;
    uint32_t key = bc->idx + B.conns * rnd(owned);
    return send_put(bc, key, ++B.issued[key], OP_PUT);
  }
  case OP_STATUS: {
    Custos__StatusReq st = CUSTOS__STATUS_REQ__INIT;
    req.op_case = CUSTOS__REQUEST__OP_STATUS;
    req.status = &st;
    return send_request(bc, &req, &s);
  }
  case OP_ROTATE: {
    Custos__RotateReq r = CUSTOS__ROTATE_REQ__INIT;
    req.op_case = CUSTOS__REQUEST__OP_ROTATE;
    req.rotate = &r;
    return send_request(bc, &req, &s);
  }
  case OP_SEAL: {
    Custos__SealReq r = CUSTOS__SEAL_REQ__INIT;
    req.op_case = CUSTOS__REQUEST__OP_SEAL;
    req.seal = &r;
    return send_request(bc, &req, &s);
  }
  case OP_UNSEAL: {
    Custos__UnsealReq r = CUSTOS__UNSEAL_REQ__INIT;
    r.key.data = B.unseal_bytes;
    r.key.len = B.unseal_len;
    req.op_case = CUSTOS__REQUEST__OP_UNSEAL;
    req.unseal = &r;
    return send_request(bc, &req, &s);
  }
  default:
    return -1;
  }
}

static int may_issue(void) {
  if (B.stopping)
    return 0;
  if (B.requests > 0 && B.issued_reqs >= B.requests)
    return 0;
  return 1;
}

/* Populate: the next key of this connection, if any. */
static int populate_more(bench_conn *bc) {
  if (bc->pop_next >= B.keys)
    return 0;
  uint32_t key = bc->pop_next;
  bc->pop_next += B.conns;
  B.issued[key] = 1;
  return send_put(bc, key, 1, OP_PUT) < 0 ? -1 : 1;
}

/* ---------------------------------------------------------------- phases */

static void start_phase(enum phase ph);
static void close_all(void);

static unsigned live_conns(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < B.conns; i++)
    n += !B.bc[i].failed;
  return n;
}

static unsigned inflight_total(void) {
  unsigned n = 0;
  for (unsigned i = 0; i < B.conns; i++)
    if (!B.bc[i].failed)
      n += B.bc[i].count;
  return n;
}

static void on_duration(uv_timer_t *t) {
  (void)t;
  B.stopping = 1;
  if (inflight_total() == 0 && B.phase == PH_RUN)
    start_phase(PH_DONE);
}

/* Called after every response and every connection failure. */
static void check_phase_end(void) {
  if (inflight_total() != 0)
    return;
  if (B.phase == PH_POPULATE)
    start_phase(PH_RUN);
  else if (B.phase == PH_RUN && (B.stopping || !may_issue() || live_conns() == 0))
    start_phase(PH_DONE);
}

static void start_phase(enum phase ph) {
  B.phase = ph;
  switch (ph) {
  case PH_POPULATE:
    B.t_pop_start = uv_hrtime();
    for (unsigned i = 0; i < B.conns; i++) {
      bench_conn *bc = &B.bc[i];
      if (bc->failed)
        continue;
      while (bc->count < B.pipeline && populate_more(bc) > 0)
        ;
      csb_conn_flush(&bc->c);
    }
    check_phase_end();
    break;
  case PH_RUN:
    if (B.t_pop_start != 0)
      B.t_pop_end = uv_hrtime();
    getrusage(RUSAGE_SELF, &B.ru0);
    B.t_start = uv_hrtime();
    if (B.duration > 0)
      uv_timer_start(&B.timer, on_duration, (uint64_t)(B.duration * 1000), 0);
    for (unsigned i = 0; i < B.conns; i++) {
      bench_conn *bc = &B.bc[i];
      if (bc->failed)
        continue;
      while (bc->count < B.pipeline && may_issue())
        if (issue_one(bc) < 0)
          break;
      csb_conn_flush(&bc->c);
    }
    check_phase_end();
    break;
  case PH_DONE:
    B.t_end = uv_hrtime();
    getrusage(RUSAGE_SELF, &B.ru1);
    uv_timer_stop(&B.timer);
    close_all();
    break;
  default:
    break;
  }
}

/* ---------------------------------------------------------------- responses */

static int check_value(const slot *s, const Custos__KvGetRes *g) {
  const Custos__KvPair *p = NULL;
  for (size_t i = 0; g != NULL && i < g->n_data; i++)
    if (g->data[i]->key != NULL && strcmp(g->data[i]->key, "v") == 0)
      p = g->data[i];
  if (p == NULL) {
    record_error("verify: key %" PRIu32 ": no field v in the response", s->key);
    return -1;
  }
  if (p->value.len != B.value_size || p->value.len < 8) {
    record_error("verify: key %" PRIu32 ": value of %zu bytes, expected %u", s->key,
                 p->value.len, B.value_size);
    return -1;
  }
  const uint8_t *v = p->value.data;
  uint32_t key = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
  uint32_t gen = (uint32_t)v[4] << 24 | (uint32_t)v[5] << 16 | (uint32_t)v[6] << 8 | v[7];
  if (key != s->key) {
    record_error("verify: read key %" PRIu32 " but got the value of key %" PRIu32, s->key, key);
    return -1;
  }
  if (gen < s->gen_lo || gen > B.issued[key]) {
    record_error("verify: key %" PRIu32 ": generation %" PRIu32 " is stale or unknown "
                 "(acknowledged %" PRIu32 ", issued %" PRIu32 ")", key, gen, s->gen_lo,
                 B.issued[key]);
    return -1;
  }
  uint8_t want[B.value_size];
  make_value(want, B.value_size, key, gen);
  if (memcmp(want, v, B.value_size) != 0) {
    record_error("verify: key %" PRIu32 " generation %" PRIu32 ": value bytes differ", key, gen);
    return -1;
  }
  return 0;
}

static void on_frame(csb_conn *c, const uint8_t *body, size_t len) {
  bench_conn *bc = c->data;
  uint64_t now = uv_hrtime();
  if (bc->count == 0) {
    record_error("response without a request");
    B.errors++;
    return;
  }
  slot s = bc->ring[bc->head];
  bc->head = (bc->head + 1) % B.pipeline;
  bc->count--;

  int ok = 1;
  Custos__Response *r = custos__response__unpack(NULL, len, body);
  if (r == NULL) {
    record_error("malformed response");
    ok = 0;
  } else if (r->id != s.id && !(r->id == 0 && r->error != NULL)) {
    record_error("response id %" PRIu64 " for request %" PRIu64, r->id, s.id);
    ok = 0;
  } else if (r->error != NULL && r->error->code != CUSTOS__ERROR_CODE__OK) {
    record_error("server error %d: %s", (int)r->error->code,
                 r->error->message ? r->error->message : "");
    ok = 0;
  } else if (s.kind == OP_GET && s.verify) {
    if (r->result_case != CUSTOS__RESPONSE__RESULT_KV_GET || check_value(&s, r->kv_get) < 0)
      ok = 0;
    else
      B.verified++;
  } else if (s.kind == OP_PUT && s.gen_lo > B.acked[s.key]) {
    B.acked[s.key] = s.gen_lo;
  }
  if (r != NULL)
    custos__response__free_unpacked(r, NULL);

  if (B.phase == PH_POPULATE) {
    B.pop_done++;
    if (!ok)
      B.pop_errors++;
    if (populate_more(bc) < 0)
      record_error("out of memory");
  } else if (B.phase == PH_RUN) {
    B.done_reqs++;
    if (ok)
      csb_hist_record(&B.hist, now - s.t0);
    else
      B.errors++;
    if (may_issue())
      issue_one(bc);
  }
  /* bconn flushes the requests queued here once the read is processed. */
  if (bc->count == 0)
    check_phase_end();
}

static void on_ready(csb_conn *c) {
  (void)c;
  B.nready++;
  B.nsettled++;
  if (B.nsettled == B.conns) {
    if (B.op == OP_GET || B.op == OP_MIXED)
      start_phase(PH_POPULATE);
    else
      start_phase(PH_RUN);
  }
}

static void on_error(csb_conn *c, const char *msg) {
  bench_conn *bc = c->data;
  if (bc->failed)
    return;
  bc->failed = 1;
  record_error("connection %u: %s", bc->idx, msg);
  B.conn_errors++;
  if (!c->ready) {
    B.nsettled++;
    if (B.nsettled == B.conns && B.phase == PH_CONNECT) {
      start_phase(B.op == OP_GET || B.op == OP_MIXED ? PH_POPULATE : PH_RUN);
      return;
    }
  }
  /* What was in flight on it is lost: count it. */
  if (B.phase == PH_RUN) {
    B.errors += bc->count;
    B.done_reqs += bc->count;
  } else if (B.phase == PH_POPULATE) {
    B.pop_errors += bc->count;
  }
  bc->count = 0;
  if (B.phase == PH_POPULATE || B.phase == PH_RUN)
    check_phase_end();
}

static void on_conn_closed(uv_handle_t *h) {
  (void)h;
}

static void on_timer_closed(uv_handle_t *h) { (void)h; }

static void close_all(void) {
  for (unsigned i = 0; i < B.conns; i++)
    if (!B.bc[i].closed) {
      B.bc[i].closed = 1;
      csb_conn_close(&B.bc[i].c, on_conn_closed);
    }
  uv_close((uv_handle_t *)&B.timer, on_timer_closed);
}

/* ---------------------------------------------------------------- reporting */

static double ms(uint64_t ns) { return (double)ns / 1e6; }

static double cpu_s(const struct rusage *a, const struct rusage *b) {
  return (double)(b->ru_utime.tv_sec - a->ru_utime.tv_sec) +
         (double)(b->ru_utime.tv_usec - a->ru_utime.tv_usec) / 1e6 +
         (double)(b->ru_stime.tv_sec - a->ru_stime.tv_sec) +
         (double)(b->ru_stime.tv_usec - a->ru_stime.tv_usec) / 1e6;
}

static int report(void) {
  double elapsed = B.t_end > B.t_start ? (double)(B.t_end - B.t_start) / 1e9 : 0;
  uint64_t ok = B.hist.count;
  double ops = elapsed > 0 ? (double)ok / elapsed : 0;
  double pop = B.t_pop_end > B.t_pop_start ? (double)(B.t_pop_end - B.t_pop_start) / 1e9 : 0;
  double cpu = elapsed > 0 ? 100.0 * cpu_s(&B.ru0, &B.ru1) / elapsed : 0;
  uint64_t errors = B.errors + B.pop_errors + (B.nready < B.conns ? B.conns - B.nready : 0);
  if (B.json) {
    printf("{\"op\":\"%s\",\"connections\":%u,\"pipeline\":%u,\"value_size\":%u,\"keys\":%u,"
           "\"requests\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"elapsed_s\":%.3f,"
           "\"ops_per_sec\":%.1f,\"mean_ms\":%.3f,\"p50_ms\":%.3f,\"p99_ms\":%.3f,"
           "\"p999_ms\":%.3f,\"max_ms\":%.3f,\"min_ms\":%.3f,\"populate_s\":%.3f,"
           "\"populated\":%" PRIu64 ",\"verified\":%" PRIu64 ",\"client_cpu_pct\":%.1f}\n",
           B.op_name, B.conns, B.pipeline, B.value_size, B.keys, B.done_reqs, errors, elapsed,
           ops, ok ? B.hist.sum / (double)ok / 1e6 : 0, ms(csb_hist_quantile(&B.hist, 0.50)),
           ms(csb_hist_quantile(&B.hist, 0.99)), ms(csb_hist_quantile(&B.hist, 0.999)),
           ms(B.hist.max), ok ? ms(B.hist.min) : 0, pop, B.pop_done, B.verified, cpu);
  } else {
    printf("custos-bench: %s, %u connections x pipeline %u, %u-byte values, %u keys\n",
           B.op_name, B.conns, B.pipeline, B.value_size, B.keys);
    if (B.t_pop_end)
      printf("  populate   %" PRIu64 " keys in %.3f s (%.0f puts/s)\n", B.pop_done, pop,
             pop > 0 ? (double)B.pop_done / pop : 0);
    printf("  requests   %" PRIu64 " in %.3f s, %" PRIu64 " errors\n", B.done_reqs, elapsed, errors);
    printf("  throughput %.0f ops/s\n", ops);
    printf("  latency ms mean %.3f  p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
           ok ? B.hist.sum / (double)ok / 1e6 : 0, ms(csb_hist_quantile(&B.hist, 0.50)),
           ms(csb_hist_quantile(&B.hist, 0.99)), ms(csb_hist_quantile(&B.hist, 0.999)),
           ms(B.hist.max));
    printf("  verified   %" PRIu64 " GET values\n", B.verified);
    printf("  client cpu %.0f%% of one core\n", cpu);
  }
  for (unsigned i = 0; i < B.n_first; i++)
    fprintf(stderr, "custos-bench: error: %s\n", B.first_errors[i]);
  return errors > 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- set-up */

static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  (void)ctx;
  if (depth != 0 || !B.host_is_ip)
    return 0;
  if (cs_x509_ip_san_match(crt, B.ip, B.ip_len))
    *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
  else
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  return 0;
}

static void die_usage(const char *msg) __attribute__((noreturn));
static void die_usage(const char *msg) {
  fprintf(stderr,
          "custos-bench: %s\n"
          "usage: custos-bench --connections C (--duration S | --requests N)\n"
          "         --op get|put|mixed[:READ_PERCENT]|status|rotate|seal|unseal\n"
          "         [--value-size B] [--keys K] [--pipeline P] [--verify-percent V]\n"
          "         [--unseal-key KEY] [--format text|json]\n"
          "         [--addr HOST:PORT] [--ca-cert FILE] [--token TOKEN]\n"
          "       custos-bench --connections-only N --hold S [--concurrency H]\n",
          msg);
  exit(2);
}

static void fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("custos-bench: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void setup_tls(void) {
  mbedtls_entropy_init(&B.entropy);
  mbedtls_ctr_drbg_init(&B.drbg);
  mbedtls_x509_crt_init(&B.ca);
  mbedtls_ssl_config_init(&B.conf);
  static const unsigned char pers[] = "custos-bench";
  if (mbedtls_ctr_drbg_seed(&B.drbg, mbedtls_entropy_func, &B.entropy, pers, sizeof pers - 1) != 0)
    fatal("cannot seed the random generator");
  if (B.ca_file == NULL)
    fatal("no CA certificate (--ca-cert FILE or CUSTOS_CACERT)");
  if (mbedtls_x509_crt_parse_file(&B.ca, B.ca_file) < 0 || B.ca.version == 0)
    fatal("cannot load CA certificate %s", B.ca_file);
  /* The client profile of the one TLS policy (common/tls_policy.h), so the
   * bench measures what real clients negotiate. */
  mbedtls_ssl_config_free(&B.conf);
  if (cs_tls_policy_client(&B.conf, &B.drbg, &B.ca, NULL, NULL) != 0)
    fatal("cannot set up TLS: %s", cs_error_message(CS_ETLS));
  mbedtls_ssl_conf_verify(&B.conf, verify_cb, NULL);
}

static void resolve(void) {
  cs_addr a;
  char port[8];
  if (cs_addr_parse(B.addr, &a) != 0)
    fatal("bad %s", cs_error_message(CS_EINVAL));
  if (strlen(a.host) >= sizeof B.host)
    fatal("bad address %s: host too long", B.addr);
  snprintf(B.host, sizeof B.host, "%s", a.host);
  snprintf(port, sizeof port, "%u", (unsigned)a.port);
  if (inet_pton(AF_INET, B.host, B.ip) == 1) {
    B.host_is_ip = 1;
    B.ip_len = 4;
  } else if (inet_pton(AF_INET6, B.host, B.ip) == 1) {
    B.host_is_ip = 1;
    B.ip_len = 16;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
  int rc = getaddrinfo(B.host, port, &hints, &res);
  if (rc != 0)
    fatal("cannot resolve %s: %s", B.host, gai_strerror(rc));
  memcpy(&B.sa, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
}

static void raise_nofile(unsigned need) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return;
  rlim_t want = (rlim_t)need + 64;
  if (rl.rlim_cur >= want)
    return;
  if (rl.rlim_max < want) {
    struct rlimit r2 = {want, want};
    if (setrlimit(RLIMIT_NOFILE, &r2) == 0)
      return;
  }
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < want)
    fprintf(stderr, "custos-bench: warning: open files limited to %llu, %u connections wanted\n",
            (unsigned long long)rl.rlim_cur, need);
}

static int parse_unseal_key(const char *k) {
  size_t n = strlen(k), i;
  for (i = 0; i < n && strchr("0123456789abcdefABCDEF", k[i]) != NULL; i++)
    ;
  if (i == n && n % 2 == 0) {
    B.unseal_len = n / 2;
    B.unseal_bytes = malloc(B.unseal_len + 1);
    for (i = 0; i < B.unseal_len; i++) {
      unsigned v;
      sscanf(k + 2 * i, "%2x", &v);
      B.unseal_bytes[i] = (uint8_t)v;
    }
    return 0;
  }
  B.unseal_bytes = malloc(n + 1);
  return mbedtls_base64_decode(B.unseal_bytes, n + 1, &B.unseal_len, (const unsigned char *)k, n) == 0
             ? 0 : -1;
}

/* ---------------------------------------------------------------- connections-only */

static uint64_t hold_ok, hold_failed;

static void hold_start_next(void);

static void hold_ready(csb_conn *c) {
  (void)c;
  hold_ok++;
  B.nsettled++;
  hold_start_next();
}

static void hold_frame(csb_conn *c, const uint8_t *body, size_t len) {
  (void)c;
  (void)body;
  (void)len;
}

static void hold_error(csb_conn *c, const char *msg) {
  bench_conn *bc = c->data;
  if (bc->failed)
    return;
  bc->failed = 1;
  record_error("%s", msg);
  if (c->ready)
    hold_ok--;
  else
    B.nsettled++;
  hold_failed++;
  hold_start_next();
}

static const csb_conn_cb hold_cb = {hold_ready, hold_frame, hold_error};

static void on_hold_done(uv_timer_t *t) {
  (void)t;
  B.conns = B.only_conns;
  close_all();
}

static void hold_start_next(void) {
  while (B.nstarted < B.only_conns && B.nstarted - B.nsettled < B.concurrency) {
    bench_conn *bc = &B.bc[B.nstarted];
    bc->idx = B.nstarted++;
    int rc = csb_conn_start(&bc->c, B.loop, &B.conf, (struct sockaddr *)&B.sa, &hold_cb, bc);
    if (rc == 0 && !B.host_is_ip)
      mbedtls_ssl_set_hostname(&bc->c.ssl, B.host);
    if (rc < 0) {
      bc->failed = 1;
      B.nsettled++;
      hold_failed++;
      record_error("cannot start connection: %s", uv_strerror(rc));
    }
  }
  if (B.nsettled == B.only_conns && B.phase == PH_CONNECT) {
    B.phase = PH_RUN;
    fprintf(stderr, "custos-bench: holding %" PRIu64 " connections (%" PRIu64 " failed) for %.0f s\n",
            hold_ok, hold_failed, B.hold);
    uv_timer_start(&B.timer, on_hold_done, (uint64_t)(B.hold * 1000), 0);
  }
}

static int run_hold(void) {
  raise_nofile(B.only_conns);
  B.bc = calloc(B.only_conns, sizeof *B.bc);
  if (B.bc == NULL)
    fatal("out of memory");
  B.conns = 0; /* close_all: nothing until the hold is over */
  uint64_t t0 = uv_hrtime();
  hold_start_next();
  uv_run(B.loop, UV_RUN_DEFAULT);
  double secs = (double)(uv_hrtime() - t0) / 1e9;
  if (B.json)
    printf("{\"connections\":%u,\"ok\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"hold_s\":%.0f,"
           "\"elapsed_s\":%.1f}\n", B.only_conns, hold_ok, hold_failed, B.hold, secs);
  else
    printf("custos-bench: %" PRIu64 " of %u TLS connections held for %.0f s (%" PRIu64 " failed)\n",
           hold_ok, B.only_conns, B.hold, hold_failed);
  for (unsigned i = 0; i < B.n_first; i++)
    fprintf(stderr, "custos-bench: error: %s\n", B.first_errors[i]);
  return hold_failed > 0 ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static unsigned long parse_num(const char *s, const char *what) {
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || s[0] == '-' || s[0] == '\0') {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: not a number: %s", what, s);
    die_usage(msg);
  }
  return v;
}

static void parse_op(const char *s) {
  B.op_name = s;
  if (strcmp(s, "get") == 0)
    B.op = OP_GET;
  else if (strcmp(s, "put") == 0)
    B.op = OP_PUT;
  else if (strncmp(s, "mixed", 5) == 0 && (s[5] == '\0' || s[5] == ':')) {
    B.op = OP_MIXED;
    B.read_pct = s[5] == ':' ? (unsigned)parse_num(s + 6, "--op mixed:READ_PERCENT") : 90;
    if (B.read_pct > 100)
      die_usage("--op mixed:READ_PERCENT must be 0..100");
  } else if (strcmp(s, "status") == 0)
    B.op = OP_STATUS;
  else if (strcmp(s, "rotate") == 0)
    B.op = OP_ROTATE;
  else if (strcmp(s, "seal") == 0)
    B.op = OP_SEAL;
  else if (strcmp(s, "unseal") == 0)
    B.op = OP_UNSEAL;
  else
    die_usage("unknown --op");
}

int main(int argc, char **argv) {
  static const struct option longopts[] = {
      {"connections", required_argument, NULL, 'c'},
      {"duration", required_argument, NULL, 'd'},
      {"requests", required_argument, NULL, 'n'},
      {"op", required_argument, NULL, 'o'},
      {"value-size", required_argument, NULL, 'v'},
      {"keys", required_argument, NULL, 'k'},
      {"pipeline", required_argument, NULL, 'p'},
      {"verify-percent", required_argument, NULL, 'V'},
      {"format", required_argument, NULL, 'f'},
      {"addr", required_argument, NULL, 'a'},
      {"ca-cert", required_argument, NULL, 'C'},
      {"token", required_argument, NULL, 't'},
      {"unseal-key", required_argument, NULL, 'u'},
      {"connections-only", required_argument, NULL, 'N'},
      {"hold", required_argument, NULL, 'H'},
      {"concurrency", required_argument, NULL, 'Q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  B.addr = getenv("CUSTOS_ADDR");
  B.ca_file = getenv("CUSTOS_CACERT");
  B.token = getenv("CUSTOS_TOKEN");
  B.unseal_key = getenv("CUSTOS_UNSEAL_KEY");
  B.conns = 1;
  B.pipeline = 1;
  B.keys = 1000;
  B.value_size = 256;
  B.verify_pct = 1.0;
  B.concurrency = 64;
  B.op_name = "get";
  int opt;
  while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (opt) {
    case 'c': B.conns = (unsigned)parse_num(optarg, "--connections"); break;
    case 'd': B.duration = atof(optarg); if (B.duration <= 0) die_usage("--duration must be > 0"); break;
    case 'n': B.requests = parse_num(optarg, "--requests"); break;
    case 'o': parse_op(optarg); break;
    case 'v': B.value_size = (unsigned)parse_num(optarg, "--value-size"); break;
    case 'k': B.keys = (unsigned)parse_num(optarg, "--keys"); break;
    case 'p': B.pipeline = (unsigned)parse_num(optarg, "--pipeline"); break;
    case 'V': B.verify_pct = atof(optarg); break;
    case 'f':
      if (strcmp(optarg, "json") == 0) B.json = 1;
      else if (strcmp(optarg, "text") == 0 || strcmp(optarg, "table") == 0) B.json = 0;
      else die_usage("--format must be text or json");
      break;
    case 'a': B.addr = optarg; break;
    case 'C': B.ca_file = optarg; break;
    case 't': B.token = optarg; break;
    case 'u': B.unseal_key = optarg; break;
    case 'N': B.only_conns = (unsigned)parse_num(optarg, "--connections-only"); break;
    case 'H': B.hold = atof(optarg); break;
    case 'Q': B.concurrency = (unsigned)parse_num(optarg, "--concurrency"); break;
    case 'h': die_usage("help");
    default: die_usage("bad option");
    }
  }
  if (optind != argc)
    die_usage("unexpected argument");
  if (B.addr == NULL || B.addr[0] == '\0')
    B.addr = "127.0.0.1:7200";
  if (B.token != NULL && B.token[0] == '\0')
    B.token = NULL;
  signal(SIGPIPE, SIG_IGN);
  B.rng = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  setup_tls();
  resolve();
  B.loop = uv_default_loop();
  uv_timer_init(B.loop, &B.timer);

  if (B.only_conns > 0) {
    if (B.concurrency == 0)
      die_usage("--concurrency must be > 0");
    return run_hold();
  }

  if (B.conns == 0 || B.conns > 100000)
    die_usage("--connections must be 1..100000");
  if (B.pipeline == 0 || B.pipeline > 100000)
    die_usage("--pipeline must be 1..100000");
  if ((B.duration > 0) == (B.requests > 0))
    die_usage("give exactly one of --duration and --requests");
  if (B.op == OP_GET || B.op == OP_PUT || B.op == OP_MIXED) {
    if (B.keys == 0)
      die_usage("--keys must be > 0");
    if (B.value_size < 8 || B.value_size > 1024 * 1024)
      die_usage("--value-size must be 8..1048576 (8 bytes carry the key and generation)");
    if (B.op != OP_GET && B.keys < B.conns)
      die_usage("--keys must be >= --connections for writes (each key has one writer)");
  }
  if (B.op == OP_UNSEAL) {
    if (B.unseal_key == NULL)
      die_usage("--op unseal needs --unseal-key KEY (or CUSTOS_UNSEAL_KEY)");
    if (parse_unseal_key(B.unseal_key) < 0)
      die_usage("--unseal-key: not hex or base64");
  }
  raise_nofile(B.conns);
  csb_hist_init(&B.hist);
  B.issued = calloc(B.keys ? B.keys : 1, sizeof *B.issued);
  B.acked = calloc(B.keys ? B.keys : 1, sizeof *B.acked);
  B.bc = calloc(B.conns, sizeof *B.bc);
  if (B.issued == NULL || B.acked == NULL || B.bc == NULL)
    fatal("out of memory");
  static const csb_conn_cb cb = {on_ready, on_frame, on_error};
  for (unsigned i = 0; i < B.conns; i++) {
    bench_conn *bc = &B.bc[i];
    bc->idx = i;
    bc->pop_next = i;
    bc->ring = calloc(B.pipeline, sizeof *bc->ring);
    if (bc->ring == NULL)
      fatal("out of memory");
    int rc = csb_conn_start(&bc->c, B.loop, &B.conf, (struct sockaddr *)&B.sa, &cb, bc);
    if (rc < 0)
      fatal("cannot start connection %u: %s", i, uv_strerror(rc));
    if (!B.host_is_ip)
      mbedtls_ssl_set_hostname(&bc->c.ssl, B.host);
  }
  uv_run(B.loop, UV_RUN_DEFAULT);
  if (B.phase != PH_DONE)
    fatal("internal error: loop ended in phase %d", (int)B.phase);
  return report();
}
