/*
 * operator: the seal life cycle and key management commands: status,
 * operator init / unseal / seal / rotate / key-status / rotate-config /
 * rekey / raft ..., and the tables of `operator` and `operator raft`
 * (`operator snapshot` is in snapshot.c).
 *
 * Key shares pass through here in three forms (raw bytes from the server,
 * hex/base64 strings printed, bytes decoded from the user): each buffer is
 * wiped when it is freed (cli_free_secret, cs_wire_response_free).
 */
#include "age_keys.h"
#include "ceremony.h"
#include "cli.h"
#include "lifecycle.h"
#include "rekey.h"
#include "staged.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((x) != NULL ? (x) : "")

/* --------------------------------------------------------------- status */

/* Adds a StatusRes to the output; returns 0 when unsealed, CLI_USAGE (2)
 * when sealed. */
static int print_status(cli_ctx *g, const Custos__StatusRes *s) {
  out_bool(g, "initialized", "Initialized", s->initialized);
  out_bool(g, "sealed", "Sealed", s->sealed);
  /* JSON order t, n as docs/cli.md shows it (scripts match on it). */
  out_u64(g, "t", "Threshold", s->t);
  out_u64(g, "n", "Total Shares", s->n);
  out_u64(g, "progress", NULL, s->progress);
  out_str(g, "nonce", NULL, S(s->nonce));
  if (s->sealed) {
    out_row_fmt(g, "Unseal Progress", "%u/%u", s->progress, s->t);
    out_row_fmt(g, "Unseal Nonce", "%s", s->nonce && s->nonce[0] ? s->nonce : "n/a");
  }
  out_u64(g, "term", "Term", s->term);
  out_str(g, "version", NULL, S(s->version));
  out_row_fmt(g, "Version", "%s", s->version && s->version[0] ? s->version : "n/a");
  out_str(g, "ha_mode", NULL, S(s->ha_mode));
  out_row_fmt(g, "HA Mode", "%s", s->ha_mode && s->ha_mode[0] ? s->ha_mode : "n/a");
  out_str(g, "active_address", s->active_address && s->active_address[0] ? "Active Address" : NULL,
          S(s->active_address));
  if (s->ha_mode && strcmp(s->ha_mode, "standalone") != 0)
    out_bool(g, "removed_from_cluster", NULL, s->removed_from_cluster);
  if (s->removed_from_cluster)
    out_row_fmt(g, "Removed From Cluster", "true");
  cli_staged_status(g, s); /* seal_reason */
  if (s->snapshot_last_time || s->snapshot_last_error_time) {
    out_i64(g, "snapshot_last_time", NULL, s->snapshot_last_time);
    out_str(g, "snapshot_last_path", NULL, S(s->snapshot_last_path));
    out_str(g, "snapshot_last_error", NULL, S(s->snapshot_last_error));
    out_i64(g, "snapshot_last_error_time", NULL, s->snapshot_last_error_time);
  }
  char when[40];
  if (s->snapshot_last_time) {
    cli_fmt_time(s->snapshot_last_time, 0, when, sizeof when);
    out_row_fmt(g, "Last Snapshot", "%s %s", when, S(s->snapshot_last_path));
  }
  if (s->snapshot_last_error && s->snapshot_last_error[0]) {
    cli_fmt_time(s->snapshot_last_error_time, 0, when, sizeof when);
    out_row_fmt(g, "Last Snapshot Error", "%s %s", when, s->snapshot_last_error);
  }
  return s->sealed ? CLI_USAGE : CLI_OK;
}

int cmd_status(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos);
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

/* Adds key shares: JSON arrays "<prefix>_hex" and "<prefix>_b64"; text
 * "<label> N: <b64>" lines.  Returns CLI_OK or CLI_FAIL. */
