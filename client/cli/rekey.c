/*
 * rekey: `custos operator rekey`, the ceremony that replaces the key set,
 * with the new shares encrypted to their holders (age) and an optional
 * backup of them under the barrier, and the backup's retrieval and
 * deletion.  Also what `operator unseal --cluster` prints about the other
 * members.
 *
 *   rekey --init [--key-shares N] [--key-threshold T] [--verify]
 *         [--recipient age1... (one per share) | --recipients-file FILE]
 *         [--backup]
 *   rekey --nonce NONCE [--identity KEYFILE] [--output-dir DIR] [KEY|FILE|-]
 *   rekey --verify --nonce VNONCE [--identity KEYFILE] [KEY|FILE|-]  (a new share)
 *   rekey --status | --cancel | --retrieve-backup | --delete-backup
 *
 * With recipients the server returns only age files (one per new share, to
 * recipients[i]); --output-dir writes them to DIR/unseal-key-N.age (new
 * files only; an existing one makes the CLI print every file instead, as
 * the rekey is done by then).  It goes with the share that completes the
 * rekey, since that response carries the files, or with --retrieve-backup.
 */
#include "rekey.h"
#include "age_keys.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((x) ? (x) : "")

static int print_plain_keys(const cli_ctx *g, size_t n, const ProtobufCBinaryData *keys) {
  for (int pass = 0; pass < (g->json ? 2 : 1); pass++) {
    if (g->json) {
      jw_key(pass == 0 ? "keys_hex" : "keys_b64");
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
        printf("Key %zu: %s\n", i + 1, s);
      cli_free_secret(s, strlen(s));
    }
    if (g->json)
      jw_arr_end();
  }
  return CLI_OK;
}

/* The age files of a completed rekey: printed, or written to dir. */
static int print_age_keys(const cli_ctx *g, const Custos__RekeyStatusRes *r, const char *dir) {
  Custos__InitRes as_init = CUSTOS__INIT_RES__INIT; /* the shape cli_age_* print */
  as_init.n_keys_age = r->n_keys_age;
  as_init.keys_age = r->keys_age;
  as_init.root_token_age = "";
  char *const *rcpt = r->n_recipients == r->n_keys_age ? r->recipients : NULL;
  if (dir != NULL)
    return cli_age_write_keys(dir, g->json, &as_init, rcpt, NULL);
  cli_age_print_keys(g->json, &as_init, rcpt, NULL);
  return CLI_OK;
}

static int print_rekey(const cli_ctx *g, const Custos__RekeyStatusRes *r, const char *dir) {
  int rc = CLI_OK;
  size_t nkeys = r->n_keys + r->n_keys_age;
  if (nkeys > 0) {
    if (g->json) {
      jw_obj_begin();
      jw_kv_bool("complete", 1);
      rc = r->n_keys ? print_plain_keys(g, r->n_keys, r->keys) : print_age_keys(g, r, dir);
      jw_kv_bool("verification_required", r->verification_required);
      jw_kv_str("verification_nonce", S(r->verification_nonce));
      jw_kv_bool("backup", r->backup);
      jw_obj_end();
      jw_end();
      return rc;
    }
    rc = r->n_keys ? print_plain_keys(g, r->n_keys, r->keys) : print_age_keys(g, r, dir);
    printf("\ncustos rekeyed with %zu key shares and a key threshold of %u.", nkeys, r->t);
    if (r->n_keys_age)
      printf(" Each share above is\nencrypted to its holder's age recipient: give each file to "
             "its holder, who\nopens it with `age -d -i KEY.txt` or uses it directly with\n"
             "`custos operator unseal --identity KEY.txt FILE`.\n");
    else
      printf(" Please\nsecurely distribute the key shares printed above.\n");
    if (r->backup && !r->verification_required)
      printf("\nThe encrypted shares are also stored as the rekey backup:\n"
             "  custos operator rekey --retrieve-backup\n");
    if (r->verification_required)
      printf("\nThe new keys are not active yet: %u of them must be submitted with\n"
             "  custos operator rekey --verify --nonce %s [--identity KEY.txt] KEY\n"
             "before the rekey takes effect.\n", r->t, S(r->verification_nonce));
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
    jw_kv_bool("backup", r->backup);
    jw_key("recipients");
    jw_arr_begin();
    for (size_t i = 0; i < r->n_recipients; i++)
      jw_str(r->recipients[i]);
    jw_arr_end();
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
    if (r->n_recipients)
      tbl_row("Age Recipients", "%zu (the new shares go only to them)", r->n_recipients);
    tbl_row("Backup", "%s", r->backup ? "true" : "false");
    tbl_row("Complete", "%s", r->complete ? "true" : "false");
    tbl_print();
  }
  return rc;
}

