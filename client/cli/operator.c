/*
 * operator: the seal life cycle and key management commands: status,
 * operator init / unseal / seal / rotate / key-status / rotate-config /
 * rekey.
 *
 * Key shares pass through here in three forms (raw bytes from the server,
 * hex/base64 strings printed, bytes decoded from the user): each buffer is
 * wiped when it is freed (cli_free_secret, cs_wire_response_free).
 */
#include "age_keys.h"
#include "cli.h"
#include "staged.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((x) != NULL ? (x) : "")

/* --------------------------------------------------------------- status */

/* Prints a StatusRes; returns 0 when unsealed, CLI_USAGE (2) when sealed. */
static int print_status(const cli_ctx *g, const Custos__StatusRes *s) {
  if (g->json) {
    jw_obj_begin();
    jw_kv_bool("initialized", s->initialized);
    jw_kv_bool("sealed", s->sealed);
    jw_kv_u64("t", s->t);
    jw_kv_u64("n", s->n);
    jw_kv_u64("progress", s->progress);
    jw_kv_str("nonce", S(s->nonce));
    jw_kv_u64("term", s->term);
    jw_kv_str("version", S(s->version));
    jw_kv_str("ha_mode", S(s->ha_mode));
    jw_kv_str("active_address", S(s->active_address));
    if (s->ha_mode && strcmp(s->ha_mode, "standalone") != 0)
      jw_kv_bool("removed_from_cluster", s->removed_from_cluster);
    cli_staged_status_json(s);
    if (s->snapshot_last_time || s->snapshot_last_error_time) {
      jw_kv_i64("snapshot_last_time", s->snapshot_last_time);
      jw_kv_str("snapshot_last_path", S(s->snapshot_last_path));
      jw_kv_str("snapshot_last_error", S(s->snapshot_last_error));
      jw_kv_i64("snapshot_last_error_time", s->snapshot_last_error_time);
    }
    jw_obj_end();
    jw_end();
  } else {
    tbl_row("Initialized", "%s", s->initialized ? "true" : "false");
    tbl_row("Sealed", "%s", s->sealed ? "true" : "false");
    tbl_row("Total Shares", "%u", s->n);
    tbl_row("Threshold", "%u", s->t);
    if (s->sealed) {
      tbl_row("Unseal Progress", "%u/%u", s->progress, s->t);
      tbl_row("Unseal Nonce", "%s", s->nonce && s->nonce[0] ? s->nonce : "n/a");
    }
    tbl_row("Term", "%u", s->term);
    tbl_row("Version", "%s", s->version && s->version[0] ? s->version : "n/a");
    tbl_row("HA Mode", "%s", s->ha_mode && s->ha_mode[0] ? s->ha_mode : "n/a");
    if (s->active_address && s->active_address[0])
      tbl_row("Active Address", "%s", s->active_address);
    if (s->removed_from_cluster)
      tbl_row("Removed From Cluster", "true");
    cli_staged_status_table(s);
    char when[40];
    if (s->snapshot_last_time) {
      cli_fmt_time(s->snapshot_last_time, 0, when, sizeof when);
      tbl_row("Last Snapshot", "%s %s", when, S(s->snapshot_last_path));
    }
    if (s->snapshot_last_error && s->snapshot_last_error[0]) {
      cli_fmt_time(s->snapshot_last_error_time, 0, when, sizeof when);
      tbl_row("Last Snapshot Error", "%s %s", when, s->snapshot_last_error);
    }
    tbl_print();
  }
  return s->sealed ? CLI_USAGE : CLI_OK;
}

int cmd_status(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc = cli_parse("status", argc, argv, NULL, NULL, 0, &npos);
  if (rc != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__StatusReq op = CUSTOS__STATUS_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_STATUS;
  req.status = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_STATUS, &res)) != 0)
    return rc;
  rc = print_status(g, res->status);
  cs_wire_response_free(res);
  return rc;
}

/* ----------------------------------------------------------------- keys */

