/*
 * kv2: the versioned key/value commands (KV version 2, the `kv` mount):
 *
 *   kv put --mount kv [--cas N] PATH K=V...      prints the version written
 *   kv get --mount kv [--version N] [--field K] PATH
 *   kv list --mount kv [PREFIX]
 *   kv delete --mount kv [--versions 1,2] PATH  soft delete (default: current)
 *   kv undelete --versions 1,2 PATH
 *   kv destroy --versions 1,2 PATH               the data is erased for good
 *   kv metadata get PATH
 *   kv metadata put [--max-versions N] [--cas-required true|false]
 *                   [--delete-version-after DURATION] [--custom-metadata K=V]... PATH
 *   kv metadata delete PATH                      every version and the metadata
 *
 * kv.c's put/get/list/delete come here when they name the v2 mount
 * (`--mount kv`); undelete, destroy and metadata are rows of kv.c's table
 * that point here; every other `kv` command is KV version 1 (mount
 * `secret`) as before.  Values are read as in kv.c ("-" for stdin, "@FILE"); value
 * buffers are wiped on free.  Times print as RFC 3339 with microseconds.
 */
#include "kv2.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S(x) ((x) != NULL ? (x) : "")
#define KV2_MAX_FIELDS 1024
#define KV2_MAX_VERSIONS_ARG 1000
#define KV2_MAX_CUSTOM 64

/* ------------------------------------------------------------ helpers */

/* Unix microseconds as "2026-12-02T14:08:13.123456Z" ("" for 0). */
static void fmt_us(int64_t us, char *buf, size_t cap) {
  if (us == 0) {
    snprintf(buf, cap, "%s", "");
    return;
  }
  time_t s = (time_t)(us / 1000000);
  long frac = (long)(us % 1000000);
  if (frac < 0) {
    frac += 1000000;
    s--;
  }
  struct tm tm;
  char base[32];
  if (gmtime_r(&s, &tm) == NULL || strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm) == 0)
    snprintf(base, sizeof base, "1970-01-01T00:00:00");
  snprintf(buf, cap, "%s.%06ldZ", base, frac);
}

/* "1,2,5" into out[]; 0 or a usage error. */
static int parse_versions(cli_ctx *g, const char *s, uint64_t *out, size_t cap, size_t *n) {
  *n = 0;
  char buf[32];
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    if (len == 0 || len >= sizeof buf)
      return cli_usage(g, "--versions takes numbers separated by commas");
    memcpy(buf, s, len);
    buf[len] = 0;
    uint64_t v;
    if (cli_parse_u64(buf, 1, UINT64_MAX, &v) != 0)
      return cli_usage(g, "version \"%s\" is not a number from 1", buf);
    if (*n >= cap)
      return cli_usage(g, "at most %zu versions at once", cap);
    out[(*n)++] = v;
    s += len + (comma ? 1 : 0);
    if (comma && *s == 0)
      return cli_usage(g, "--versions ends with a comma");
  }
  if (*n == 0)
    return cli_usage(g, "--versions is empty");
  return 0;
}

static int check_mount(cli_ctx *g, const char *mount) {
  if (mount == NULL || strcmp(mount, "kv") == 0 || strcmp(mount, "kv/") == 0)
    return 0;
  return cli_usage(g, "only the versioned mount \"kv\" has versions (\"%.64s\" given)", mount);
}

static void version_rows(cli_ctx *g, const Custos__Kv2VersionInfo *v) {
  char c[40], d[40];
  fmt_us(v ? v->created_time : 0, c, sizeof c);
  fmt_us(v ? v->deletion_time : 0, d, sizeof d);
  out_str(g, "created_time", "created_time", c);
  out_str(g, "deletion_time", NULL, d);
  out_row_fmt(g, "deletion_time", "%s", d[0] ? d : "n/a");
  out_bool(g, "destroyed", "destroyed", v ? v->destroyed : 0);
  out_u64(g, "version", "version", v ? v->version : 0);
}

