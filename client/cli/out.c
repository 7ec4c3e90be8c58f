/*
 * out: the one output API of the CLI, with a text (table) back end and a
 * JSON back end behind the same calls, and the one error printer.
 *
 * A command describes its result once: each field with a JSON name and a
 * text label (either may be NULL when a field shows in one format only), so
 * no command forks on the format.  Nothing is printed before out_flush: the
 * text back end must see all rows of a table or grid to align them, and the
 * JSON back end closes its object there.  Both buffers are wiped when they
 * are printed or discarded (they hold tokens, key shares and secret values);
 * cs_jbuf also wipes every buffer it outgrows.
 *
 * Errors go to stderr at once, one per command: "Error: <message>" or one
 * JSON line {"error":{"code":...,"message":...}} (code: "usage", "client",
 * or the server's wire class in lower case).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "custos.pb-c.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <mbedtls/platform_util.h>

/* ------------------------------------------------------------ text pieces */

static void text_add(cli_out *o, const char *s, size_t n) { cs_jbuf_raw(&o->text, s, n); }
static void text_puts(cli_out *o, const char *s) { text_add(o, s, strlen(s)); }

static void text_pad(cli_out *o, size_t n) {
  static const char sp[] = "                                ";
  while (n > 0) {
    size_t k = n < sizeof sp - 1 ? n : sizeof sp - 1;
    text_add(o, sp, k);
    n -= k;
  }
}

static void row_free(out_row *r) {
  free(r->key);
  if (r->val != NULL) {
    mbedtls_platform_zeroize(r->val, r->vlen);
    free(r->val);
  }
  r->key = r->val = NULL;
}

static void rows_clear(cli_out *o) {
  for (size_t i = 0; i < o->nrows; i++)
    row_free(&o->rows[i]);
  o->nrows = 0;
}

/* Appends a row (key copied, val taken over).  On allocation failure the
 * row is dropped and the error is remembered in the text buffer, so
 * out_flush reports it. */
static void rows_push(cli_out *o, const char *key, char *val, size_t vlen) {
  if (o->nrows == o->caprows) {
    size_t cap = o->caprows ? o->caprows * 2 : 16;
    out_row *r = realloc(o->rows, cap * sizeof *r);
    if (r == NULL) {
      o->text.err = CS_ENOMEM;
      mbedtls_platform_zeroize(val, vlen);
      free(val);
      return;
    }
    o->rows = r;
    o->caprows = cap;
  }
  out_row *r = &o->rows[o->nrows++];
  r->key = key ? strdup(key) : NULL;
  r->val = val;
  r->vlen = vlen;
}

/* The pending "Key  Value" table, rendered into the text. */
static void render_rows(cli_out *o) {
  if (o->nrows == 0)
    return;
  size_t w = 3;
  for (size_t i = 0; i < o->nrows; i++)
    if (o->rows[i].key && strlen(o->rows[i].key) > w)
      w = strlen(o->rows[i].key);
  text_puts(o, "Key");
  text_pad(o, w - 3 + 4);
  text_puts(o, "Value\n---");
  text_pad(o, w - 3 + 4);
  text_puts(o, "-----\n");
  for (size_t i = 0; i < o->nrows; i++) {
    const char *k = o->rows[i].key ? o->rows[i].key : "";
    text_puts(o, k);
    if (o->rows[i].vlen > 0) {
      text_pad(o, w - strlen(k) + 4);
      text_add(o, o->rows[i].val, o->rows[i].vlen);
    }
    text_puts(o, "\n");
  }
  rows_clear(o);
}

static void hdr_clear(cli_out *o) {
  for (size_t i = 0; i < o->nhdr; i++)
    free(o->hdr[i]);
  free(o->hdr);
  o->hdr = NULL;
  o->nhdr = o->caphdr = 0;
}

