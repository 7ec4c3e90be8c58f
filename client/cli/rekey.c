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

/* JSON "keys_hex"/"keys_b64"; text "Key N: <b64>" lines. */
static int print_plain_keys(cli_ctx *g, size_t n, const ProtobufCBinaryData *keys) {
  for (int pass = 0; pass < 2; pass++) {
    out_list_begin(g, pass == 0 ? "keys_hex" : "keys_b64", NULL);
    for (size_t i = 0; i < n; i++) {
      char *s = pass == 0 ? cli_hex(keys[i].data, keys[i].len) : cli_b64(keys[i].data, keys[i].len);
      if (s == NULL) {
        out_list_end(g);
        return cli_fail(g, "out of memory");
      }
      out_item(g, s);
      if (pass == 1)
        out_text(g, "Key %zu: %s\n", i + 1, s);
      cli_free_secret(s, strlen(s));
    }
    out_list_end(g);
  }
  return CLI_OK;
}

/* The age files of a completed rekey: printed, or written to dir. */
static int print_age_keys(cli_ctx *g, const Custos__RekeyStatusRes *r, const char *dir) {
  Custos__InitRes as_init = CUSTOS__INIT_RES__INIT; /* the shape cli_age_* print */
  as_init.n_keys_age = r->n_keys_age;
  as_init.keys_age = r->keys_age;
  as_init.root_token_age = "";
  char *const *rcpt = r->n_recipients == r->n_keys_age ? r->recipients : NULL;
  if (dir != NULL)
    return cli_age_write_keys(g, dir, &as_init, rcpt, NULL);
  cli_age_print_keys(g, &as_init, rcpt, NULL);
  return CLI_OK;
}

static int print_rekey(cli_ctx *g, const Custos__RekeyStatusRes *r, const char *dir) {
  int rc = CLI_OK;
  size_t nkeys = r->n_keys + r->n_keys_age;
  if (nkeys > 0) {
    out_bool(g, "complete", NULL, 1);
    rc = r->n_keys ? print_plain_keys(g, r->n_keys, r->keys) : print_age_keys(g, r, dir);
    out_bool(g, "verification_required", NULL, r->verification_required);
    out_str(g, "verification_nonce", NULL, S(r->verification_nonce));
    out_bool(g, "backup", NULL, r->backup);
    out_text(g, "\ncustos rekeyed with %zu key shares and a key threshold of %u.", nkeys, r->t);
    if (r->n_keys_age)
      out_text(g, " Each share above is\nencrypted to its holder's age recipient: give each file "
                  "to its holder, who\nopens it with `age -d -i KEY.txt` or uses it directly "
                  "with\n`custos operator unseal --identity KEY.txt FILE`.\n");
    else
      out_text(g, " Please\nsecurely distribute the key shares printed above.\n");
    if (r->backup && !r->verification_required)
      out_text(g, "\nThe encrypted shares are also stored as the rekey backup:\n"
                  "  custos operator rekey --retrieve-backup\n");
    if (r->verification_required)
      out_text(g, "\nThe new keys are not active yet: %u of them must be submitted with\n"
                  "  custos operator rekey --verify --nonce %s [--identity KEY.txt] KEY\n"
                  "before the rekey takes effect.\n", r->t, S(r->verification_nonce));
    return rc;
  }
  out_bool(g, "started", "Started", r->started);
  out_str(g, "nonce", NULL, S(r->nonce));
  out_row_fmt(g, "Nonce", "%s", r->nonce && r->nonce[0] ? r->nonce : "n/a");
  out_u64(g, "n", "New Shares", r->n);
  out_u64(g, "t", "New Threshold", r->t);
  out_u64(g, "progress", NULL, r->progress);
  out_u64(g, "required", NULL, r->required);
  out_row_fmt(g, "Progress", "%u/%u", r->progress, r->required);
  out_bool(g, "verification_required", "Verification Required", r->verification_required);
  int vn = r->verification_nonce && r->verification_nonce[0];
  out_str(g, "verification_nonce", vn ? "Verification Nonce" : NULL, S(r->verification_nonce));
  out_u64(g, "verification_progress", NULL, r->verification_progress);
  if (vn)
    out_row_fmt(g, "Verification Progress", "%u/%u", r->verification_progress, r->t);
  if (r->n_recipients)
    out_row_fmt(g, "Age Recipients", "%zu (the new shares go only to them)", r->n_recipients);
  out_bool(g, "backup", "Backup", r->backup);
  out_bool(g, "complete", "Complete", r->complete);
  out_list_begin(g, "recipients", NULL);
  for (size_t i = 0; i < r->n_recipients; i++)
    out_item(g, r->recipients[i]);
  out_list_end(g);
  return rc;
}

static int print_backup(cli_ctx *g, const Custos__RekeyBackup *b, const char *dir) {
  char when[64];
  cli_fmt_time(b->created, 1, when, sizeof when);
  Custos__RekeyStatusRes as_rekey = CUSTOS__REKEY_STATUS_RES__INIT;
  as_rekey.n_keys_age = b->n_keys_age;
  as_rekey.keys_age = b->keys_age;
  as_rekey.n_recipients = b->n_recipients;
  as_rekey.recipients = b->recipients;
  out_str(g, "nonce", NULL, S(b->nonce));
  out_u64(g, "n", NULL, b->shares);
  out_u64(g, "t", NULL, b->threshold);
  out_i64(g, "created", NULL, b->created);
  out_list_begin(g, "recipients", NULL);
  for (size_t i = 0; i < b->n_recipients; i++)
    out_item(g, b->recipients[i]);
  out_list_end(g);
  out_text(g, "Rekey backup of nonce %s (%u shares, threshold %u, stored %s):\n\n", S(b->nonce),
           b->shares, b->threshold, when);
  return print_age_keys(g, &as_rekey, dir);
}