static int print_keys(cli_ctx *g, const char *prefix, const char *label, size_t n,
                      const ProtobufCBinaryData *keys) {
  char name[64];
  for (int pass = 0; pass < 2; pass++) {
    snprintf(name, sizeof name, "%s_%s", prefix, pass == 0 ? "hex" : "b64");
    out_list_begin(g, name, NULL);
    for (size_t i = 0; i < n; i++) {
      char *s = pass == 0 ? cli_hex(keys[i].data, keys[i].len) : cli_b64(keys[i].data, keys[i].len);
      if (s == NULL) {
        out_list_end(g);
        return cli_fail(g, "out of memory");
      }
      out_item(g, s);
      if (pass == 1)
        out_text(g, "%s %zu: %s\n", label, i + 1, s);
      cli_free_secret(s, strlen(s));
    }
    out_list_end(g);
  }
  return CLI_OK;
}

static int parse_shares(cli_ctx *g, const char *shares, const char *threshold, uint32_t *n,
                        uint32_t *t) {
  uint64_t v;
  if (shares != NULL) {
    if (cli_parse_u64(shares, 1, 255, &v) != 0)
      return cli_usage(g, "--key-shares must be a number from 1 to 255");
    *n = (uint32_t)v;
  }
  if (threshold != NULL) {
    if (cli_parse_u64(threshold, 1, 255, &v) != 0)
      return cli_usage(g, "--key-threshold must be a number from 1 to 255");
    *t = (uint32_t)v;
  }
  if (*t > *n)
    return cli_usage(g, "--key-threshold (%u) is larger than --key-shares (%u)", *t, *n);
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
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (root_recipient != NULL &&
      (rc = cli_age_check_recipient(g, "--root-token-recipient", root_recipient)) != 0)
    return rc;
  if ((rc = cli_age_recipients(g, recipient, nrecipient, recipients_file, &age, &nage)) != 0)
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
  if ((rc = parse_shares(g, shares, threshold, &n, &t)) == 0 && nage > 0 && nage != n)
    rc = cli_usage(g, "%zu age recipients for %u key shares: give one per share", nage, n);
  if (rc == 0 && output_dir != NULL && nage == 0)
    rc = cli_usage(g, "--output-dir goes with --recipient or --recipients-file");
  if (rc == 0 && output_dir != NULL)
    rc = cli_age_check_output_dir(g, output_dir, nage, root_recipient != NULL);
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
  rc = print_keys(g, "unseal_keys", "Unseal Key", r->n_keys, r->keys);
  if (output_dir != NULL && rc == 0)
    rc = cli_age_write_keys(g, output_dir, r, age, root_recipient);
  else
    cli_age_print_keys(g, r, age, root_recipient);
  out_u64(g, "unseal_shares", NULL, rn);
  out_u64(g, "unseal_threshold", NULL, rt);
  out_str(g, "root_token", NULL, S(r->root_token));
  if (r->root_token != NULL && r->root_token[0] != '\0')
    out_text(g, "\nInitial Root Token: %s\n\n", r->root_token);
  else
    out_text(g, "\n");
  out_text(g,
           "custos initialized with %u key shares and a key threshold of %u. Please\n"
           "securely distribute the key shares printed above. When custosd is sealed\n"
           "or restarted, %u of these keys are needed to unseal it.\n\n"
           "custos does not store the key shares: if more than %u of them are lost,\n"
           "the data cannot be recovered. Revoke the root token once other tokens exist.\n",
           rn, rt, rt, rn >= rt ? rn - rt : 0);
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
  int reset = 0, cluster = 0, rc;
  const char *nonce = NULL, *identity = NULL;
  const cli_opt opts[] = {
    { .name = "reset", .arg = 0, .flag = &reset },
    { .name = "nonce", .arg = 1, .val = &nonce },
    { .name = "identity", .arg = 1, .val = &identity },
    { .name = "cluster", .arg = 0, .flag = &cluster },
    { 0 },
  };
  char *pos[1];
  size_t npos;
  char fetched[128];
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  if (reset && npos > 0)
    return cli_usage(g, "--reset takes no key");
  if (nonce != NULL && !reset)
    return cli_usage(g, "--nonce goes with --reset");
  if (identity != NULL && reset)
    return cli_usage(g, "--identity goes with an age FILE, not --reset");
  if (cluster && reset)
    return cli_usage(g, "--cluster goes with a share, not --reset (a reset is per node)");
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
    if ((rc = cli_age_unseal_key(g, npos ? pos[0] : NULL, identity, &key, &keylen)) != 0)
      return rc;
    op.key.data = key;
    op.key.len = keylen;
  } else {
    if ((rc = cli_get_key(g, npos ? pos[0] : NULL, "Unseal Key (will be hidden): ", &key, &keylen)) != 0)
      return rc;
    op.key.data = key;
    op.key.len = keylen;
  }
  op.cluster = cluster; /* relay to every other member (rekey.c prints what they did) */
  req.op_case = CUSTOS__REQUEST__OP_UNSEAL;
  req.unseal = &op;
  rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_STATUS, &res);
  cli_free_secret(key, keylen);
  if (rc != 0)
    return rc;
  rc = print_status(g, res->status);
  if (res->status->n_relayed > 0)
    cli_print_relayed(g, res->status);
  cs_wire_response_free(res);
  return rc;
}