/* Prints key shares as JSON arrays "<prefix>_hex" and "<prefix>_b64", or
 * as "<label> N: <b64>" lines.  Returns CLI_OK or CLI_FAIL. */
static int print_keys(const cli_ctx *g, const char *prefix, const char *label, size_t n,
                      const ProtobufCBinaryData *keys) {
  char name[64];
  for (int pass = 0; pass < (g->json ? 2 : 1); pass++) {
    if (g->json) {
      snprintf(name, sizeof name, "%s_%s", prefix, pass == 0 ? "hex" : "b64");
      jw_key(name);
      jw_arr_begin();
    }
    for (size_t i = 0; i < n; i++) {
      char *s = g->json && pass == 0 ? cli_hex(keys[i].data, keys[i].len)
                                     : cli_b64(keys[i].data, keys[i].len);
      if (s == NULL)
        return cli_fail("out of memory");
      if (g->json)
        jw_str(s);
      else
        printf("%s %zu: %s\n", label, i + 1, s);
      cli_free_secret(s, strlen(s));
    }
    if (g->json)
      jw_arr_end();
  }
  return CLI_OK;
}

static int parse_shares(const char *cmd, const char *shares, const char *threshold,
                        uint32_t *n, uint32_t *t) {
  uint64_t v;
  if (shares != NULL) {
    if (cli_parse_u64(shares, 1, 255, &v) != 0)
      return cli_usage_error("%s: --key-shares must be a number from 1 to 255", cmd);
    *n = (uint32_t)v;
  }
  if (threshold != NULL) {
    if (cli_parse_u64(threshold, 1, 255, &v) != 0)
      return cli_usage_error("%s: --key-threshold must be a number from 1 to 255", cmd);
    *t = (uint32_t)v;
  }
  if (*t > *n)
    return cli_usage_error("%s: --key-threshold (%u) is larger than --key-shares (%u)", cmd, *t, *n);
  return 0;
}

/* ----------------------------------------------------------------- init */

