/*
 * custos-pipe: a pipelining test client for the black-box tests (linked with
 * client/lib, never installed).  It drives one connection in ways the CLI
 * cannot: many requests in flight, a client that stops reading, a sequence
 * of key operations as fast as one connection allows.
 *
 *   custos-pipe [--addr A] [--cacert F] [--token T] MODE ARGS...
 *
 *   model ROUNDS DEPTH KEYS SEED [MAXLEN]
 *       Pipelines ROUNDS x DEPTH random puts, gets and deletes of KEYS keys
 *       (kv pipe/k<N>) and checks every answer against a sequential model
 *       (requests on one connection take effect in order).  With MAXLEN,
 *       each value put is 1 to MAXLEN bytes long (so that the answers of one
 *       read fill and overflow the server's 16 KiB batch of answers).  Exit 1
 *       on any mismatch.
 *   flood N PATH
 *       Sends N GETs of PATH without reading, prints "sent N", waits for a
 *       line on stdin, then reads the N answers and checks that each is a
 *       success with the same value length.  Prints "received N BYTES".
 *   burst N PATH
 *       After one get, sends N GETs of PATH with one TLS write (so that
 *       they reach the server in one read), then reads the N answers and
 *       checks that each is a success.  Prints "burst N ok".
 *   puts PATH[@FILE]...
 *       After one get (so that the connection is past the pre-authentication
 *       frame limit), pipelines one put per PATH (one field "v": "x", or the
 *       contents of FILE), then prints one line per answer: "PATH ok" or
 *       "PATH error CODE MESSAGE".
 *   sealput N PREFIX
 *       After one get, pipelines a seal and then N puts of PREFIX/<i> (they
 *       wait for the seal's answer: only puts may overtake puts), then
 *       prints one line per answer: "seal ok|error CODE MESSAGE" and
 *       "PREFIX/<i> ok|error CODE MESSAGE".
 *   oneshot seal|get|put PATH
 *       After one get, prints "ready", waits for a line on stdin, sends one
 *       request (PATH is ignored for seal; a put writes "v": "x"), and
 *       prints its answer line as sealput does.  Two of them, released
 *       while the server is stopped (SIGSTOP), reach it in one loop turn.
 *   putfile PATH FILE
 *       Puts the contents of FILE as field "v" of PATH, after one small
 *       request so that the connection is past the pre-authentication frame
 *       limit.
 *   keyloop N SECONDS SHARE_HEX
 *       Runs up to N steps (at most SECONDS) of: kv put, rotate, rekey init
 *       (1 share), rekey update with the current share (one-share key set);
 *       prints the last share ("share HEX") at the end;
 *       waits for each answer before the next request.  Prints the number of
 *       steps and of failed requests with their messages; exit 1 on any.
 *       With PUTS > 0 (keyloop N SECONDS SHARE_HEX PUTS), each step first
 *       pipelines PUTS puts (so that automatic rotation by operation count
 *       comes due at every tick).
 */
#define _GNU_SOURCE
#include "custos_client.h"
#include "wire.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "custos-pipe: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

/* ---------------------------------------------------------------- requests */

typedef struct req_buf {
  Custos__Request req;
  union {
    Custos__KvPutReq put;
    Custos__KvGetReq get;
    Custos__KvDeleteReq del;
    Custos__RotateReq rot;
    Custos__RekeyInitReq rki;
    Custos__RekeyUpdateReq rku;
  } u;
  Custos__KvPair pair, *pairs[1];
} req_buf;

static void make_put(req_buf *b, const char *path, const char *val) {
  custos__request__init(&b->req);
  custos__kv_put_req__init(&b->u.put);
  custos__kv_pair__init(&b->pair);
  b->pair.key = "v";
  b->pair.value.data = (uint8_t *)val;
  b->pair.value.len = strlen(val);
  b->pairs[0] = &b->pair;
  b->u.put.path = (char *)path;
  b->u.put.n_data = 1;
  b->u.put.data = b->pairs;
  b->req.op_case = CUSTOS__REQUEST__OP_KV_PUT;
  b->req.kv_put = &b->u.put;
}