/* JSON: "custom_metadata":{K:V...}; text: one row "map[K:V ...]". */
static void custom_rows(cli_ctx *g, Custos__KvPair **p, size_t n) {
  out_map_begin(g, "custom_metadata");
  for (size_t i = 0; i < n; i++)
    out_strn(g, S(p[i]->key), NULL, p[i]->value.data, p[i]->value.len);
  out_map_end(g);
  if (n == 0) {
    out_row_fmt(g, "custom_metadata", "<nil>");
    return;
  }
  size_t cap = 16;
  for (size_t i = 0; i < n; i++)
    cap += strlen(S(p[i]->key)) + p[i]->value.len + 2;
  char *s = malloc(cap), *o = s;
  if (s == NULL)
    return;
  o += sprintf(o, "map[");
  for (size_t i = 0; i < n; i++) {
    o += sprintf(o, "%s%s:", i ? " " : "", S(p[i]->key));
    memcpy(o, p[i]->value.data, p[i]->value.len);
    o += p[i]->value.len;
  }
  sprintf(o, "]");
  out_row_fmt(g, "custom_metadata", "%s", s);
  free(s);
}

/* ------------------------------------------------------------ put */

int cli_kv2_put(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL, *cas = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "cas", .arg = 1, .val = &cas}, {0}};
  char *pos[1 + KV2_MAX_FIELDS];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1 + KV2_MAX_FIELDS, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  uint64_t casv = 0;
  if (cas != NULL && cli_parse_u64(cas, 0, UINT64_MAX, &casv) != 0)
    return cli_usage(g, "--cas takes a version number (0: only if absent)");
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  if (npos < 2)
    return cli_usage(g, "missing K=V");
  size_t nf = npos - 1;
  Custos__KvPair *pairs = calloc(nf, sizeof *pairs);
  Custos__KvPair **pp = calloc(nf, sizeof *pp);
  uint8_t **owned = calloc(nf, sizeof *owned);
  size_t *owned_len = calloc(nf, sizeof *owned_len);
  int used_stdin = 0;
  rc = CLI_OK;
  if (pairs == NULL || pp == NULL || owned == NULL || owned_len == NULL) {
    rc = cli_fail(g, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < nf && rc == CLI_OK; i++) {
    char *kvs = pos[1 + i];
    char *eq = strchr(kvs, '=');
    if (eq == NULL || eq == kvs) {
      rc = cli_usage(g, "expected K=V, got \"%.64s\"", kvs);
      break;
    }
    *eq = '\0';
    const char *v = eq + 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(pairs[j].key, kvs) == 0) {
        rc = cli_usage(g, "field \"%.64s\" given twice", kvs);
        break;
      }
    if (rc != CLI_OK)
      break;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kvs;
    pp[i] = &pairs[i];
    if (strcmp(v, "-") == 0) {
      if (used_stdin++) {
        rc = cli_usage(g, "only one value can come from stdin");
        break;
      }
      rc = cli_read_stdin(g, &owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else if (v[0] == '@') {
      rc = cli_read_file(g, v + 1, &owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else {
      pairs[i].value.data = (uint8_t *)v;
      pairs[i].value.len = strlen(v);
    }
  }
  if (rc == CLI_OK) {
    Custos__Request req = CUSTOS__REQUEST__INIT;
    Custos__Kv2PutReq op = CUSTOS__KV2_PUT_REQ__INIT;
    Custos__Response *res;
    op.path = pos[0];
    op.n_data = nf;
    op.data = pp;
    if (cas != NULL) {
      op.cas_opt_case = CUSTOS__KV2_PUT_REQ__CAS_OPT_CAS;
      op.cas = casv;
    }
    req.op_case = CUSTOS__REQUEST__OP_KV2_PUT;
    req.kv2_put = &op;
    if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV2_WRITE, &res)) == CLI_OK) {
      const Custos__Kv2WriteRes *w = res->kv2_write;
      out_text(g, "Success! Data written to: kv/%s (version %llu)\n", pos[0],
               (unsigned long long)(w->version ? w->version->version : 0));
      out_map_begin(g, "data");
      version_rows(g, w->version);
      custom_rows(g, w->custom_metadata, w->n_custom_metadata);
      out_map_end(g);
      cs_wire_response_free(res);
    }
  }
out:
  if (owned != NULL)
    for (size_t i = 0; i < nf; i++)
      cli_free_secret(owned[i], owned_len[i] + 1);
  free(owned);
  free(owned_len);
  free(pp);
  free(pairs);
  return rc;
}