static void hdr_push(cli_out *o, const char *label) {
  if (o->nhdr == o->caphdr) {
    size_t cap = o->caphdr ? o->caphdr * 2 : 16;
    char **h = realloc(o->hdr, cap * sizeof *h);
    if (h == NULL) {
      o->text.err = CS_ENOMEM;
      return;
    }
    o->hdr = h;
    o->caphdr = cap;
  }
  if ((o->hdr[o->nhdr] = strdup(label)) == NULL)
    o->text.err = CS_ENOMEM;
  else
    o->nhdr++;
}

/* The pending grid: headers (the labels of the first object), a "----"
 * line under each, then one line per object (nrows cells, nhdr a line);
 * columns two spaces apart, each as wide as its widest cell. */
static void render_grid(cli_out *o) {
  size_t nc = o->nhdr;
  if (nc == 0 || o->nrows % nc != 0) {
    rows_clear(o);
    hdr_clear(o);
    return;
  }
  size_t *w = calloc(nc, sizeof *w);
  if (w == NULL) {
    o->text.err = CS_ENOMEM;
    rows_clear(o);
    hdr_clear(o);
    return;
  }
  for (size_t c = 0; c < nc; c++)
    w[c] = strlen(o->hdr[c]);
  for (size_t i = 0; i < o->nrows; i++)
    if (o->rows[i].vlen > w[i % nc])
      w[i % nc] = o->rows[i].vlen;
  size_t lines = o->nrows / nc + 2;
  for (size_t line = 0; line < lines; line++) {
    for (size_t c = 0; c < nc; c++) {
      size_t l;
      if (line == 0) {
        l = strlen(o->hdr[c]);
        text_add(o, o->hdr[c], l);
      } else if (line == 1) {
        l = strlen(o->hdr[c]);
        for (size_t k = 0; k < l; k++)
          text_add(o, "-", 1);
      } else {
        const out_row *r = &o->rows[(line - 2) * nc + c];
        l = r->vlen;
        text_add(o, r->val, r->vlen);
      }
      if (c + 1 < nc)
        text_pad(o, w[c] - l + 2);
    }
    text_puts(o, "\n");
  }
  free(w);
  rows_clear(o);
  hdr_clear(o);
}

/* Before anything that is not a table row: the pending rows go first. */
static void text_break(cli_out *o) {
  if (o->in_list != 2)
    render_rows(o);
}

/* ------------------------------------------------------------ JSON pieces */

static int json_on(const cli_ctx *g, const char *key) { return g->json && key != NULL; }

static void json_open(cli_ctx *g) {
  if (!g->out.json_open) {
    cs_jbuf_init(&g->out.json, CS_JBUF_REPLACE);
    cs_jbuf_begin_object(&g->out.json);
    g->out.json_open = 1;
  }
}

/* The member name (when in an object) for a JSON value. */
static void json_key(cli_ctx *g, const char *key) {
  json_open(g);
  cli_out *o = &g->out;
  if (o->in_list == 1 || (o->in_list == 2 && !o->in_obj))
    return; /* array element */
  cs_jbuf_key(&o->json, key);
}

static char *escaped(const char *s, size_t n, size_t *len);

/* A text value for `label` (taken over; escaped here). */
static void text_value(cli_ctx *g, const char *label, char *val, size_t vlen) {
  cli_out *o = &g->out;
  if (g->json || label == NULL || (o->in_list && !o->list_text)) {
    if (val != NULL) {
      mbedtls_platform_zeroize(val, vlen);
      free(val);
    }
    return;
  }
  if (val == NULL) {
    o->text.err = CS_ENOMEM;
    return;
  }
  size_t elen = 0;
  char *e = escaped(val, vlen, &elen);
  mbedtls_platform_zeroize(val, vlen);
  free(val);
  if (e == NULL) {
    o->text.err = CS_ENOMEM;
    return;
  }
  val = e;
  vlen = elen;
  if (o->in_list == 2 && o->in_obj) {
    /* A grid cell; the first object's labels are the column headers. */
    if (o->nitems == 1)
      hdr_push(o, label);
    o->grid_cell++;
    rows_push(o, NULL, val, vlen);
    return;
  }
  size_t llen;
  char *l = escaped(label, strlen(label), &llen);
  if (l == NULL) {
    o->text.err = CS_ENOMEM;
    mbedtls_platform_zeroize(val, vlen);
    free(val);
    return;
  }
  rows_push(o, l, val, vlen);
  free(l);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (d != NULL) {
    memcpy(d, s, n);
    d[n] = '\0';
  }
  return d;
}