static void make_get(req_buf *b, const char *path) {
  custos__request__init(&b->req);
  custos__kv_get_req__init(&b->u.get);
  b->u.get.path = (char *)path;
  b->req.op_case = CUSTOS__REQUEST__OP_KV_GET;
  b->req.kv_get = &b->u.get;
}

static void make_del(req_buf *b, const char *path) {
  custos__request__init(&b->req);
  custos__kv_delete_req__init(&b->u.del);
  b->u.del.path = (char *)path;
  b->req.op_case = CUSTOS__REQUEST__OP_KV_DELETE;
  b->req.kv_delete = &b->u.del;
}

static cs_client *cli;

static void send_req(req_buf *b) {
  if (cs_client_send(cli, &b->req) < 0)
    die("send: %s", cs_client_errmsg(cli));
}

static Custos__Response *recv_res(void) {
  Custos__Response *res;
  if (cs_client_recv(cli, &res) < 0)
    die("recv: %s", cs_client_errmsg(cli));
  return res;
}

/* One request, one answer (no redirects: the tests talk to the active). */
static Custos__Response *call(req_buf *b) {
  send_req(b);
  return recv_res();
}

static const char *err_msg(const Custos__Response *r) {
  return r->error != NULL && r->error->message != NULL ? r->error->message : "";
}

/* Prints one answer line: "WHAT ok" or "WHAT error CODE MESSAGE". */
static void print_answer(const char *what, const Custos__Response *res) {
  if (res->error == NULL)
    printf("%s ok\n", what);
  else
    printf("%s error %d %s\n", what, (int)res->error->code, err_msg(res));
}

/* ---------------------------------------------------------------- model */

typedef struct rng {
  uint64_t s;
} rng;

static uint32_t next_rand(rng *r) {
  r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
  return (uint32_t)(r->s >> 33);
}

enum { OP_PUT, OP_GET, OP_DEL };

typedef struct pending {
  int op;
  unsigned key;
  int expect_found; /* delete: whether the key existed (a get's value: mode_model's expect) */
} pending;

/* A value of the model: "v<seq>-" and then a pattern, len bytes in all
 * (at least the prefix), into out (room for len + 1). */
static void make_value(char *out, size_t cap, unsigned long seq, size_t len) {
  int n = snprintf(out, cap, "v%lu-", seq);
  size_t i = n > 0 ? (size_t)n : 0;
  for (; i < len && i + 1 < cap; i++)
    out[i] = (char)('a' + (seq + i) % 26);
  out[i < cap ? i : cap - 1] = '\0';
}