/* The share of an update or verification: an age file with --identity, or
 * the key itself (argument, file, stdin or prompt). */
static int get_share(cli_ctx *g, const char *arg, const char *identity, int verify, uint8_t **key, size_t *len) {
  if (identity != NULL)
    return cli_age_unseal_key(g, arg, identity, key, len);
  return cli_get_key(g, arg, verify ? "New Key (will be hidden): " : "Current Unseal Key (will be hidden): ",
                     key, len);
}

static int parse_counts(cli_ctx *g, const char *shares, const char *threshold, size_t nage, uint32_t *n,
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
      return cli_usage(g, "--key-shares must be a number from 1 to 255");
    *n = (uint32_t)v;
    if (threshold == NULL && *n < *t)
      *t = *n; /* keep the default threshold valid for a small share count */
  }
  if (threshold != NULL) {
    if (cli_parse_u64(threshold, 1, 255, &v) != 0)
      return cli_usage(g, "--key-threshold must be a number from 1 to 255");
    *t = (uint32_t)v;
  }
  if (*t > *n)
    return cli_usage(g, "--key-threshold (%u) is larger than --key-shares (%u)",
                           *t, *n);
  if (nage > 0 && nage != *n)
    return cli_usage(g, "%zu age recipients for %u key shares: give one per "
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
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  int modes = init + status + cancel + retrieve + del;
  int age_opts = nrecipient > 0 || recipients_file != NULL || backup;
  if (modes > 1 || (modes && nonce != NULL) || ((status || cancel || retrieve || del) && verify))
    return cli_usage(g, "use one of --init, --status, --cancel, --nonce, "
                           "--retrieve-backup, --delete-backup");
  if (!init && (shares != NULL || threshold != NULL || age_opts))
    return cli_usage(g, "--key-shares, --key-threshold, --recipient, "
                           "--recipients-file and --backup go with --init");
  /* The age files arrive with the share that completes the rekey (or its
   * verification), and with --retrieve-backup. */
  if (output_dir != NULL && nonce == NULL && !retrieve)
    return cli_usage(g, "--output-dir goes with --nonce (the share that "
                           "completes the rekey writes the files) or --retrieve-backup");
  if (output_dir != NULL &&
      (rc = cli_age_check_output_dir(g, output_dir, 0, 0)) != 0)
    return rc;
  if (identity != NULL && (modes || nonce == NULL))
    return cli_usage(g, "--identity goes with --nonce and an age FILE");
  if (modes && npos > 0)
    return cli_usage(g, "unexpected argument \"%.64s\"", pos[0]);
  if (!modes && nonce == NULL)
    return cli_usage(g, "needs --init, --status, --cancel, --nonce NONCE, "
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
    if ((rc = cli_age_recipients(g, recipient, nrecipient, recipients_file, &age, &nage)) != 0)
      return rc;
    if ((rc = parse_counts(g, shares, threshold, nage, &n, &t)) == 0) {
      if (backup && nage == 0)
        rc = cli_usage(g, "--backup needs --recipient or --recipients-file "
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
    if ((rc = get_share(g, npos ? pos[0] : NULL, identity, verify, &key, &keylen)) != 0)
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
    out_bool(g, "deleted", NULL, 1);
    out_text(g, "Rekey backup deleted.\n");
  } else if (retrieve) {
    rc = print_backup(g, res->rekey_backup, output_dir);
  } else {
    /* --output-dir: only the completing response carries the files. */
    rc = print_rekey(g, res->rekey, output_dir);
  }
  cs_wire_response_free(res);
  return rc;
}

void cli_print_relayed(cli_ctx *g, const Custos__StatusRes *s) {
  out_list_begin(g, "relayed", NULL);
  for (size_t i = 0; i < s->n_relayed; i++) {
    const Custos__UnsealRelayResult *r = s->relayed[i];
    out_obj_begin(g);
    out_str(g, "node_id", NULL, S(r->node_id));
    out_bool(g, "delivered", NULL, r->delivered);
    out_bool(g, "sealed", NULL, r->sealed);
    out_u64(g, "progress", NULL, r->progress);
    out_u64(g, "t", NULL, r->t);
    out_str(g, "error", NULL, S(r->error));
    out_obj_end(g);
  }
  out_list_end(g);
  for (size_t i = 0; i < s->n_relayed; i++) {
    const Custos__UnsealRelayResult *r = s->relayed[i];
    if (!r->delivered)
      out_text(g, "Relayed to %s: %s\n", S(r->node_id), S(r->error));
    else if (r->error && r->error[0])
      out_text(g, "Relayed to %s: refused: %s (%s, progress %u/%u)\n", S(r->node_id), r->error,
               r->sealed ? "sealed" : "unsealed", r->progress, r->t);
    else if (!r->sealed)
      out_text(g, "Relayed to %s: unsealed\n", S(r->node_id));
    else
      out_text(g, "Relayed to %s: sealed, progress %u/%u\n", S(r->node_id), r->progress, r->t);
  }
}