/* A copy of s[0..n) for a row or a cell: control bytes and DEL become \xNN.
 * *len is the new length.  The input is not freed. */
static char *escaped(const char *s, size_t n, size_t *len) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    m += (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? 4 : 1;
  char *d = malloc(m + 1), *o = d;
  if (d == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      *o++ = '\\';
      *o++ = 'x';
      *o++ = hex[c >> 4];
      *o++ = hex[c & 15];
    } else {
      *o++ = (char)c;
    }
  }
  *o = '\0';
  *len = m;
  return d;
}

/* ------------------------------------------------------------ fields */

void out_strn(cli_ctx *g, const char *key, const char *label, const void *v, size_t n) {
  if (v == NULL)
    v = "", n = 0;
  if (json_on(g, key)) {
    json_key(g, key);
    cs_jbuf_strn(&g->out.json, v, n);
  }
  if (!g->json && label != NULL)
    text_value(g, label, dup_n(v, n), n);
}

void out_str(cli_ctx *g, const char *key, const char *label, const char *v) {
  out_strn(g, key, label, v, v ? strlen(v) : 0);
}

void out_bool(cli_ctx *g, const char *key, const char *label, int v) {
  if (json_on(g, key)) {
    json_key(g, key);
    cs_jbuf_bool(&g->out.json, v);
  }
  if (!g->json && label != NULL)
    text_value(g, label, strdup(v ? "true" : "false"), v ? 4 : 5);
}

void out_u64(cli_ctx *g, const char *key, const char *label, uint64_t v) {
  if (json_on(g, key)) {
    json_key(g, key);
    cs_jbuf_uint(&g->out.json, v);
  }
  if (!g->json && label != NULL) {
    char b[24];
    int n = snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    text_value(g, label, strdup(b), (size_t)n);
  }
}

void out_i64(cli_ctx *g, const char *key, const char *label, int64_t v) {
  if (json_on(g, key)) {
    json_key(g, key);
    cs_jbuf_int(&g->out.json, v);
  }
  if (!g->json && label != NULL) {
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", (long long)v);
    text_value(g, label, strdup(b), (size_t)n);
  }
}

static char *vfmt(const char *fmt, va_list ap, size_t *len) {
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  if (n < 0)
    return NULL;
  *len = (size_t)n;
  return s;
}

void out_fmt(cli_ctx *g, const char *key, const char *label, const char *fmt, ...) {
  va_list ap;
  size_t n = 0;
  va_start(ap, fmt);
  char *s = vfmt(fmt, ap, &n);
  va_end(ap);
  if (s == NULL) {
    g->out.text.err = g->out.json.err = CS_ENOMEM;
    return;
  }
  if (json_on(g, key)) {
    json_key(g, key);
    cs_jbuf_strn(&g->out.json, s, n);
  }
  if (!g->json && label != NULL) {
    text_value(g, label, s, n);
    return;
  }
  mbedtls_platform_zeroize(s, n);
  free(s);
}

void out_row_fmt(cli_ctx *g, const char *label, const char *fmt, ...) {
  if (g->json)
    return;
  va_list ap;
  size_t n = 0;
  va_start(ap, fmt);
  char *s = vfmt(fmt, ap, &n);
  va_end(ap);
  text_value(g, label, s, n);
}

/* ------------------------------------------------------------ lists */

void out_list_begin(cli_ctx *g, const char *key, const char *label) {
  cli_out *o = &g->out;
  if (g->json) {
    json_open(g);
    cs_jbuf_key(&o->json, key ? key : "items");
    cs_jbuf_begin_array(&o->json);
  } else if (label != NULL) {
    render_rows(o);
    if (label[0] != '\0') {
      text_puts(o, label);
      text_puts(o, "\n");
      for (size_t i = 0; label[i]; i++)
        text_add(o, "-", 1);
      text_puts(o, "\n");
    }
  }
  o->in_list = 1;
  o->list_text = label != NULL;
  o->nitems = 0;
  hdr_clear(o);
}