static int mode_model(unsigned rounds, unsigned depth, unsigned keys, uint64_t seed,
                      size_t maxlen) {
  size_t cap = maxlen + 32; /* every value fits, and "init-<k>" */
  char *model = calloc(keys, cap); /* key k at model + k * cap; "" = absent */
  char (*paths)[32] = calloc(keys, sizeof *paths);
  pending *pend = calloc(depth, sizeof *pend);
  req_buf *bufs = calloc(depth, sizeof *bufs);
  char *vals = calloc(depth, cap), *expect = calloc(depth, cap);
  if (!model || !paths || !pend || !bufs || !vals || !expect)
    die("out of memory");
  rng r = {seed};
  unsigned long mismatches = 0, seq = 0, nput = 0, nget = 0, ndel = 0;
  for (unsigned k = 0; k < keys; k++) {
    snprintf(paths[k], sizeof paths[k], "pipe/k%u", k);
    /* Known start: every key present with a known value (sequentially). */
    snprintf(model + k * cap, cap, "init-%u", k);
    make_put(&bufs[0], paths[k], model + k * cap);
    Custos__Response *res = call(&bufs[0]);
    if (res->error != NULL)
      die("initial put of %s: %s", paths[k], err_msg(res));
    cs_wire_response_free(res);
  }
  for (unsigned round = 0; round < rounds; round++) {
    for (unsigned i = 0; i < depth; i++) {
      pending *p = &pend[i];
      p->key = next_rand(&r) % keys;
      unsigned x = next_rand(&r) % 10;
      p->op = x < 4 ? OP_PUT : x < 8 ? OP_GET : OP_DEL;
      char *mk = model + p->key * cap;
      switch (p->op) {
      case OP_PUT:
        make_value(vals + i * cap, cap, ++seq, maxlen ? 1 + next_rand(&r) % maxlen : 0);
        make_put(&bufs[i], paths[p->key], vals + i * cap);
        memcpy(mk, vals + i * cap, cap);
        nput++;
        break;
      case OP_GET:
        make_get(&bufs[i], paths[p->key]);
        memcpy(expect + i * cap, mk, cap);
        nget++;
        break;
      default:
        make_del(&bufs[i], paths[p->key]);
        p->expect_found = mk[0] != '\0';
        mk[0] = '\0';
        ndel++;
        break;
      }
      send_req(&bufs[i]);
    }
    for (unsigned i = 0; i < depth; i++) {
      pending *p = &pend[i];
      const char *exp = expect + i * cap;
      Custos__Response *res = recv_res();
      const char *what = p->op == OP_PUT ? "put" : p->op == OP_GET ? "get" : "delete";
      char got[64] = "";
      int ok;
      if (p->op == OP_PUT) {
        ok = res->error == NULL;
        snprintf(got, sizeof got, "%s", ok ? "ok" : err_msg(res));
      } else if (p->op == OP_DEL) {
        int notfound = res->error != NULL && res->error->code == CUSTOS__ERROR_CODE__NOT_FOUND;
        ok = p->expect_found ? res->error == NULL : notfound;
        snprintf(got, sizeof got, "%s", res->error == NULL ? "ok" : err_msg(res));
      } else if (res->error != NULL) {
        ok = exp[0] == '\0' && res->error->code == CUSTOS__ERROR_CODE__NOT_FOUND;
        snprintf(got, sizeof got, "%s", err_msg(res));
      } else {
        const Custos__KvGetRes *g = res->kv_get;
        ok = exp[0] != '\0' && g != NULL && g->n_data == 1 &&
             g->data[0]->value.len == strlen(exp) &&
             memcmp(g->data[0]->value.data, exp, g->data[0]->value.len) == 0;
        if (g != NULL && g->n_data == 1) /* the start of it, for the message */
          snprintf(got, sizeof got, "%.*s (%zu bytes)",
                   (int)(g->data[0]->value.len < 24 ? g->data[0]->value.len : 24),
                   (const char *)g->data[0]->value.data, g->data[0]->value.len);
      }
      if (!ok) {
        if (mismatches < 10)
          printf("mismatch: round %u request %u: %s %s: expected %.24s (%zu bytes), got %s\n",
                 round, i, what, paths[p->key],
                 p->op == OP_GET ? (exp[0] ? exp : "not found")
                 : p->op == OP_DEL ? (p->expect_found ? "ok" : "not found")
                                   : "ok",
                 p->op == OP_GET ? strlen(exp) : 0, got);
        mismatches++;
      }
      cs_wire_response_free(res);
    }
  }
  printf("model: %lu puts, %lu gets, %lu deletes, %lu mismatches\n", nput, nget, ndel, mismatches);
  free(model);
  free(paths);
  free(pend);
  free(bufs);
  free(vals);
  free(expect);
  return mismatches ? 1 : 0;
}

/* ---------------------------------------------------------------- flood */

static int mode_flood(unsigned n, const char *path) {
  req_buf b;
  make_get(&b, path);
  for (unsigned i = 0; i < n; i++)
    send_req(&b);
  printf("sent %u\n", n);
  fflush(stdout);
  char line[64];
  if (fgets(line, sizeof line, stdin) == NULL)
    die("stdin closed before the go");
  unsigned long long total = 0;
  size_t first = 0;
  for (unsigned i = 0; i < n; i++) {
    Custos__Response *res = recv_res();
    if (res->error != NULL)
      die("answer %u: %s", i, err_msg(res));
    if (res->kv_get == NULL || res->kv_get->n_data != 1)
      die("answer %u: not a one-field secret", i);
    size_t len = res->kv_get->data[0]->value.len;
    if (i == 0)
      first = len;
    else if (len != first)
      die("answer %u: %zu bytes, the first had %zu", i, len, first);
    total += len;
    cs_wire_response_free(res);
  }
  printf("received %u %llu\n", n, total);
  return 0;
}