/* ----------------------------------------------------------------- seal */

static int op_seal(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos)) != 0)
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
  int rc, wait = 0;
  char when[64];
  const cli_opt opts[] = { { .name = "wait", .arg = 0, .flag = &wait }, { 0 } };
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
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
  out_text(g, "Success! Rotated key\n\n");
  out_u64(g, "term", "Key Term", res->rotate->term);
  out_str(g, "install_time", "Install Time", when);
  out_bool(g, "staged", NULL, res->rotate->staged);
  if (res->rotate->staged)
    out_row_fmt(g, "State", "staged (activates once every voter holds it)");
  cs_wire_response_free(res);
  return CLI_OK;
}

/* operator key-status, rewrap, retire-term: lifecycle.c.  operator rotate
 * with --rewrap, --retire or --rate is lifecycle.c's too. */
static int op_rotate_any(cli_ctx *g, int argc, char **argv) {
  for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "--rate") == 0 || strncmp(argv[i], "--rate=", 7) == 0)
      return cli_rotate_lifecycle(g, argc, argv);
  if (cli_rotate_is_lifecycle(argc, argv))
    return cli_rotate_lifecycle(g, argc, argv);
  return op_rotate(g, argc, argv);
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
  if ((rc = cli_parse(g, argc, argv, opts, NULL, 0, &npos)) != 0)
    return rc;
  if (enable && disable)
    return cli_usage(g, "--enable and --disable exclude each other");

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
      return cli_usage(g, "--max-operations needs a number");
    op.max_operations_opt_case = CUSTOS__ROTATE_CONFIG_REQ__MAX_OPERATIONS_OPT_MAX_OPERATIONS;
    op.max_operations = v;
    op.set = 1;
  }
  if (interval != NULL) {
    uint64_t v;
    if (cli_parse_duration(interval, &v) != 0)
      return cli_usage(g, "bad --interval \"%.64s\" (e.g. 90s, 24h, 7d, 0)", interval);
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
  out_bool(g, "enabled", "Enabled", r->enabled);
  out_u64(g, "max_operations", "Max Operations", r->max_operations);
  out_str(g, "interval", NULL, iv);
  out_row_fmt(g, "Interval", "%s", r->interval_seconds ? iv : "0s (none)");
  out_u64(g, "interval_seconds", NULL, r->interval_seconds);
  cs_wire_response_free(res);
  return CLI_OK;
}

/* ---------------------------------------------------------------- rekey */

/* operator rekey: rekey.c (cli_rekey). */

/* -------------------------------------------------------------- dispatch */

/* ------------------------------------------------------------ raft (HA) */