static int op_init(cli_ctx *g, int argc, char **argv) {
  const char *shares = NULL, *threshold = NULL, *recipients_file = NULL, *root_recipient = NULL;
  const char *output_dir = NULL;
  const char *recipient[255 /* one per share */];
  size_t nrecipient = 0, nage = 0;
  char **age = NULL;
  const cli_opt opts[] = {
    { .name = "key-shares", .arg = 1, .val = &shares },
    { .name = "key-threshold", .arg = 1, .val = &threshold },
    { .name = "recipient", .arg = 2, .list = recipient, .nlist = &nrecipient,
      .cap = 255 },
    { .name = "recipients-file", .arg = 1, .val = &recipients_file },
    { .name = "root-token-recipient", .arg = 1, .val = &root_recipient },
    { .name = "output-dir", .arg = 1, .val = &output_dir },
    { 0 },
  };
  size_t npos;
  uint32_t n = 5, t = 3;
  int rc;
  if ((rc = cli_parse("operator init", argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (root_recipient != NULL &&
      (rc = cli_age_check_recipient("operator init", "--root-token-recipient", root_recipient)) != 0)
    return rc;
  if ((rc = cli_age_recipients("operator init", recipient, nrecipient, recipients_file, &age,
                               &nage)) != 0)
    return rc;
  char nbuf[24];
  if (shares == NULL && nage > 0) { /* one share per recipient */
    snprintf(nbuf, sizeof nbuf, "%zu", nage);
    shares = nbuf;
  }
  if (shares != NULL && threshold == NULL) {
    /* Keep the default threshold valid for a small share count. */
    uint64_t v;
    if (cli_parse_u64(shares, 1, 255, &v) == 0 && v < t)
      t = (uint32_t)v;
  }
  if ((rc = parse_shares("operator init", shares, threshold, &n, &t)) == 0 && nage > 0 &&
      nage != n)
    rc = cli_usage_error("operator init: %zu age recipients for %u key shares: give one per share",
                         nage, n);
  if (rc == 0 && output_dir != NULL && nage == 0)
    rc = cli_usage_error("operator init: --output-dir goes with --recipient or --recipients-file");
  if (rc == 0 && output_dir != NULL)
    rc = cli_age_check_output_dir("operator init", output_dir, nage, root_recipient != NULL);
  if (rc != 0) {
    cli_age_recipients_free(age, nage);
    return rc;
  }

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__InitReq op = CUSTOS__INIT_REQ__INIT;
  Custos__Response *res;
  op.shares = n;
  op.threshold = t;
  op.n_recipients = nage;
  op.recipients = age;
  op.root_token_recipient = (char *)(root_recipient ? root_recipient : "");
  req.op_case = CUSTOS__REQUEST__OP_INIT;
  req.init = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_INIT, &res)) != 0) {
    cli_age_recipients_free(age, nage);
    return rc;
  }
  const Custos__InitRes *r = res->init;
  uint32_t rn = r->shares ? r->shares : (uint32_t)r->n_keys;
  uint32_t rt = r->threshold ? r->threshold : t;
  if (rn == 0)
    rn = (uint32_t)r->n_keys_age;
  if (g->json) {
    jw_obj_begin();
    rc = print_keys(g, "unseal_keys", NULL, r->n_keys, r->keys);
    if (output_dir != NULL && rc == 0)
      rc = cli_age_write_keys(output_dir, 1, r, age, root_recipient);
    else
      cli_age_print_keys(1, r, age, root_recipient);
    jw_kv_u64("unseal_shares", rn);
    jw_kv_u64("unseal_threshold", rt);
    jw_kv_str("root_token", S(r->root_token));
    jw_obj_end();
    jw_end();
  } else {
    rc = print_keys(g, NULL, "Unseal Key", r->n_keys, r->keys);
    if (output_dir != NULL && rc == 0)
      rc = cli_age_write_keys(output_dir, 0, r, age, root_recipient);
    else
      cli_age_print_keys(0, r, age, root_recipient);
    if (r->root_token != NULL && r->root_token[0] != '\0')
      printf("\nInitial Root Token: %s\n\n", r->root_token);
    else
      printf("\n");
    printf("custos initialized with %u key shares and a key threshold of %u. Please\n"
           "securely distribute the key shares printed above. When custosd is sealed\n"
           "or restarted, %u of these keys are needed to unseal it.\n\n"
           "custos does not store the key shares: if more than %u of them are lost,\n"
           "the data cannot be recovered. Revoke the root token once other tokens exist.\n",
           rn, rt, rt, rn >= rt ? rn - rt : 0);
  }
  cs_wire_response_free(res);
  cli_age_recipients_free(age, nage);
  return rc;
}

/* --------------------------------------------------------------- unseal */

/* The nonce of the unseal in progress, from status, into out ("" if none). */
static int unseal_nonce(cli_ctx *g, char *out, size_t cap) {
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__StatusReq op = CUSTOS__STATUS_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_STATUS;
  req.status = &op;
  int rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_STATUS, &res);
  if (rc != 0)
    return rc;
  snprintf(out, cap, "%s", res->status->nonce ? res->status->nonce : "");
  cs_wire_response_free(res);
  return 0;
}