static int mode_burst(unsigned n, const char *path) {
  req_buf b;
  make_get(&b, path);
  cs_wire_response_free(call(&b)); /* past the pre-authentication frame limit */
  Custos__Request **reqs = calloc(n ? n : 1, sizeof *reqs);
  if (reqs == NULL)
    die("out of memory");
  for (unsigned i = 0; i < n; i++)
    reqs[i] = &b.req; /* the same request n times: each gets its own id */
  if (cs_client_send_many(cli, reqs, n) < 0)
    die("send: %s", cs_client_errmsg(cli));
  free(reqs);
  for (unsigned i = 0; i < n; i++) {
    Custos__Response *res = recv_res();
    if (res->error != NULL)
      die("answer %u: %s", i, err_msg(res));
    cs_wire_response_free(res); /* cs_client_recv checked its id: answers come in order */
  }
  printf("burst %u ok\n", n);
  return 0;
}

/* ---------------------------------------------------------------- puts */

/* The contents of a file (malloc'd, NUL-terminated; *len without it). */
static char *read_file(const char *file, size_t *len) {
  FILE *f = fopen(file, "rb");
  if (f == NULL)
    die("cannot open %s", file);
  size_t cap = 1 << 20, n = 0, got;
  char *buf = malloc(cap + 1);
  while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap)
      buf = realloc(buf, (cap *= 2) + 1);
  }
  fclose(f);
  if (buf == NULL)
    die("out of memory");
  buf[n] = '\0';
  *len = n;
  return buf;
}

static int mode_puts(int n, char **args) {
  req_buf *bufs = calloc((size_t)n, sizeof *bufs);
  char **vals = calloc((size_t)n, sizeof *vals);
  if (bufs == NULL || vals == NULL)
    die("out of memory");
  make_get(&bufs[0], "pipe/auth");
  cs_wire_response_free(call(&bufs[0]));
  for (int i = 0; i < n; i++) {
    char *at = strchr(args[i], '@');
    size_t len = 1;
    if (at != NULL) {
      *at = '\0';
      vals[i] = read_file(at + 1, &len);
    }
    make_put(&bufs[i], args[i], vals[i] != NULL ? vals[i] : "x");
    bufs[i].pair.value.len = len;
  }
  for (int i = 0; i < n; i++)
    send_req(&bufs[i]);
  for (int i = 0; i < n; i++) {
    Custos__Response *res = recv_res();
    print_answer(args[i], res);
    cs_wire_response_free(res);
  }
  for (int i = 0; i < n; i++)
    free(vals[i]);
  free(vals);
  free(bufs);
  return 0;
}

static int mode_sealput(unsigned n, const char *prefix) {
  req_buf *bufs = calloc((size_t)n + 1, sizeof *bufs);
  char (*paths)[128] = calloc((size_t)n + 1, sizeof *paths);
  if (bufs == NULL || paths == NULL)
    die("out of memory");
  make_get(&bufs[0], "pipe/auth");
  cs_wire_response_free(call(&bufs[0]));
  Custos__SealReq seal = CUSTOS__SEAL_REQ__INIT;
  custos__request__init(&bufs[0].req);
  bufs[0].req.op_case = CUSTOS__REQUEST__OP_SEAL;
  bufs[0].req.seal = &seal;
  snprintf(paths[0], sizeof paths[0], "seal");
  for (unsigned i = 1; i <= n; i++) {
    snprintf(paths[i], sizeof paths[i], "%s/%u", prefix, i);
    make_put(&bufs[i], paths[i], "x");
  }
  for (unsigned i = 0; i <= n; i++)
    send_req(&bufs[i]);
  for (unsigned i = 0; i <= n; i++) {
    Custos__Response *res = recv_res();
    print_answer(paths[i], res);
    cs_wire_response_free(res);
  }
  free(paths);
  free(bufs);
  return 0;
}