static int print_backup(const cli_ctx *g, const Custos__RekeyBackup *b, const char *dir) {
  char when[64];
  cli_fmt_time(b->created, 1, when, sizeof when);
  Custos__RekeyStatusRes as_rekey = CUSTOS__REKEY_STATUS_RES__INIT;
  as_rekey.n_keys_age = b->n_keys_age;
  as_rekey.keys_age = b->keys_age;
  as_rekey.n_recipients = b->n_recipients;
  as_rekey.recipients = b->recipients;
  int rc;
  if (g->json) {
    jw_obj_begin();
    jw_kv_str("nonce", S(b->nonce));
    jw_kv_u64("n", b->shares);
    jw_kv_u64("t", b->threshold);
    jw_kv_i64("created", b->created);
    jw_key("recipients");
    jw_arr_begin();
    for (size_t i = 0; i < b->n_recipients; i++)
      jw_str(b->recipients[i]);
    jw_arr_end();
    rc = print_age_keys(g, &as_rekey, dir);
    jw_obj_end();
    jw_end();
    return rc;
  }
  printf("Rekey backup of nonce %s (%u shares, threshold %u, stored %s):\n\n", S(b->nonce),
         b->shares, b->threshold, when);
  return print_age_keys(g, &as_rekey, dir);
}

/* The share of an update or verification: an age file with --identity, or
 * the key itself (argument, file, stdin or prompt). */
static int get_share(const char *arg, const char *identity, int verify, uint8_t **key, size_t *len) {
  if (identity != NULL)
    return cli_age_unseal_key(arg, identity, key, len);
  return cli_get_key(arg, verify ? "New Key (will be hidden): " : "Current Unseal Key (will be hidden): ",
                     key, len);
}

static int parse_counts(const char *shares, const char *threshold, size_t nage, uint32_t *n,
                        uint32_t *t) {
  uint64_t v;
  char nbuf[24];
  *n = 5;
  *t = 3;
  if (shares == NULL && nage > 0) { /* one share per recipient */
    snprintf(nbuf, sizeof nbuf, "%zu", nage);
    shares = nbuf;
  }
  if (shares != NULL) {
    if (cli_parse_u64(shares, 1, 255, &v) != 0)
      return cli_usage_error("operator rekey: --key-shares must be a number from 1 to 255");
    *n = (uint32_t)v;
    if (threshold == NULL && *n < *t)
      *t = *n; /* keep the default threshold valid for a small share count */
  }
  if (threshold != NULL) {
    if (cli_parse_u64(threshold, 1, 255, &v) != 0)
      return cli_usage_error("operator rekey: --key-threshold must be a number from 1 to 255");
    *t = (uint32_t)v;
  }
  if (*t > *n)
    return cli_usage_error("operator rekey: --key-threshold (%u) is larger than --key-shares (%u)",
                           *t, *n);
  if (nage > 0 && nage != *n)
    return cli_usage_error("operator rekey: %zu age recipients for %u key shares: give one per "
                           "share", nage, *n);
  return 0;
}

