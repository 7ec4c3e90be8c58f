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
 * cmd_kv (kv.c) sends a kv command here when it names the v2 mount
 * (`--mount kv`) or is one of the v2-only subcommands (undelete, destroy,
 * metadata); every other `kv` command is KV version 1 (mount `secret`) as
 * before.  Values are read as in kv.c ("-" for stdin, "@FILE"); value
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
static int parse_versions(const char *cmd, const char *s, uint64_t *out, size_t cap, size_t *n) {
  *n = 0;
  char buf[32];
  while (*s) {
    const char *comma = strchr(s, ',');
    size_t len = comma ? (size_t)(comma - s) : strlen(s);
    if (len == 0 || len >= sizeof buf)
      return cli_usage_error("%s: --versions takes numbers separated by commas", cmd);
    memcpy(buf, s, len);
    buf[len] = 0;
    uint64_t v;
    if (cli_parse_u64(buf, 1, UINT64_MAX, &v) != 0)
      return cli_usage_error("%s: version \"%s\" is not a number from 1", cmd, buf);
    if (*n >= cap)
      return cli_usage_error("%s: at most %zu versions at once", cmd, cap);
    out[(*n)++] = v;
    s += len + (comma ? 1 : 0);
    if (comma && *s == 0)
      return cli_usage_error("%s: --versions ends with a comma", cmd);
  }
  if (*n == 0)
    return cli_usage_error("%s: --versions is empty", cmd);
  return 0;
}

static int check_mount(const char *cmd, const char *mount) {
  if (mount == NULL || strcmp(mount, "kv") == 0 || strcmp(mount, "kv/") == 0)
    return 0;
  return cli_usage_error("%s: only the versioned mount \"kv\" has versions (\"%s\" given)", cmd,
                         mount);
}

static void version_rows(const Custos__Kv2VersionInfo *v, int json) {
  char c[40], d[40];
  fmt_us(v ? v->created_time : 0, c, sizeof c);
  fmt_us(v ? v->deletion_time : 0, d, sizeof d);
  if (json) {
    jw_kv_str("created_time", c);
    jw_kv_str("deletion_time", d);
    jw_kv_bool("destroyed", v ? v->destroyed : 0);
    jw_kv_u64("version", v ? v->version : 0);
  } else {
    tbl_row("created_time", "%s", c);
    tbl_row("deletion_time", "%s", d[0] ? d : "n/a");
    tbl_row("destroyed", "%s", v && v->destroyed ? "true" : "false");
    tbl_row("version", "%llu", (unsigned long long)(v ? v->version : 0));
  }
}

static void custom_json(Custos__KvPair **p, size_t n) {
  jw_key("custom_metadata");
  jw_obj_begin();
  for (size_t i = 0; i < n; i++) {
    jw_key(S(p[i]->key));
    jw_strn(p[i]->value.data, p[i]->value.len);
  }
  jw_obj_end();
}