static int mode_oneshot(const char *kind, const char *path) {
  req_buf b;
  Custos__SealReq seal = CUSTOS__SEAL_REQ__INIT;
  make_get(&b, "pipe/auth");
  cs_wire_response_free(call(&b));
  if (strcmp(kind, "seal") == 0) {
    custos__request__init(&b.req);
    b.req.op_case = CUSTOS__REQUEST__OP_SEAL;
    b.req.seal = &seal;
  } else if (strcmp(kind, "get") == 0) {
    make_get(&b, path);
  } else if (strcmp(kind, "put") == 0) {
    make_put(&b, path, "x");
  } else {
    die("oneshot: unknown request %s", kind);
  }
  printf("ready\n");
  fflush(stdout);
  char line[16];
  if (fgets(line, sizeof line, stdin) == NULL)
    die("oneshot: no go line on stdin");
  Custos__Response *res = call(&b);
  print_answer(kind, res);
  cs_wire_response_free(res);
  return 0;
}

/* ---------------------------------------------------------------- putfile */

static int mode_putfile(const char *path, const char *file) {
  size_t len;
  char *buf = read_file(file, &len);
  req_buf b;
  make_get(&b, path); /* authenticates the connection (found or not) */
  cs_wire_response_free(call(&b));
  make_put(&b, path, buf);
  b.pair.value.len = len;
  Custos__Response *res = call(&b);
  int rc = res->error != NULL;
  if (rc)
    fprintf(stderr, "custos-pipe: put %s: %s\n", path, err_msg(res));
  cs_wire_response_free(res);
  free(buf);
  return rc;
}

/* ---------------------------------------------------------------- keyloop */

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