/* ------------------------------------------------------------ get */

int cli_kv2_get(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL, *version = NULL, *field = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "version", .arg = 1, .val = &version},
                          {.name = "field", .arg = 1, .val = &field}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  uint64_t v = 0;
  if (version != NULL && cli_parse_u64(version, 0, UINT64_MAX, &v) != 0)
    return cli_usage(g, "--version takes a version number (0: the current one)");
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2GetReq op = CUSTOS__KV2_GET_REQ__INIT;
  Custos__Response *res;
  op.path = pos[0];
  op.version = v;
  req.op_case = CUSTOS__REQUEST__OP_KV2_GET;
  req.kv2_get = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV2_GET, &res)) != 0)
    return rc;
  const Custos__Kv2GetRes *r = res->kv2_get;
  unsigned long long vn = r->version ? (unsigned long long)r->version->version : 0;
  if (r->destroyed || r->deleted) {
    char d[40];
    fmt_us(r->version ? r->version->deletion_time : 0, d, sizeof d);
    if (r->destroyed)
      rc = cli_fail(g, "version %llu of kv/%s is destroyed", vn, pos[0]);
    else
      rc = cli_fail(g, "version %llu of kv/%s is deleted (deletion_time %s); `custos kv undelete "
                    "--versions %llu %s` restores it", vn, pos[0], d, vn, pos[0]);
  } else if (field != NULL) {
    rc = CLI_FAIL;
    for (size_t i = 0; i < r->n_data; i++) {
      if (strcmp(S(r->data[i]->key), field) != 0)
        continue;
      out_raw(g, r->data[i]->value.data, r->data[i]->value.len);
      if (isatty(1))
        out_raw(g, "\n", 1);
      rc = CLI_OK;
      break;
    }
    if (rc != CLI_OK)
      cli_fail(g, "field %s not found", field);
  } else {
    out_text(g, "====== Metadata ======\n");
    out_map_begin(g, "metadata");
    version_rows(g, r->version);
    custom_rows(g, r->custom_metadata, r->n_custom_metadata);
    out_map_end(g);
    out_text(g, "\n====== Data ======\n");
    out_map_begin(g, "data"); /* the text back end shows control bytes as \xNN */
    for (size_t i = 0; i < r->n_data; i++)
      out_strn(g, S(r->data[i]->key), S(r->data[i]->key), r->data[i]->value.data,
               r->data[i]->value.len);
    out_map_end(g);
  }
  cs_wire_response_free(res);
  return rc;
}

/* ------------------------------------------------------------ list */

int cli_kv2_list(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2ListReq op = CUSTOS__KV2_LIST_REQ__INIT;
  Custos__Response *res;
  op.prefix = npos ? pos[0] : "";
  req.op_case = CUSTOS__REQUEST__OP_KV2_LIST;
  req.kv2_list = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV_LIST, &res)) != 0)
    return rc;
  const Custos__KvListRes *r = res->kv_list;
  out_list_begin(g, "keys", "Keys");
  for (size_t i = 0; i < r->n_keys; i++)
    out_item(g, S(r->keys[i]));
  out_list_end(g);
  cs_wire_response_free(res);
  return CLI_OK;
}

/* ------------------------------------------- delete, undelete, destroy */