static void custom_row(Custos__KvPair **p, size_t n) {
  if (n == 0) {
    tbl_row("custom_metadata", "<nil>");
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
  tbl_row("custom_metadata", "%s", s);
  free(s);
}

/* ------------------------------------------------------------ put */

static int kv2_put(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL, *cas = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "cas", .arg = 1, .val = &cas}, {0}};
  char *pos[1 + KV2_MAX_FIELDS];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv put", argc, argv, opts, pos, 1 + KV2_MAX_FIELDS, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv put", mount)) != 0)
    return rc;
  uint64_t casv = 0;
  if (cas != NULL && cli_parse_u64(cas, 0, UINT64_MAX, &casv) != 0)
    return cli_usage_error("kv put: --cas takes a version number (0: only if absent)");
  if (npos < 1)
    return cli_usage_error("kv put: missing PATH");
  if (npos < 2)
    return cli_usage_error("kv put: missing K=V");
  size_t nf = npos - 1;
  Custos__KvPair *pairs = calloc(nf, sizeof *pairs);
  Custos__KvPair **pp = calloc(nf, sizeof *pp);
  uint8_t **owned = calloc(nf, sizeof *owned);
  size_t *owned_len = calloc(nf, sizeof *owned_len);
  int used_stdin = 0;
  rc = CLI_OK;
  if (pairs == NULL || pp == NULL || owned == NULL || owned_len == NULL) {
    rc = cli_fail("out of memory");
    goto out;
  }
  for (size_t i = 0; i < nf && rc == CLI_OK; i++) {
    char *kvs = pos[1 + i];
    char *eq = strchr(kvs, '=');
    if (eq == NULL || eq == kvs) {
      rc = cli_usage_error("kv put: expected K=V, got \"%s\"", kvs);
      break;
    }
    *eq = '\0';
    const char *v = eq + 1;
    for (size_t j = 0; j < i; j++)
      if (strcmp(pairs[j].key, kvs) == 0) {
        rc = cli_usage_error("kv put: field \"%s\" given twice", kvs);
        break;
      }
    if (rc != CLI_OK)
      break;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kvs;
    pp[i] = &pairs[i];
    if (strcmp(v, "-") == 0) {
      if (used_stdin++) {
        rc = cli_usage_error("kv put: only one value can come from stdin");
        break;
      }
      rc = cli_read_stdin(&owned[i], &owned_len[i]);
      pairs[i].value.data = owned[i];
      pairs[i].value.len = owned_len[i];
    } else if (v[0] == '@') {
      rc = cli_read_file(v + 1, &owned[i], &owned_len[i]);
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
      if (g->json) {
        jw_obj_begin();
        jw_key("data");
        jw_obj_begin();
        version_rows(w->version, 1);
        custom_json(w->custom_metadata, w->n_custom_metadata);
        jw_obj_end();
        jw_obj_end();
        jw_end();
      } else {
        printf("Success! Data written to: kv/%s (version %llu)\n", pos[0],
               (unsigned long long)(w->version ? w->version->version : 0));
        version_rows(w->version, 0);
        custom_row(w->custom_metadata, w->n_custom_metadata);
        tbl_print();
      }
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

static char *printable(const uint8_t *p, size_t n) {
  char *s = malloc(4 * n + 1), *o = s;
  if (s == NULL)
    return NULL;
  for (size_t i = 0; i < n; i++) {
    if (p[i] < 0x20 || p[i] == 0x7f)
      o += sprintf(o, "\\x%02x", p[i]);
    else
      *o++ = (char)p[i];
  }
  *o = '\0';
  return s;
}

static int kv2_get(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL, *version = NULL, *field = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "version", .arg = 1, .val = &version},
                          {.name = "field", .arg = 1, .val = &field}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv get", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv get", mount)) != 0)
    return rc;
  uint64_t v = 0;
  if (version != NULL && cli_parse_u64(version, 0, UINT64_MAX, &v) != 0)
    return cli_usage_error("kv get: --version takes a version number (0: the current one)");
  if (npos < 1)
    return cli_usage_error("kv get: missing PATH");
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
      rc = cli_fail("version %llu of kv/%s is destroyed", vn, pos[0]);
    else
      rc = cli_fail("version %llu of kv/%s is deleted (deletion_time %s); `custos kv undelete "
                    "--versions %llu %s` restores it", vn, pos[0], d, vn, pos[0]);
  } else if (field != NULL) {
    rc = CLI_FAIL;
    for (size_t i = 0; i < r->n_data; i++) {
      if (strcmp(S(r->data[i]->key), field) != 0)
        continue;
      fwrite(r->data[i]->value.data, 1, r->data[i]->value.len, stdout);
      if (isatty(1))
        putchar('\n');
      rc = CLI_OK;
      break;
    }
    if (rc != CLI_OK)
      cli_fail("field %s not found", field);
  } else if (g->json) {
    jw_obj_begin();
    jw_key("data");
    jw_obj_begin();
    for (size_t i = 0; i < r->n_data; i++) {
      jw_key(S(r->data[i]->key));
      jw_strn(r->data[i]->value.data, r->data[i]->value.len);
    }
    jw_obj_end();
    jw_key("metadata");
    jw_obj_begin();
    version_rows(r->version, 1);
    custom_json(r->custom_metadata, r->n_custom_metadata);
    jw_obj_end();
    jw_obj_end();
    jw_end();
  } else {
    printf("====== Metadata ======\n");
    version_rows(r->version, 0);
    custom_row(r->custom_metadata, r->n_custom_metadata);
    tbl_print();
    printf("\n====== Data ======\n");
    for (size_t i = 0; i < r->n_data && rc == CLI_OK; i++) {
      char *val = printable(r->data[i]->value.data, r->data[i]->value.len);
      char *k = printable((const uint8_t *)S(r->data[i]->key), strlen(S(r->data[i]->key)));
      if (val == NULL || k == NULL) {
        rc = cli_fail("out of memory");
      } else {
        tbl_row(k, "%s", val);
      }
      free(k);
      if (val != NULL)
        cli_free_secret(val, strlen(val));
    }
    if (rc == CLI_OK)
      tbl_print();
  }
  cs_wire_response_free(res);
  return rc;
}