static int raft_list_peers(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftListPeersReq op = CUSTOS__RAFT_LIST_PEERS_REQ__INIT;
  Custos__Response *res;
  req.op_case = CUSTOS__REQUEST__OP_RAFT_LIST_PEERS;
  req.raft_list_peers = &op;
  if ((rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_RAFT_PEERS, &res)) != 0)
    return rc;
  const Custos__RaftPeersRes *p = res->raft_peers;
  out_list_begin(g, "peers", "");
  for (size_t i = 0; i < p->n_peers; i++) {
    const Custos__RaftPeer *q = p->peers[i];
    char contact[32], term[16];
    if (q->last_contact_ms < 0)
      snprintf(contact, sizeof contact, "never");
    else
      snprintf(contact, sizeof contact, "%.1fs ago", (double)q->last_contact_ms / 1000.0);
    snprintf(term, sizeof term, "%u", q->keyring_term);
    out_obj_begin(g);
    out_str(g, "node_id", "Node", S(q->node_id));
    out_str(g, "address", "Address", S(q->address));
    out_str(g, "api_address", "API Address", S(q->api_address));
    out_bool(g, "voter", "Voter", q->voter);
    out_bool(g, "leader", NULL, q->leader);
    out_str(g, NULL, "State", q->leader ? "leader" : "follower");
    out_u64(g, "applied_index", "Applied Index", q->applied_index);
    out_bool(g, "reachable", NULL, q->reachable);
    out_str(g, NULL, "Reachable", q->reachable ? "reachable" : "unreachable");
    out_i64(g, "last_contact_ms", NULL, q->last_contact_ms);
    out_str(g, NULL, "Last Contact", contact);
    if (q->reported) {
      out_bool(g, "sealed", NULL, q->sealed);
      out_u64(g, "keyring_term", NULL, q->keyring_term);
    }
    out_str(g, NULL, "Sealed", !q->reported ? "unknown" : q->sealed ? "sealed" : "unsealed");
    out_str(g, NULL, "Term", q->reported ? term : "-");
    out_obj_end(g);
  }
  out_list_end(g);
  cs_wire_response_free(res);
  return CLI_OK;
}