static int kv2_versions(cli_ctx *g, int op_case, int argc, char **argv) {
  const char *mount = NULL, *versions = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "versions", .arg = 1, .val = &versions}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  uint64_t vs[KV2_MAX_VERSIONS_ARG];
  size_t nv = 0;
  if (versions == NULL && op_case != CUSTOS__REQUEST__OP_KV2_DELETE)
    return cli_usage(g, "missing --versions");
  if (versions != NULL && (rc = parse_versions(g, versions, vs, KV2_MAX_VERSIONS_ARG, &nv)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2VersionsReq op = CUSTOS__KV2_VERSIONS_REQ__INIT;
  op.path = pos[0];
  op.n_versions = nv;
  op.versions = vs;
  req.op_case = (Custos__Request__OpCase)op_case;
  const char *what;
  switch (op_case) {
  case CUSTOS__REQUEST__OP_KV2_DELETE: req.kv2_delete = &op; what = "deleted"; break;
  case CUSTOS__REQUEST__OP_KV2_UNDELETE: req.kv2_undelete = &op; what = "undeleted"; break;
  default: req.kv2_destroy = &op; what = "destroyed"; break;
  }
  return cli_call_done(g, &req, "path", pos[0], "Version(s) %s %s at: kv/%s",
                       versions ? versions : "(current)", what, pos[0]);
}

/* ------------------------------------------------------------ metadata */

static int parse_bool_arg(const char *s, int *out) {
  if (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)
    return *out = 1, 0;
  if (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)
    return *out = 0, 0;
  return -1;
}

static int meta_get(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2MetaGetReq op = CUSTOS__KV2_META_GET_REQ__INIT;
  Custos__Response *res;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV2_META_GET;
  req.kv2_meta_get = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KV2_META, &res)) != 0)
    return rc;
  const Custos__Kv2MetaRes *m = res->kv2_meta;
  char c[40], u[40], dva[64];
  fmt_us(m->created_time, c, sizeof c);
  fmt_us(m->updated_time, u, sizeof u);
  cli_fmt_duration(m->delete_version_after, dva, sizeof dva);
  out_text(g, "====== Metadata ======\n");
  out_map_begin(g, "data");
  out_bool(g, "cas_required", "cas_required", m->cas_required);
  out_str(g, "created_time", "created_time", c);
  out_u64(g, "current_version", "current_version", m->current_version);
  custom_rows(g, m->custom_metadata, m->n_custom_metadata);
  out_str(g, "delete_version_after", "delete_version_after", dva);
  out_u64(g, "max_versions", "max_versions", m->max_versions);
  out_u64(g, "oldest_version", "oldest_version", m->oldest_version);
  out_str(g, "updated_time", "updated_time", u);
  out_map_begin(g, "versions");
  for (size_t i = 0; i < m->n_versions; i++) {
    char num[24], vc[40], vd[40];
    snprintf(num, sizeof num, "%llu", (unsigned long long)m->versions[i]->version);
    fmt_us(m->versions[i]->created_time, vc, sizeof vc);
    fmt_us(m->versions[i]->deletion_time, vd, sizeof vd);
    out_text(g, "\n====== Version %s ======\n", num);
    out_map_begin(g, num);
    out_str(g, "created_time", "created_time", vc);
    out_str(g, "deletion_time", NULL, vd);
    out_row_fmt(g, "deletion_time", "%s", vd[0] ? vd : "n/a");
    out_bool(g, "destroyed", "destroyed", m->versions[i]->destroyed);
    out_map_end(g);
  }
  out_map_end(g);
  out_map_end(g);
  cs_wire_response_free(res);
  return CLI_OK;
}