/* ------------------------------------------------------------ list */

static int kv2_list(cli_ctx *g, int argc, char **argv) {
  const char *mount = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse("kv list", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv list", mount)) != 0)
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
  if (g->json) {
    jw_obj_begin();
    jw_key("keys");
    jw_arr_begin();
    for (size_t i = 0; i < r->n_keys; i++)
      jw_str(r->keys[i]);
    jw_arr_end();
    jw_obj_end();
    jw_end();
  } else {
    printf("Keys\n----\n");
    for (size_t i = 0; i < r->n_keys; i++)
      printf("%s\n", S(r->keys[i]));
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

/* ------------------------------------------- delete, undelete, destroy */

static int kv2_versions(cli_ctx *g, const char *cmd, int op_case, int argc, char **argv) {
  const char *mount = NULL, *versions = NULL;
  const cli_opt opts[] = {{.name = "mount", .arg = 1, .val = &mount},
                          {.name = "versions", .arg = 1, .val = &versions}, {0}};
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(cmd, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount(cmd, mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("%s: missing PATH", cmd);
  uint64_t vs[KV2_MAX_VERSIONS_ARG];
  size_t nv = 0;
  if (versions == NULL && op_case != CUSTOS__REQUEST__OP_KV2_DELETE)
    return cli_usage_error("%s: missing --versions", cmd);
  if (versions != NULL && (rc = parse_versions(cmd, versions, vs, KV2_MAX_VERSIONS_ARG, &nv)) != 0)
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
  if ((rc = cli_parse("kv metadata get", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv metadata get", mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv metadata get: missing PATH");
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
  if (g->json) {
    jw_obj_begin();
    jw_key("data");
    jw_obj_begin();
    jw_kv_bool("cas_required", m->cas_required);
    jw_kv_str("created_time", c);
    jw_kv_u64("current_version", m->current_version);
    custom_json(m->custom_metadata, m->n_custom_metadata);
    jw_kv_str("delete_version_after", dva);
    jw_kv_u64("max_versions", m->max_versions);
    jw_kv_u64("oldest_version", m->oldest_version);
    jw_kv_str("updated_time", u);
    jw_key("versions");
    jw_obj_begin();
    for (size_t i = 0; i < m->n_versions; i++) {
      char num[24], vc[40], vd[40];
      snprintf(num, sizeof num, "%llu", (unsigned long long)m->versions[i]->version);
      fmt_us(m->versions[i]->created_time, vc, sizeof vc);
      fmt_us(m->versions[i]->deletion_time, vd, sizeof vd);
      jw_key(num);
      jw_obj_begin();
      jw_kv_str("created_time", vc);
      jw_kv_str("deletion_time", vd);
      jw_kv_bool("destroyed", m->versions[i]->destroyed);
      jw_obj_end();
    }
    jw_obj_end();
    jw_obj_end();
    jw_obj_end();
    jw_end();
  } else {
    printf("====== Metadata ======\n");
    tbl_row("cas_required", "%s", m->cas_required ? "true" : "false");
    tbl_row("created_time", "%s", c);
    tbl_row("current_version", "%llu", (unsigned long long)m->current_version);
    custom_row(m->custom_metadata, m->n_custom_metadata);
    tbl_row("delete_version_after", "%s", dva);
    tbl_row("max_versions", "%u", m->max_versions);
    tbl_row("oldest_version", "%llu", (unsigned long long)m->oldest_version);
    tbl_row("updated_time", "%s", u);
    tbl_print();
    for (size_t i = 0; i < m->n_versions; i++) {
      char vc[40], vd[40];
      fmt_us(m->versions[i]->created_time, vc, sizeof vc);
      fmt_us(m->versions[i]->deletion_time, vd, sizeof vd);
      printf("\n====== Version %llu ======\n", (unsigned long long)m->versions[i]->version);
      tbl_row("created_time", "%s", vc);
      tbl_row("deletion_time", "%s", vd[0] ? vd : "n/a");
      tbl_row("destroyed", "%s", m->versions[i]->destroyed ? "true" : "false");
      tbl_print();
    }
  }
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
  if ((rc = cli_parse("kv metadata put", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv metadata put", mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv metadata put: missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2MetaPutReq op = CUSTOS__KV2_META_PUT_REQ__INIT;
  op.path = pos[0];
  uint64_t u;
  if (maxv != NULL) {
    if (cli_parse_u64(maxv, 0, 1000, &u) != 0)
      return cli_usage_error("kv metadata put: --max-versions takes 0..1000 (0: the mount's)");
    op.max_versions_opt_case = CUSTOS__KV2_META_PUT_REQ__MAX_VERSIONS_OPT_MAX_VERSIONS;
    op.max_versions = (uint32_t)u;
  }
  if (casr != NULL) {
    int b;
    if (parse_bool_arg(casr, &b) != 0)
      return cli_usage_error("kv metadata put: --cas-required takes true or false");
    op.cas_required_opt_case = CUSTOS__KV2_META_PUT_REQ__CAS_REQUIRED_OPT_CAS_REQUIRED;
    op.cas_required = b;
  }
  if (dva != NULL) {
    if (cli_parse_duration(dva, &u) != 0)
      return cli_usage_error("kv metadata put: --delete-version-after takes a duration (\"0\": never)");
    op.delete_version_after_opt_case =
        CUSTOS__KV2_META_PUT_REQ__DELETE_VERSION_AFTER_OPT_DELETE_VERSION_AFTER;
    op.delete_version_after = u;
  }
  Custos__KvPair pairs[KV2_MAX_CUSTOM + 1], *pp[KV2_MAX_CUSTOM + 1];
  char kbuf[KV2_MAX_CUSTOM + 1][256];
  if (ncustom > KV2_MAX_CUSTOM)
    return cli_usage_error("kv metadata put: at most %d --custom-metadata", KV2_MAX_CUSTOM);
  for (size_t i = 0; i < ncustom; i++) {
    const char *eq = strchr(custom[i], '=');
    if (eq == NULL || eq == custom[i] || (size_t)(eq - custom[i]) >= sizeof kbuf[i])
      return cli_usage_error("kv metadata put: --custom-metadata takes K=V, got \"%s\"", custom[i]);
    memcpy(kbuf[i], custom[i], (size_t)(eq - custom[i]));
    kbuf[i][eq - custom[i]] = 0;
    custos__kv_pair__init(&pairs[i]);
    pairs[i].key = kbuf[i];
    pairs[i].value.data = (uint8_t *)(eq + 1);
    pairs[i].value.len = strlen(eq + 1);
    pp[i] = &pairs[i];
  }
  if (ncustom > 0 && clear)
    return cli_usage_error("kv metadata put: --custom-metadata and --clear-custom-metadata together");
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
  if ((rc = cli_parse("kv metadata delete", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if ((rc = check_mount("kv metadata delete", mount)) != 0)
    return rc;
  if (npos < 1)
    return cli_usage_error("kv metadata delete: missing PATH");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__Kv2MetaDeleteReq op = CUSTOS__KV2_META_DELETE_REQ__INIT;
  op.path = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_KV2_META_DELETE;
  req.kv2_meta_delete = &op;
  return cli_call_done(g, &req, "path", pos[0], "Deleted every version and the metadata of: kv/%s",
                       pos[0]);
}

/* ------------------------------------------------------------ entry */

/*
 * Whether argv (after "kv") is a versioned command: 1 when it names the v2
 * mount (--mount kv) or is undelete/destroy/metadata; 0 otherwise.  When it
 * names the v1 mount (--mount secret), *strip is the index of that option
 * (with its value when separate: 2 words, else 1) so kv.c can drop it;
 * -1 when there is none.
 */
int cli_kv2_selected(int argc, char **argv, int *strip) {
  *strip = -1;
  if (argc == 0)
    return 0;
  if (strcmp(argv[0], "undelete") == 0 || strcmp(argv[0], "destroy") == 0 ||
      strcmp(argv[0], "metadata") == 0)
    return 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = NULL;
    if (strcmp(a, "--") == 0)
      break;
    if (strcmp(a, "--mount") == 0 || strcmp(a, "-mount") == 0)
      v = i + 1 < argc ? argv[i + 1] : "";
    else if (strncmp(a, "--mount=", 8) == 0)
      v = a + 8;
    else if (strncmp(a, "-mount=", 7) == 0)
      v = a + 7;
    if (v == NULL)
      continue;
    if (strcmp(v, "secret") == 0 || strcmp(v, "secret/") == 0) {
      *strip = i;
      return 0;
    }
    return 1; /* kv, or a wrong name kv2.c reports */
  }
  return 0;
}

int cmd_kv2(cli_ctx *g, int argc, char **argv) {
  const char *sub = argv[0];
  if (strcmp(sub, "put") == 0)
    return kv2_put(g, argc - 1, argv + 1);
  if (strcmp(sub, "get") == 0)
    return kv2_get(g, argc - 1, argv + 1);
  if (strcmp(sub, "list") == 0)
    return kv2_list(g, argc - 1, argv + 1);
  if (strcmp(sub, "delete") == 0)
    return kv2_versions(g, "kv delete", CUSTOS__REQUEST__OP_KV2_DELETE, argc - 1, argv + 1);
  if (strcmp(sub, "undelete") == 0)
    return kv2_versions(g, "kv undelete", CUSTOS__REQUEST__OP_KV2_UNDELETE, argc - 1, argv + 1);
  if (strcmp(sub, "destroy") == 0)
    return kv2_versions(g, "kv destroy", CUSTOS__REQUEST__OP_KV2_DESTROY, argc - 1, argv + 1);
  if (strcmp(sub, "metadata") == 0) {
    if (argc < 2)
      return cli_usage_error("kv metadata: missing get, put or delete");
    if (strcmp(argv[1], "get") == 0)
      return meta_get(g, argc - 2, argv + 2);
    if (strcmp(argv[1], "put") == 0)
      return meta_put(g, argc - 2, argv + 2);
    if (strcmp(argv[1], "delete") == 0)
      return meta_delete(g, argc - 2, argv + 2);
    return cli_usage_error("kv metadata: unknown subcommand \"%s\"", argv[1]);
  }
  return cli_usage_error("kv: unknown subcommand \"%s\" for the versioned mount", sub);
}