static size_t hex_decode(const char *hex, uint8_t *out, size_t cap) {
  size_t n = strlen(hex);
  if (n % 2 != 0 || n / 2 > cap)
    die("bad hex share");
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      die("bad hex share");
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return n / 2;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long failures;

/* Counts and prints (the first few) failed answers. */
static int check(Custos__Response *res, const char *what, unsigned step) {
  if (res->error == NULL)
    return 0;
  if (failures < 10)
    printf("step %u: %s failed: %s\n", step, what, err_msg(res));
  failures++;
  return -1;
}

/* Leaves no rekey behind for the next step (the cancel itself may meet a
 * conflict on the old code: retried, bounded). */
static void cancel_rekey(void) {
  for (int i = 0; i < 200; i++) {
    req_buf b;
    Custos__RekeyCancelReq cancel = CUSTOS__REKEY_CANCEL_REQ__INIT;
    custos__request__init(&b.req);
    b.req.op_case = CUSTOS__REQUEST__OP_REKEY_CANCEL;
    b.req.rekey_cancel = &cancel;
    Custos__Response *res = call(&b);
    int busy = res->error != NULL && (res->error->code == CUSTOS__ERROR_CODE__CONFLICT ||
                                      res->error->code == CUSTOS__ERROR_CODE__RETRY);
    int done = !busy || strstr(err_msg(res), "no rekey") != NULL;
    cs_wire_response_free(res);
    if (done)
      return;
    struct timespec ts = {0, 10 * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
  die("rekey cancel kept failing");
}

static int mode_keyloop(unsigned n, double seconds, const char *share_hex, unsigned puts) {
  uint8_t share[64];
  size_t share_len = hex_decode(share_hex, share, sizeof share);
  double end = now_s() + seconds;
  unsigned step;
  for (step = 0; step < n && now_s() < end; step++) {
    req_buf b;
    char val[32];
    snprintf(val, sizeof val, "s%u", step);
    /* An encryption: the counters change, so every tick flushes them. */
    make_put(&b, "pipe/keyloop", val);
    for (unsigned i = 0; i < puts; i++)
      send_req(&b);
    for (unsigned i = 0; i < puts; i++) {
      Custos__Response *r = recv_res();
      check(r, "kv put", step);
      cs_wire_response_free(r);
    }
    Custos__Response *res = call(&b);
    check(res, "kv put", step);
    cs_wire_response_free(res);

    custos__request__init(&b.req);
    custos__rotate_req__init(&b.u.rot);
    b.req.op_case = CUSTOS__REQUEST__OP_ROTATE;
    b.req.rotate = &b.u.rot;
    res = call(&b);
    check(res, "rotate", step);
    cs_wire_response_free(res);

    custos__request__init(&b.req);
    custos__rekey_init_req__init(&b.u.rki);
    b.u.rki.shares = 1;
    b.u.rki.threshold = 1;
    b.req.op_case = CUSTOS__REQUEST__OP_REKEY_INIT;
    b.req.rekey_init = &b.u.rki;
    res = call(&b);
    if (check(res, "rekey init", step) < 0 || res->rekey == NULL) {
      cs_wire_response_free(res);
      cancel_rekey();
      continue;
    }
    char nonce[64];
    snprintf(nonce, sizeof nonce, "%s", res->rekey->nonce ? res->rekey->nonce : "");
    cs_wire_response_free(res);

    custos__request__init(&b.req);
    custos__rekey_update_req__init(&b.u.rku);
    b.u.rku.nonce = nonce;
    b.u.rku.key.data = share;
    b.u.rku.key.len = share_len;
    b.req.op_case = CUSTOS__REQUEST__OP_REKEY_UPDATE;
    b.req.rekey_update = &b.u.rku;
    res = call(&b);
    if (check(res, "rekey update", step) == 0) {
      if (res->rekey == NULL || res->rekey->n_keys != 1 || res->rekey->keys[0].len > sizeof share)
        die("step %u: rekey completed without one new share", step);
      share_len = res->rekey->keys[0].len;
      memcpy(share, res->rekey->keys[0].data, share_len);
    } else {
      cancel_rekey();
    }
    cs_wire_response_free(res);
  }
  printf("keyloop: %u steps, %lu failed requests\n", step, failures);
  printf("share ");
  for (size_t i = 0; i < share_len; i++)
    printf("%02x", share[i]);
  printf("\n");
  return failures ? 1 : 0;
}

/* ---------------------------------------------------------------- main */

static unsigned num(const char *s) {
  char *end;
  unsigned long v = strtoul(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v > 100000000UL)
    die("bad number %s", s);
  return (unsigned)v;
}

int main(int argc, char **argv) {
  cs_client_opts o;
  cs_client_opts_init(&o);
  o.addr = getenv("CUSTOS_ADDR");
  o.ca_file = getenv("CUSTOS_CACERT");
  o.token = getenv("CUSTOS_TOKEN");
  o.timeout_ms = 120000; /* the flood waits for its go with requests unread */
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--addr") == 0)
      o.addr = argv[i + 1];
    else if (strcmp(argv[i], "--cacert") == 0)
      o.ca_file = argv[i + 1];
    else if (strcmp(argv[i], "--token") == 0)
      o.token = argv[i + 1];
    else
      die("unknown option %s", argv[i]);
  }
  if (i >= argc)
    die("usage: custos-pipe [--addr A] [--cacert F] [--token T] model|flood|burst|puts|sealput|oneshot|putfile|keyloop ARGS");
  const char *mode = argv[i++];
  int nargs = argc - i;
  char **args = argv + i;
  int rc = cs_client_connect(&cli, &o);
  if (rc < 0)
    die("connect: %s", cs_error_message(rc));
  if (strcmp(mode, "model") == 0 && (nargs == 4 || nargs == 5))
    rc = mode_model(num(args[0]), num(args[1]), num(args[2]), num(args[3]),
                    nargs == 5 ? num(args[4]) : 0);
  else if (strcmp(mode, "flood") == 0 && nargs == 2)
    rc = mode_flood(num(args[0]), args[1]);
  else if (strcmp(mode, "burst") == 0 && nargs == 2)
    rc = mode_burst(num(args[0]), args[1]);
  else if (strcmp(mode, "puts") == 0 && nargs >= 1)
    rc = mode_puts(nargs, args);
  else if (strcmp(mode, "sealput") == 0 && nargs == 2)
    rc = mode_sealput(num(args[0]), args[1]);
  else if (strcmp(mode, "oneshot") == 0 && nargs == 2)
    rc = mode_oneshot(args[0], args[1]);
  else if (strcmp(mode, "putfile") == 0 && nargs == 2)
    rc = mode_putfile(args[0], args[1]);
  else if (strcmp(mode, "keyloop") == 0 && (nargs == 3 || nargs == 4))
    rc = mode_keyloop(num(args[0]), num(args[1]), args[2], nargs == 4 ? num(args[3]) : 0);
  else
    die("bad mode or arguments: %s", mode);
  cs_client_close(cli);
  return rc;
}