void out_item(cli_ctx *g, const char *s) {
  cli_out *o = &g->out;
  if (g->json) {
    cs_jbuf_str(&o->json, s);
  } else if (o->list_text) {
    /* A name from the server: control bytes as \xNN, as in rows. */
    size_t n = 0;
    char *e = escaped(s ? s : "", s ? strlen(s) : 0, &n);
    if (e == NULL) {
      o->text.err = CS_ENOMEM;
    } else {
      text_add(o, e, n);
      mbedtls_platform_zeroize(e, n);
      free(e);
    }
    text_puts(o, "\n");
  }
  o->nitems++;
}

void out_item_u64(cli_ctx *g, uint64_t v) {
  cli_out *o = &g->out;
  if (g->json) {
    cs_jbuf_uint(&o->json, v);
  } else if (o->list_text) {
    char b[24];
    snprintf(b, sizeof b, "%llu\n", (unsigned long long)v);
    text_puts(o, b);
  }
  o->nitems++;
}

void out_obj_begin(cli_ctx *g) {
  cli_out *o = &g->out;
  o->in_list = 2;
  o->in_obj = 1;
  o->nitems++;
  o->grid_cell = 0;
  if (g->json)
    cs_jbuf_begin_object(&o->json);
}

void out_obj_end(cli_ctx *g) {
  cli_out *o = &g->out;
  if (g->json)
    cs_jbuf_end_object(&o->json);
  /* Every object of a grid has the same cells (a programming error
   * otherwise): pad a short one so the grid stays aligned. */
  while (!g->json && o->list_text && o->grid_cell < o->nhdr) {
    rows_push(o, NULL, strdup(""), 0);
    o->grid_cell++;
  }
  o->in_obj = 0;
}

void out_list_end(cli_ctx *g) {
  cli_out *o = &g->out;
  if (g->json)
    cs_jbuf_end_array(&o->json);
  else if (o->in_list == 2 && o->list_text)
    render_grid(o);
  o->in_list = 0;
  o->in_obj = 0;
  o->list_text = 0;
  hdr_clear(o);
  o->nitems = 0;
}

void out_map_begin(cli_ctx *g, const char *key) {
  if (!g->json)
    return;
  json_open(g);
  cs_jbuf_key(&g->out.json, key);
  cs_jbuf_begin_object(&g->out.json);
}

void out_map_end(cli_ctx *g) {
  if (g->json)
    cs_jbuf_end_object(&g->out.json);
}

/* ------------------------------------------------------------ text, raw */

void out_text(cli_ctx *g, const char *fmt, ...) {
  if (g->json)
    return;
  va_list ap;
  size_t n = 0;
  va_start(ap, fmt);
  char *s = vfmt(fmt, ap, &n);
  va_end(ap);
  if (s == NULL) {
    g->out.text.err = CS_ENOMEM;
    return;
  }
  text_break(&g->out);
  text_add(&g->out, s, n);
  mbedtls_platform_zeroize(s, n);
  free(s);
}

void out_raw(cli_ctx *g, const void *p, size_t n) {
  (void)g;
  fwrite(p, 1, n, stdout);
}

void out_done(cli_ctx *g, const char *key, const char *value, const char *fmt, ...) {
  out_bool(g, "success", NULL, 1);
  if (key != NULL && value != NULL)
    out_str(g, key, NULL, value);
  else if (key != NULL)
    out_bool(g, key, NULL, 1);
  if (g->json)
    return;
  va_list ap;
  size_t n = 0;
  va_start(ap, fmt);
  char *s = vfmt(fmt, ap, &n);
  va_end(ap);
  if (s == NULL) {
    g->out.text.err = CS_ENOMEM;
    return;
  }
  out_text(g, "Success! %s\n", s);
  mbedtls_platform_zeroize(s, n);
  free(s);
}