static int op_unseal(cli_ctx *g, int argc, char **argv) {
  int reset = 0, rc;
  const char *nonce = NULL, *identity = NULL;
  const cli_opt opts[] = {
    { .name = "reset", .arg = 0, .flag = &reset },
    { .name = "nonce", .arg = 1, .val = &nonce },
    { .name = "identity", .arg = 1, .val = &identity },
    { 0 },
  };
  char *pos[1];
  size_t npos;
  char fetched[128];
  if ((rc = cli_parse("operator unseal", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (reset && npos > 0)
    return cli_usage_error("operator unseal: --reset takes no key");
  if (nonce != NULL && !reset)
    return cli_usage_error("operator unseal: --nonce goes with --reset");
  if (identity != NULL && reset)
    return cli_usage_error("operator unseal: --identity goes with an age FILE, not --reset");
  /* A reset names the ceremony it discards: the one status shows now,
   * unless --nonce says which one the operator meant. */
  if (reset && nonce == NULL) {
    if ((rc = unseal_nonce(g, fetched, sizeof fetched)) != 0)
      return rc;
    nonce = fetched;
  }

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__UnsealReq op = CUSTOS__UNSEAL_REQ__INIT;
  Custos__Response *res;
  uint8_t *key = NULL;
  size_t keylen = 0;
  if (reset) {
    op.reset = 1;
    op.nonce = (char *)nonce;
  } else if (identity != NULL) { /* pos[0]: an age file holding the share */
    if ((rc = cli_age_unseal_key(npos ? pos[0] : NULL, identity, &key, &keylen)) != 0)
      return rc;
    op.key.data = key;
    op.key.len = keylen;
  } else {
    if ((rc = cli_get_key(npos ? pos[0] : NULL, "Unseal Key (will be hidden): ", &key, &keylen)) != 0)
      return rc;
    op.key.data = key;
    op.key.len = keylen;
  }
  req.op_case = CUSTOS__REQUEST__OP_UNSEAL;
  req.unseal = &op;
  rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_STATUS, &res);
  cli_free_secret(key, keylen);
  if (rc != 0)
    return rc;
  rc = print_status(g, res->status);
  cs_wire_response_free(res);
  return rc;
}

/* ----------------------------------------------------------------- seal */

static int op_seal(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse("operator seal", argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__SealReq op = CUSTOS__SEAL_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_SEAL;
  req.seal = &op;
  return cli_call_done(g, &req, "sealed", NULL, "custos is sealed.");
}

/* --------------------------------------------------- rotate, key-status */

static int op_rotate(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  char when[64];
  int wait = 0;
  const cli_opt opts[] = {{ .name = "wait", .arg = 0, .flag = &wait }, { 0 }};
  if ((rc = cli_parse("operator rotate", argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RotateReq op = CUSTOS__ROTATE_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_ROTATE;
  req.rotate = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_ROTATE, &res)) != 0)
    return rc;
  /* --wait: until the term is active (staged activation in a cluster). */
  if (wait && res->rotate->staged && (rc = cli_rotate_wait(g, res->rotate->term)) != CLI_OK) {
    cs_wire_response_free(res);
    return rc;
  }
  if (wait)
    res->rotate->staged = 0;
  cli_fmt_time(res->rotate->install_time, 0, when, sizeof when);
  if (g->json) {
    jw_obj_begin();
    jw_kv_u64("term", res->rotate->term);
    jw_kv_str("install_time", when);
    jw_kv_bool("staged", res->rotate->staged);
    jw_obj_end();
    jw_end();
  } else {
    printf("Success! Rotated key\n\n");
    tbl_row("Key Term", "%u", res->rotate->term);
    tbl_row("Install Time", "%s", when);
    if (res->rotate->staged)
      tbl_row("State", "staged (activates once every voter holds it)");
    tbl_print();
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

static int op_key_status(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  char when[64];
  if ((rc = cli_parse("operator key-status", argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__KeyStatusReq op = CUSTOS__KEY_STATUS_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_KEY_STATUS;
  req.key_status = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_KEY_STATUS, &res)) != 0)
    return rc;
  const Custos__KeyStatusRes *k = res->key_status;
  cli_fmt_time(k->install_time, 0, when, sizeof when);
  if (g->json) {
    jw_obj_begin();
    jw_kv_u64("term", k->term);
    jw_kv_str("install_time", when);
    jw_kv_u64("encryptions", k->encryptions);
    jw_key("terms");
    jw_arr_begin();
    for (size_t i = 0; i < k->n_terms; i++) {
      char w[64];
      cli_fmt_time(k->terms[i]->install_time, 0, w, sizeof w);
      jw_obj_begin();
      jw_kv_u64("term", k->terms[i]->term);
      jw_kv_str("install_time", w);
      jw_kv_u64("encryptions", k->terms[i]->encryptions);
      jw_obj_end();
    }
    jw_arr_end();
    cli_staged_key_status_json(k);
    jw_obj_end();
    jw_end();
  } else {
    tbl_row("Key Term", "%u", k->term);
    tbl_row("Install Time", "%s", when);
    tbl_row("Encryption Count", "%llu", (unsigned long long)k->encryptions);
    cli_staged_key_status_table(k);
    tbl_print();
    if (k->n_terms > 0) {
      printf("\n%-6s    %-20s    %s\n", "Term", "Install Time", "Encryptions");
      printf("%-6s    %-20s    %s\n", "----", "------------", "-----------");
      for (size_t i = 0; i < k->n_terms; i++) {
        cli_fmt_time(k->terms[i]->install_time, 0, when, sizeof when);
        printf("%-6u    %-20s    %llu\n", k->terms[i]->term, when,
               (unsigned long long)k->terms[i]->encryptions);
      }
    }
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

/* -------------------------------------------------------- rotate-config */

static int op_rotate_config(cli_ctx *g, int argc, char **argv) {
  int enable = 0, disable = 0, rc;
  const char *maxops = NULL, *interval = NULL;
  const cli_opt opts[] = {
    { .name = "enable", .arg = 0, .flag = &enable },
    { .name = "disable", .arg = 0, .flag = &disable },
    { .name = "max-operations", .arg = 1, .val = &maxops },
    { .name = "interval", .arg = 1, .val = &interval },
    { 0 },
  };
  size_t npos;
  if ((rc = cli_parse("operator rotate-config", argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (enable && disable)
    return cli_usage_error("operator rotate-config: --enable and --disable exclude each other");

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RotateConfigReq op = CUSTOS__ROTATE_CONFIG_REQ__INIT;
  Custos__Response *res;
  if (enable || disable) {
    op.enabled_opt_case = CUSTOS__ROTATE_CONFIG_REQ__ENABLED_OPT_ENABLED;
    op.enabled = enable;
    op.set = 1;
  }
  if (maxops != NULL) {
    uint64_t v;
    if (cli_parse_u64(maxops, 0, UINT64_MAX, &v) != 0)
      return cli_usage_error("operator rotate-config: --max-operations needs a number");
    op.max_operations_opt_case = CUSTOS__ROTATE_CONFIG_REQ__MAX_OPERATIONS_OPT_MAX_OPERATIONS;
    op.max_operations = v;
    op.set = 1;
  }
  if (interval != NULL) {
    uint64_t v;
    if (cli_parse_duration(interval, &v) != 0)
      return cli_usage_error("operator rotate-config: bad --interval \"%s\" (e.g. 90s, 24h, 7d, 0)",
                             interval);
    op.interval_opt_case = CUSTOS__ROTATE_CONFIG_REQ__INTERVAL_OPT_INTERVAL_SECONDS;
    op.interval_seconds = v;
    op.set = 1;
  }
  req.op_case = CUSTOS__REQUEST__OP_ROTATE_CONFIG;
  req.rotate_config = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_ROTATE_CONFIG, &res)) != 0)
    return rc;
  const Custos__RotateConfigRes *r = res->rotate_config;
  char iv[64];
  cli_fmt_duration(r->interval_seconds, iv, sizeof iv);
  if (g->json) {
    jw_obj_begin();
    jw_kv_bool("enabled", r->enabled);
    jw_kv_u64("max_operations", r->max_operations);
    jw_kv_str("interval", iv);
    jw_kv_u64("interval_seconds", r->interval_seconds);
    jw_obj_end();
    jw_end();
  } else {
    tbl_row("Enabled", "%s", r->enabled ? "true" : "false");
    tbl_row("Max Operations", "%llu", (unsigned long long)r->max_operations);
    tbl_row("Interval", "%s", r->interval_seconds ? iv : "0s (none)");
    tbl_print();
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

/* ---------------------------------------------------------------- rekey */

static int print_rekey(const cli_ctx *g, const Custos__RekeyStatusRes *r) {
  int rc = CLI_OK;
  if (r->n_keys > 0) {
    if (g->json) {
      jw_obj_begin();
      jw_kv_bool("complete", 1);
      rc = print_keys(g, "keys", NULL, r->n_keys, r->keys);
      jw_kv_bool("verification_required", r->verification_required);
      jw_kv_str("verification_nonce", S(r->verification_nonce));
      jw_obj_end();
      jw_end();
    } else {
      rc = print_keys(g, NULL, "Key", r->n_keys, r->keys);
      printf("\ncustos rekeyed with %zu key shares and a key threshold of %u. Please\n"
             "securely distribute the key shares printed above.\n", r->n_keys, r->t);
      if (r->verification_required)
        printf("\nThe new keys are not active yet: %u of them must be submitted with\n"
               "  custos operator rekey --verify --nonce %s KEY\n"
               "before the rekey takes effect.\n", r->t, S(r->verification_nonce));
    }
    return rc;
  }
  if (g->json) {
    jw_obj_begin();
    jw_kv_bool("started", r->started);
    jw_kv_str("nonce", S(r->nonce));
    jw_kv_u64("t", r->t);
    jw_kv_u64("n", r->n);
    jw_kv_u64("progress", r->progress);
    jw_kv_u64("required", r->required);
    jw_kv_bool("verification_required", r->verification_required);
    jw_kv_bool("complete", r->complete);
    jw_kv_str("verification_nonce", S(r->verification_nonce));
    jw_kv_u64("verification_progress", r->verification_progress);
    jw_obj_end();
    jw_end();
  } else {
    tbl_row("Started", "%s", r->started ? "true" : "false");
    tbl_row("Nonce", "%s", r->nonce && r->nonce[0] ? r->nonce : "n/a");
    tbl_row("New Shares", "%u", r->n);
    tbl_row("New Threshold", "%u", r->t);
    tbl_row("Progress", "%u/%u", r->progress, r->required);
    tbl_row("Verification Required", "%s", r->verification_required ? "true" : "false");
    if (r->verification_nonce && r->verification_nonce[0]) {
      tbl_row("Verification Nonce", "%s", r->verification_nonce);
      tbl_row("Verification Progress", "%u/%u", r->verification_progress, r->t);
    }
    tbl_row("Complete", "%s", r->complete ? "true" : "false");
    tbl_print();
  }
  return rc;
}

static int op_rekey(cli_ctx *g, int argc, char **argv) {
  int init = 0, status = 0, cancel = 0, verify = 0, rc;
  const char *nonce = NULL, *shares = NULL, *threshold = NULL;
  const cli_opt opts[] = {
    { .name = "init", .arg = 0, .flag = &init },
    { .name = "status", .arg = 0, .flag = &status },
    { .name = "cancel", .arg = 0, .flag = &cancel },
    { .name = "verify", .arg = 0, .flag = &verify },
    { .name = "nonce", .arg = 1, .val = &nonce },
    { .name = "key-shares", .arg = 1, .val = &shares },
    { .name = "key-threshold", .arg = 1, .val = &threshold },
    { 0 },
  };
  char *pos[1];
  size_t npos;
  if ((rc = cli_parse("operator rekey", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (init + status + cancel > 1 || ((init || status || cancel) && nonce != NULL) ||
      ((status || cancel) && verify))
    return cli_usage_error("operator rekey: use one of --init, --status, --cancel, --nonce");
  if (!init && (shares != NULL || threshold != NULL))
    return cli_usage_error("operator rekey: --key-shares/--key-threshold go with --init");
  if ((init || status || cancel) && npos > 0)
    return cli_usage_error("operator rekey: unexpected argument \"%s\"", pos[0]);
  if (!init && !status && !cancel && nonce == NULL)
    return cli_usage_error("operator rekey: needs --init, --status, --cancel or --nonce NONCE");

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RekeyInitReq o_init = CUSTOS__REKEY_INIT_REQ__INIT;
  Custos__RekeyStatusReq o_status = CUSTOS__REKEY_STATUS_REQ__INIT;
  Custos__RekeyCancelReq o_cancel = CUSTOS__REKEY_CANCEL_REQ__INIT;
  Custos__RekeyUpdateReq o_update = CUSTOS__REKEY_UPDATE_REQ__INIT;
  Custos__RekeyVerifyReq o_verify = CUSTOS__REKEY_VERIFY_REQ__INIT;
  Custos__Response *res;
  uint8_t *key = NULL;
  size_t keylen = 0;
  int result = CUSTOS__RESPONSE__RESULT_REKEY;

  if (init) {
    uint32_t n = 5, t = 3;
    if (shares != NULL && threshold == NULL) {
      uint64_t v;
      if (cli_parse_u64(shares, 1, 255, &v) == 0 && v < t)
        t = (uint32_t)v;
    }
    if ((rc = parse_shares("operator rekey", shares, threshold, &n, &t)) != 0)
      return rc;
    o_init.shares = n;
    o_init.threshold = t;
    o_init.verify = verify;
    req.op_case = CUSTOS__REQUEST__OP_REKEY_INIT;
    req.rekey_init = &o_init;
  } else if (status) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_STATUS;
    req.rekey_status = &o_status;
  } else if (cancel) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_CANCEL;
    req.rekey_cancel = &o_cancel;
  } else {
    if ((rc = cli_get_key(npos ? pos[0] : NULL,
                          verify ? "New Key (will be hidden): " : "Current Unseal Key (will be hidden): ",
                          &key, &keylen)) != 0)
      return rc;
    if (verify) {
      o_verify.nonce = (char *)nonce;
      o_verify.key.data = key;
      o_verify.key.len = keylen;
      req.op_case = CUSTOS__REQUEST__OP_REKEY_VERIFY;
      req.rekey_verify = &o_verify;
    } else {
      o_update.nonce = (char *)nonce;
      o_update.key.data = key;
      o_update.key.len = keylen;
      req.op_case = CUSTOS__REQUEST__OP_REKEY_UPDATE;
      req.rekey_update = &o_update;
    }
  }
  rc = cli_call(g, &req, result, &res);
  cli_free_secret(key, keylen);
  if (rc != 0)
    return rc;
  rc = print_rekey(g, res->rekey);
  cs_wire_response_free(res);
  return rc;
}

/* -------------------------------------------------------------- dispatch */

/* ------------------------------------------------------------ raft (HA) */

static int raft_list_peers(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse("operator raft list-peers", argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftListPeersReq op = CUSTOS__RAFT_LIST_PEERS_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_RAFT_LIST_PEERS;
  req.raft_list_peers = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_RAFT_PEERS, &res)) != 0)
    return rc;
  const Custos__RaftPeersRes *p = res->raft_peers;
  if (g->json) {
    jw_obj_begin();
    jw_key("peers");
    jw_arr_begin();
    for (size_t i = 0; i < p->n_peers; i++) {
      jw_obj_begin();
      jw_kv_str("node_id", p->peers[i]->node_id);
      jw_kv_str("address", p->peers[i]->address);
      jw_kv_str("api_address", p->peers[i]->api_address);
      jw_kv_bool("voter", p->peers[i]->voter);
      jw_kv_bool("leader", p->peers[i]->leader);
      jw_kv_u64("applied_index", p->peers[i]->applied_index);
      jw_kv_bool("reachable", p->peers[i]->reachable);
      jw_kv_i64("last_contact_ms", p->peers[i]->last_contact_ms);
      if (p->peers[i]->reported) {
        jw_kv_bool("sealed", p->peers[i]->sealed);
        jw_kv_u64("keyring_term", p->peers[i]->keyring_term);
      }
      jw_obj_end();
    }
    jw_arr_end();
    jw_obj_end();
    jw_end();
  } else {
    printf("%-10s  %-21s  %-21s  %-6s  %-8s  %-13s  %-11s  %-12s  %-8s  %s\n", "Node",
           "Address", "API Address", "Voter", "State", "Applied Index", "Reachable",
           "Last Contact", "Sealed", "Term");
    for (size_t i = 0; i < p->n_peers; i++) {
      const Custos__RaftPeer *q = p->peers[i];
      char contact[32], term[16];
      if (q->last_contact_ms < 0)
        snprintf(contact, sizeof contact, "never");
      else
        snprintf(contact, sizeof contact, "%.1fs ago", (double)q->last_contact_ms / 1000.0);
      snprintf(term, sizeof term, "%u", q->keyring_term);
      printf("%-10s  %-21s  %-21s  %-6s  %-8s  %-13llu  %-11s  %-12s  %-8s  %s\n", q->node_id,
             q->address, q->api_address, q->voter ? "true" : "false",
             q->leader ? "leader" : "follower", (unsigned long long)q->applied_index,
             q->reachable ? "reachable" : "unreachable", contact,
             !q->reported ? "unknown" : q->sealed ? "sealed" : "unsealed",
             q->reported ? term : "-");
    }
  }
  cs_wire_response_free(res);
  return CLI_OK;
}

static int raft_remove_peer(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  char *pos[1];
  int rc;
  if ((rc = cli_parse("operator raft remove-peer", argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos != 1)
    return cli_usage_error("operator raft remove-peer: expected one node id");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftRemovePeerReq op = CUSTOS__RAFT_REMOVE_PEER_REQ__INIT;
  op.node_id = pos[0];
  req.op_case = CUSTOS__REQUEST__OP_RAFT_REMOVE_PEER;
  req.raft_remove_peer = &op;
  return cli_call_done(g, &req, "removed", pos[0], "Removed peer %s from the raft configuration.",
                       pos[0]);
}

static int raft_add_peer(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  char *pos[2];
  int rc;
  if ((rc = cli_parse("operator raft add-peer", argc, argv, NULL, pos, 2, &npos)) != 0)
    return rc;
  if (npos != 2)
    return cli_usage_error("operator raft add-peer: expected NODE_ID and its cluster ADDRESS");
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftAddPeerReq op = CUSTOS__RAFT_ADD_PEER_REQ__INIT;
  op.node_id = pos[0];
  op.address = pos[1];
  req.op_case = CUSTOS__REQUEST__OP_RAFT_ADD_PEER;
  req.raft_add_peer = &op;
  return cli_call_done(g, &req, "added", pos[0],
                       "Added peer %s to the raft configuration (voter once it caught up).", pos[0]);
}

static int raft_step_down(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse("operator raft step-down", argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftopsStepDownReq op = CUSTOS__RAFTOPS_STEP_DOWN_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_RAFT_STEP_DOWN;
  req.raft_step_down = &op;
  return cli_call_done(g, &req, "stepped_down", NULL,
                       "This node is no longer the leader; another member took over.");
}

static int op_raft(cli_ctx *g, int argc, char **argv) {
  if (argc == 0)
    return cli_usage_error("operator raft: missing subcommand (list-peers, add-peer, remove-peer, "
                           "step-down)");
  if (strcmp(argv[0], "step-down") == 0)
    return raft_step_down(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "add-peer") == 0)
    return raft_add_peer(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "list-peers") == 0)
    return raft_list_peers(g, argc - 1, argv + 1);
  if (strcmp(argv[0], "remove-peer") == 0)
    return raft_remove_peer(g, argc - 1, argv + 1);
  return cli_usage_error("operator raft: unknown subcommand \"%s\"", argv[0]);
}

int cmd_operator(cli_ctx *g, int argc, char **argv) {
  static const struct {
    const char *name;
    int (*fn)(cli_ctx *, int, char **);
  } subs[] = {
    { "init", op_init }, { "unseal", op_unseal }, { "seal", op_seal },
    { "rotate", op_rotate }, { "key-status", op_key_status },
    { "rotate-config", op_rotate_config }, { "rekey", op_rekey }, { "raft", op_raft },
    { "snapshot", cli_snapshot },
  };
  if (argc == 0)
    return cli_usage_error("operator: missing subcommand");
  for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++)
    if (strcmp(argv[0], subs[i].name) == 0)
      return subs[i].fn(g, argc - 1, argv + 1);
  return cli_usage_error("operator: unknown subcommand \"%s\"", argv[0]);
}