static int raft_remove_peer(cli_ctx *g, int argc, char **argv) {
  size_t npos;
  char *pos[1];
  int rc;
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 1, &npos)) != 0)
    return rc;
  if (npos != 1)
    return cli_usage(g, "expected one node id");
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
  if ((rc = cli_parse(g, argc, argv, NULL, pos, 2, &npos)) != 0)
    return rc;
  if (npos != 2)
    return cli_usage(g, "expected NODE_ID and its cluster ADDRESS");
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
  if ((rc = cli_parse(g, argc, argv, NULL, NULL, 0, &npos)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__RaftopsStepDownReq op = CUSTOS__RAFTOPS_STEP_DOWN_REQ__INIT;
  req.op_case = CUSTOS__REQUEST__OP_RAFT_STEP_DOWN;
  req.raft_step_down = &op;
  return cli_call_done(g, &req, "stepped_down", NULL,
                       "This node is no longer the leader; another member took over.");
}

/* ------------------------------------------------------------ the tables */

const cli_cmd cli_raft_cmds[] = {
  { "list-peers", raft_list_peers, NULL, "cluster members, leader, applied index, health", "",
    "Lists the members as the active node knows them: id, raft address, API\n"
    "address, voter, leader, applied index, reachable, last contact, sealed and\n"
    "keyring term.  Needs sudo on sys/raft.\n" },
  { "add-peer", raft_add_peer, NULL, "approve a new member (its cluster address)",
    "NODE_ID ADDRESS",
    "The leader adds node NODE_ID at its cluster ADDRESS (HOST:PORT, the new\n"
    "node's cluster.address), sends it the log or a snapshot and promotes it to\n"
    "voter once it caught up; the command returns then.  Needs sudo on sys/raft.\n" },
  { "remove-peer", raft_remove_peer, NULL, "remove a member from the raft configuration",
    "NODE_ID",
    "Removes a member that is gone for good.  A removed node that still runs\n"
    "seals itself.  Needs sudo on sys/raft.\n" },
  { "step-down", raft_step_down, NULL, "hand leadership to an up-to-date unsealed member", "",
    "The active hands raft leadership to the unsealed voter with the highest\n"
    "applied index and returns once another node leads.  Needs sudo on sys/raft.\n" },
  { 0 },
};

const cli_cmd cli_operator_cmds[] = {
  { "init", op_init, NULL, "initialize a new server and print its key shares",
    "[--key-shares N] [--key-threshold T] [--recipient age1...]...\n"
    " [--recipients-file FILE] [--root-token-recipient age1...] [--output-dir DIR]",
    "Options:\n"
    "  --key-shares N              number of key shares, 1..255 (default 5, or one\n"
    "                              per age recipient)\n"
    "  --key-threshold T           shares needed to unseal, 1..N (default 3)\n"
    "  --recipient age1...         encrypt the next share to this age recipient\n"
    "                              (repeat it, one per share, in order)\n"
    "  --recipients-file FILE      age recipients, one a line ('#' comments)\n"
    "  --root-token-recipient age1...  encrypt the root token too\n"
    "  --output-dir DIR            write DIR/unseal-key-N.age (and root-token.age)\n"
    "                              instead of printing the encrypted files\n"
    "\n"
    "The shares and the root token are shown only once.\n" },
  { "unseal", op_unseal, NULL, "submit one unseal key share",
    "[--cluster] [KEY]\n[--cluster] --identity KEYFILE [FILE]\n--reset [--nonce NONCE]",
    "Submits one key share (hex or base64; read from stdin, hidden at a\n"
    "terminal, when KEY is omitted or -).  Prints the seal status.\n"
    "\n"
    "Options:\n"
    "  --identity KEYFILE   FILE (stdin if omitted) is an age file holding the\n"
    "                       share; decrypt it with an identity of KEYFILE\n"
    "  --reset              discard the shares submitted so far\n"
    "  --nonce NONCE        with --reset: the ceremony to discard (default: the\n"
    "                       one status shows now)\n"
    "  --cluster            cluster mode: also relay the share to every other\n"
    "                       member, which adds it to its own unseal (one\n"
    "                       ceremony for the whole cluster; docs/ceremony.md)\n"
    "\n"
    "Exit codes: 0 unsealed, 2 still sealed, 1 error.\n" },
  { "seal", op_seal, NULL, "seal the server", "", "Needs a token allowed to seal.\n" },
  { "rotate", op_rotate_any, NULL, "install a new encryption key term",
    "[--wait]\n--rewrap [--retire] [--rate OPS_PER_SEC]",
    "New values are encrypted under the new term once it is active: at once\n"
    "standalone; in a cluster once every voter holds it (it is staged until\n"
    "then, at most seal.max_activation_delay).  Old terms still decrypt.\n"
    "\n"
    "Options:\n"
    "  --wait            until the term is active (in a cluster it is staged\n"
    "                    until every voter holds it; docs/ha.md)\n"
    "  --rewrap          then wait until the term is active and re-encrypt every\n"
    "                    value under an older term to it (progress on stderr)\n"
    "  --retire          then retire every older term (its key is wiped)\n"
    "  --rate N          re-encrypt at most N values per second\n" },
  { "key-status", cli_key_status, NULL, "the active key term and every term's state and use",
    "[--verify]",
    "Options:\n"
    "  --verify   also count the stored values of each term by a full scan and\n"
    "             check the kept counts against it (exit 1 on a mismatch)\n" },
  { "rewrap", cli_rewrap, NULL, "re-encrypt stored values to the active term",
    "[--below-term N] [--rate OPS_PER_SEC] [--wait]\n--status [--wait]",
    "Starts (or joins) a pass in the server that re-encrypts every value under\n"
    "an older term.  The pass goes on if the CLI stops.\n"
    "\n"
    "Options:\n"
    "  --below-term N   only values under terms below N\n"
    "  --rate N         at most N values per second\n"
    "  --wait           wait until the pass is finished (progress on stderr)\n"
    "  --status         the progress of the pass\n" },
  { "retire-term", cli_retire_term, NULL, "wipe the key of a term no value uses", "N",
    "Refused while stored values are still encrypted under term N.\n" },
  { "rotate-config", op_rotate_config, NULL, "read or change automatic key rotation",
    "[--enable|--disable] [--max-operations N] [--interval DURATION]",
    "Without options, prints the configuration; with options, changes only the\n"
    "settings given.\n"
    "\n"
    "Options:\n"
    "  --enable, --disable     turn automatic rotation on or off\n"
    "  --max-operations N      rotate after N encryptions under one term\n"
    "  --interval DURATION     rotate after this time (0: never by time)\n" },
  { "rekey", cli_rekey, NULL, "replace the key shares (a quorum of current shares)",
    "--init [--key-shares N] [--key-threshold T] [--verify]\n"
    " [--recipient age1...]... [--recipients-file FILE] [--backup]\n"
    "--nonce NONCE [--identity KEYFILE] [--output-dir DIR] [KEY|FILE|-]\n"
    "--verify --nonce VNONCE [--identity KEYFILE] [NEWKEY|FILE|-]\n"
    "--status | --cancel | --retrieve-backup [--output-dir DIR] | --delete-backup",
    "Options:\n"
    "  --init                start a rekey (with --key-shares, --key-threshold)\n"
    "  --verify              with --init: the new shares must be proven before\n"
    "                        they take effect; with --nonce: submit a NEW share\n"
    "  --recipient age1...   (--init) encrypt the next new share to this age\n"
    "                        recipient (repeat it, one per share, in order)\n"
    "  --recipients-file F   (--init) age recipients, one a line\n"
    "  --backup              (--init) also keep the encrypted shares as a backup\n"
    "  --nonce NONCE         submit one share (KEY, or stdin) to the rekey NONCE\n"
    "  --identity KEYFILE    the share is an age FILE: decrypt it with KEYFILE\n"
    "  --output-dir DIR      write the new age files to DIR/unseal-key-N.age\n"
    "  --status              progress of the rekey\n"
    "  --cancel              abandon the rekey\n"
    "  --retrieve-backup     print (or --output-dir) the backup of the shares\n"
    "  --delete-backup       delete that backup\n"
    "\n"
    "The new shares are printed once, when the last current share arrives.\n" },
  { "verify-share", cli_verify_share, NULL, "check that a share belongs to the current key set",
    "[SHARE|-]\n--identity KEYFILE [FILE]",
    "No token needed, and nothing changes (unseal progress included).  SHARE\n"
    "is hex or base64 (stdin, hidden at a terminal, when omitted or -).\n"
    "\n"
    "Options:\n"
    "  --identity KEYFILE   FILE (stdin if omitted) is an age file holding the\n"
    "                       share; decrypt it with an identity of KEYFILE\n"
    "\n"
    "Exit codes: 0 the share is valid, 1 it is not (or an error).\n" },
  { "generate-root", cli_generate_root, NULL, "mint a new root token with a quorum of shares",
    "--init (--otp [OTP] | --server-otp | --recipient age1...)\n"
    "--nonce NONCE [--identity KEYFILE] [--output FILE] [SHARE|FILE|-]\n"
    "--status\n"
    "--cancel --nonce NONCE\n"
    "--decode ENCODED --otp OTP",
    "No token needed: a threshold of key holders each submit a share to the\n"
    "attempt NONCE; the last one receives the new root token, encoded with the\n"
    "OTP (or encrypted to the age recipient) given at --init.\n"
    "\n"
    "Options:\n"
    "  --init              start an attempt\n"
    "  --otp [OTP]         (--init) encode the token with OTP; alone: make one here\n"
    "  --server-otp        (--init) have the server make the OTP\n"
    "  --recipient age1... (--init) encrypt the token to this age recipient\n"
    "  --nonce NONCE       submit a share to the attempt NONCE\n"
    "  --identity KEYFILE  the share is an age FILE: decrypt it with KEYFILE\n"
    "  --output FILE       (completing share) write the age-encrypted token to FILE\n"
    "  --status            progress of the attempt\n"
    "  --cancel            abandon the attempt NONCE\n"
    "  --decode ENCODED    decode the token with --otp OTP (offline)\n" },
  { "raft", NULL, cli_raft_cmds, "cluster membership (HA)", NULL, NULL },
  { "snapshot", NULL, cli_snapshot_cmds, "save, check and restore snapshots of the store", NULL,
    NULL },
  { 0 },
};