/* ------------------------------------------------------------ flush */

void out_discard(cli_ctx *g) {
  cli_out *o = &g->out;
  rows_clear(o);
  free(o->rows);
  o->rows = NULL;
  o->caprows = 0;
  cs_jbuf_free(&o->json);
  cs_jbuf_free(&o->text);
  o->json_open = 0;
  o->in_list = o->in_obj = o->list_text = 0;
  hdr_clear(o);
  o->grid_cell = o->nitems = 0;
}

int out_flush(cli_ctx *g) {
  cli_out *o = &g->out;
  const char *text = NULL;
  size_t len = 0;
  int rc = 0, err = 0;
  if (g->json) {
    if (o->json_open) {
      cs_jbuf_end_object(&o->json);
      cs_jbuf_raw(&o->json, "\n", 1);
      err = cs_jbuf_result(&o->json, &text, &len);
    }
  } else {
    render_rows(o);
    if (o->text.len > 0 || o->text.err)
      err = cs_jbuf_result(&o->text, &text, &len);
  }
  if (err != 0) {
    out_discard(g);
    return cli_fail(g, "cannot format the output: %s", cs_strerror(err));
  }
  if (len > 0 && fwrite(text, 1, len, stdout) != len)
    rc = -1;
  out_discard(g);
  if (fflush(stdout) != 0 || rc != 0)
    return cli_fail(g, "cannot write the output: %s", strerror(errno));
  return 0;
}

/* ------------------------------------------------------------ errors */

const char *cli_error_class(int code) {
  static __thread char buf[32];
  if (code == CS_EUSAGE)
    return "usage";
  if (code == CS_ECLIENT)
    return "client";
  const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&custos__error_code__descriptor, cs_error_wire_code(code));
  if (v == NULL)
    return "internal";
  size_t i = 0;
  for (; v->name[i] && i + 1 < sizeof buf; i++)
    buf[i] = (char)tolower((unsigned char)v->name[i]);
  buf[i] = '\0';
  return buf;
}

static int exit_of(int code) {
  if (code == CS_EUSAGE)
    return CLI_USAGE;
  if (code == CS_EBUSY)
    return CLI_RETRY;
  return CLI_FAIL;
}

/* One error line, whatever the message holds (a server message may carry
 * newlines or escape sequences: they become spaces / '?'). */
static int verror(cli_ctx *g, int code, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  for (char *p = msg; *p; p++) {
    if (*p == '\n' || *p == '\r')
      *p = ' ';
    else if ((unsigned char)*p < 0x20 || *p == 0x7f)
      *p = '?';
  }
  if (g->json) {
    cs_jbuf j;
    const char *t;
    size_t n;
    cs_jbuf_init(&j, CS_JBUF_REPLACE);
    cs_jbuf_begin_object(&j);
    cs_jbuf_key(&j, "error");
    cs_jbuf_begin_object(&j);
    cs_jbuf_key_str(&j, "code", cli_error_class(code));
    cs_jbuf_key_str(&j, "message", msg);
    if (g->words[0] != '\0')
      cs_jbuf_key_str(&j, "command", g->words);
    cs_jbuf_key_int(&j, "exit_code", exit_of(code));
    cs_jbuf_end_object(&j);
    cs_jbuf_end_object(&j);
    cs_jbuf_raw(&j, "\n", 1);
    if (cs_jbuf_result(&j, &t, &n) == 0)
      fwrite(t, 1, n, stderr);
    else
      fprintf(stderr, "{\"error\":{\"code\":\"client\",\"message\":\"out of memory\"}}\n");
    cs_jbuf_free(&j);
  } else {
    fprintf(stderr, "Error: %s\n", msg);
  }
  return exit_of(code);
}

int cli_error(cli_ctx *g, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = verror(g, code, fmt, ap);
  va_end(ap);
  return rc;
}

int cli_fail(cli_ctx *g, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = verror(g, CS_ECLIENT, fmt, ap);
  va_end(ap);
  return rc;
}