int cli_rekey(cli_ctx *g, int argc, char **argv) {
  int init = 0, status = 0, cancel = 0, verify = 0, backup = 0, retrieve = 0, del = 0, rc;
  const char *nonce = NULL, *shares = NULL, *threshold = NULL, *recipients_file = NULL;
  const char *output_dir = NULL, *identity = NULL;
  const char *recipient[255];
  size_t nrecipient = 0;
  const cli_opt opts[] = {
    { .name = "init", .arg = 0, .flag = &init },
    { .name = "status", .arg = 0, .flag = &status },
    { .name = "cancel", .arg = 0, .flag = &cancel },
    { .name = "verify", .arg = 0, .flag = &verify },
    { .name = "nonce", .arg = 1, .val = &nonce },
    { .name = "key-shares", .arg = 1, .val = &shares },
    { .name = "key-threshold", .arg = 1, .val = &threshold },
    { .name = "recipient", .arg = 2, .list = recipient, .nlist = &nrecipient, .cap = 255 },
    { .name = "recipients-file", .arg = 1, .val = &recipients_file },
    { .name = "backup", .arg = 0, .flag = &backup },
    { .name = "output-dir", .arg = 1, .val = &output_dir },
    { .name = "identity", .arg = 1, .val = &identity },
    { .name = "retrieve-backup", .arg = 0, .flag = &retrieve },
    { .name = "delete-backup", .arg = 0, .flag = &del },
    { 0 },
  };
  char *pos[1];
  size_t npos;
  if ((rc = cli_parse("operator rekey", argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  int modes = init + status + cancel + retrieve + del;
  int age_opts = nrecipient > 0 || recipients_file != NULL || backup;
  if (modes > 1 || (modes && nonce != NULL) || ((status || cancel || retrieve || del) && verify))
    return cli_usage_error("operator rekey: use one of --init, --status, --cancel, --nonce, "
                           "--retrieve-backup, --delete-backup");
  if (!init && (shares != NULL || threshold != NULL || age_opts))
    return cli_usage_error("operator rekey: --key-shares, --key-threshold, --recipient, "
                           "--recipients-file and --backup go with --init");
  /* The age files arrive with the share that completes the rekey (or its
   * verification), and with --retrieve-backup. */
  if (output_dir != NULL && nonce == NULL && !retrieve)
    return cli_usage_error("operator rekey: --output-dir goes with --nonce (the share that "
                           "completes the rekey writes the files) or --retrieve-backup");
  if (output_dir != NULL &&
      (rc = cli_age_check_output_dir("operator rekey", output_dir, 0, 0)) != 0)
    return rc;
  if (identity != NULL && (modes || nonce == NULL))
    return cli_usage_error("operator rekey: --identity goes with --nonce and an age FILE");
  if (modes && npos > 0)
    return cli_usage_error("operator rekey: unexpected argument \"%s\"", pos[0]);
  if (!modes && nonce == NULL)
    return cli_usage_error("operator rekey: needs --init, --status, --cancel, --nonce NONCE, "
                           "--retrieve-backup or --delete-backup");

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RekeyInitReq o_init = CUSTOS__REKEY_INIT_REQ__INIT;
  Custos__RekeyStatusReq o_status = CUSTOS__REKEY_STATUS_REQ__INIT;
  Custos__RekeyCancelReq o_cancel = CUSTOS__REKEY_CANCEL_REQ__INIT;
  Custos__RekeyUpdateReq o_update = CUSTOS__REKEY_UPDATE_REQ__INIT;
  Custos__RekeyVerifyReq o_verify = CUSTOS__REKEY_VERIFY_REQ__INIT;
  Custos__RekeyBackupReq o_backup = CUSTOS__REKEY_BACKUP_REQ__INIT;
  Custos__RekeyBackupDeleteReq o_delete = CUSTOS__REKEY_BACKUP_DELETE_REQ__INIT;
  Custos__Response *res = NULL;
  uint8_t *key = NULL;
  size_t keylen = 0, nage = 0;
  char **age = NULL;
  ProtobufCBinaryData rbin[255];
  int result = CUSTOS__RESPONSE__RESULT_REKEY;

  if (init) {
    uint32_t n, t;
    if ((rc = cli_age_recipients("operator rekey", recipient, nrecipient, recipients_file, &age,
                                 &nage)) != 0)
      return rc;
    if ((rc = parse_counts(shares, threshold, nage, &n, &t)) == 0) {
      if (backup && nage == 0)
        rc = cli_usage_error("operator rekey: --backup needs --recipient or --recipients-file "
                             "(the backup holds the shares encrypted to them)");
    }
    if (rc != 0) {
      cli_age_recipients_free(age, nage);
      return rc;
    }
    for (size_t i = 0; i < nage; i++)
      rbin[i] = (ProtobufCBinaryData){.data = (uint8_t *)age[i], .len = strlen(age[i])};
    o_init.shares = n;
    o_init.threshold = t;
    o_init.verify = verify;
    o_init.n_recipients = nage;
    o_init.recipients = rbin;
    o_init.backup = backup;
    req.op_case = CUSTOS__REQUEST__OP_REKEY_INIT;
    req.rekey_init = &o_init;
  } else if (status) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_STATUS;
    req.rekey_status = &o_status;
  } else if (cancel) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_CANCEL;
    req.rekey_cancel = &o_cancel;
  } else if (retrieve) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_BACKUP;
    req.rekey_backup = &o_backup;
    result = CUSTOS__RESPONSE__RESULT_REKEY_BACKUP;
  } else if (del) {
    req.op_case = CUSTOS__REQUEST__OP_REKEY_BACKUP_DELETE;
    req.rekey_backup_delete = &o_delete;
    result = CUSTOS__RESPONSE__RESULT_EMPTY;
  } else {
    if ((rc = get_share(npos ? pos[0] : NULL, identity, verify, &key, &keylen)) != 0)
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
  cli_age_recipients_free(age, nage);
  if (rc != 0)
    return rc;
  if (del) {
    if (g->json) {
      jw_obj_begin();
      jw_kv_bool("deleted", 1);
      jw_obj_end();
      jw_end();
    } else {
      printf("Rekey backup deleted.\n");
    }
  } else if (retrieve) {
    rc = print_backup(g, res->rekey_backup, output_dir);
  } else {
    /* --output-dir: only the completing response carries the files. */
    rc = print_rekey(g, res->rekey, output_dir);
  }
  cs_wire_response_free(res);
  return rc;
}

void cli_print_relayed(const cli_ctx *g, const Custos__StatusRes *s) {
  if (g->json) {
    jw_key("relayed");
    jw_arr_begin();
    for (size_t i = 0; i < s->n_relayed; i++) {
      const Custos__UnsealRelayResult *r = s->relayed[i];
      jw_obj_begin();
      jw_kv_str("node_id", S(r->node_id));
      jw_kv_bool("delivered", r->delivered);
      jw_kv_bool("sealed", r->sealed);
      jw_kv_u64("progress", r->progress);
      jw_kv_u64("t", r->t);
      jw_kv_str("error", S(r->error));
      jw_obj_end();
    }
    jw_arr_end();
    return;
  }
  for (size_t i = 0; i < s->n_relayed; i++) {
    const Custos__UnsealRelayResult *r = s->relayed[i];
    if (!r->delivered)
      printf("Relayed to %s: %s\n", S(r->node_id), S(r->error));
    else if (r->error && r->error[0])
      printf("Relayed to %s: refused: %s (%s, progress %u/%u)\n", S(r->node_id), r->error,
             r->sealed ? "sealed" : "unsealed", r->progress, r->t);
    else if (!r->sealed)
      printf("Relayed to %s: unsealed\n", S(r->node_id));
    else
      printf("Relayed to %s: sealed, progress %u/%u\n", S(r->node_id), r->progress, r->t);
  }
}