static int meta_put(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL, *maxv = NULL, *casr = NULL, *dva = NULL;
  const char *custom[KV2_MAX_CUSTOM + 1];
  size_t ncustom = 0;
  int clear = 0;
  const cli_opt opts[] = {
      {.name = "mount", .arg = 1, .val = &mount},
      {.name = "max-versions", .arg = 1, .val = &maxv},
      {.name = "cas-required", .arg = 1, .val = &casr},
      {.name = "delete-version-after", .arg = 1, .val = &dva},
      {.name = "custom-metadata", .arg = 2, .list = custom, .nlist = &ncustom,
       .cap = KV2_MAX_CUSTOM + 1},
      {.name = "clear-custom-metadata", .arg = 0, .flag = &clear},
      {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2MetaPutReq op = CUSTOS__KV2_META_PUT_REQ__INIT;
  op.path = pos[0];
  uint64_t u;
  if (maxv != NULL) {
    if (cli_parse_u64(maxv, 0, 1000, &u) != 0)
      return cli_usage(g, "--max-versions takes 0..1000 (0: the mount's)");
    op.max_versions_opt_case = CUSTOS__KV2_META_PUT_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS;
    op.max_versions = (uint32_t)u;
  }
  if (casr != NULL) {
    int b;
    if (parse_bool_arg(casr, &b) != 0)
      return cli_usage(g, "--cas-required takes true or false");
    op.cas_required_opt_case = CUSTOS__KV2_META_PUT_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED;
    op.cas_required = b;
  }
  if (dva != NULL) {
    if (cli_parse_duration(dva, &u) != 0)
      return cli_usage(g, "--delete-version-after takes a duration (\"0\": never)");
    op.delete_version_after_opt_case =
        CUSTOS__KV2_META_PUT_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER;
    op.delete_version_after = u;
  }
  Custos__KvPair pairs[KV2_MAX_CUSTOM + 1], *pp[KV2_MAX_CUSTOM + 1];
  char kbuf[KV2_MAX_CUSTOM + 1][256];
  if (ncustom > KV2_MAX_CUSTOM)
    return cli_usage(g, "at most %d --custom-metadata", KV2_MAX_CUSTOM);
  for (size_t i = 0; i < ncustom; i++) {
    const char *eq = strchr(custom[i], '=');
    if (eq == NULL || eq == custom[i] || (size_t)(eq - custom[i]) >= sizeof kbuf[i])
      return cli_usage(g, "--custom-metadata takes K=V, got \"%.64s\"", custom[i]);
    memcpy(kbuf[i], custom[i], (size_t)(eq - custom[i]));
    kbuf[i][eq - custom[i]] = 0;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kbuf[i];
    pairs[i].value.data = (uint8_t *)(eq + 1);
    pairs[i].value.len = strlen(eq + 1);
    pp[i] = &pairs[i];
  }
  if (ncustom > 0 && clear)
    return cli_usage(g, "--custom-metadata and --clear-custom-metadata together");
  op.set_custom_metadata = ncustom > 0 || clear;
  op.n_custom_metadata = ncustom;
  op.custom_metadata = pp;
  req.op_case = CUSTOS__REQUEST__OP_KV2_META_PUT;
  req.kv2_meta_put = &op;
  return cli_call_done(g, &req, "path", pos[0], "Metadata written to: kv/%s", pos[0]);
}

static int meta_delete(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(g, mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage(g, "missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2MetaDeleteReq op = CUSTOS__KV2_META_DELETE_REQ__INIT;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV2_META_DELETE;
  req.kv2_meta_delete = &op;
  return cli_call_done(g, &req, "path", pos[0], "Deleted every version and the metadata of: kv/%s",
                       pos[0]);
}

/* ------------------------------------------------------------ entries */

int cli_kv2_delete(cli_ctx *g, int argc, char **argv) {
  return kv2_versions(g, CUSTOS__REQUEST__OP_KV2_DELETE, argc, argv);
}

int cli_kv2_undelete(cli_ctx *g, int argc, char **argv) {
  return kv2_versions(g, CUSTOS__REQUEST__OP_KV2_UNDELETE, argc, argv);
}

int cli_kv2_destroy(cli_ctx *g, int argc, char **argv) {
  return kv2_versions(g, CUSTOS__REQUEST__OP_KV2_DESTROY, argc, argv);
}

const cli_cmd cli_kv2_metadata_cmds[] = {
  { "get", meta_get, NULL, "(kv) the versions and settings of a path", "PATH", "" },
  { "put", meta_put, NULL, "(kv) change the settings of a path",
    "[--max-versions N] [--cas-required true|false] [--delete-version-after DURATION]\n"
    " [--custom-metadata K=V]... [--clear-custom-metadata] PATH",
    "Options:\n"
    "  --max-versions N              versions kept, 0..1000 (0: the mount's)\n"
    "  --cas-required true|false     every write must give --cas\n"
    "  --delete-version-after D      soft-delete versions after D (0: never)\n"
    "  --custom-metadata K=V         replace the custom metadata (repeat it)\n"
    "  --clear-custom-metadata       remove the custom metadata\n" },
  { "delete", meta_delete, NULL, "(kv) delete every version and the metadata", "PATH", "" },
  { 0 },
};
