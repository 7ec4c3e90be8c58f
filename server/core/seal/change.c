/*
 * change: a change is one batch in flight plus what to do in memory once it
 * is committed.  Memory changes only in the commit callback, so a crash or
 * a failed commit at any instant leaves the old key set or the new one,
 * never a mix.
 *
 * Key changes (init, rotate, rotate config, rekey swap, and the token a
 * generate-root mints) are mutually exclusive (s->busy).  The counter
 * flush is housekeeping and never holds an operator back: it is not
 * started while a key change is in flight (a
 * flush that carries the old keyring must never land after a rotation that
 * carries the new one), but a key change may start while a flush is in
 * flight (s->flushing).  That is safe because the commit path keeps
 * submission order (one writer, FIFO; in a cluster, raft entries in
 * order): the flush lands first and the rotation's keyring, staged from
 * the same counters or later ones, replaces it; and completions run in
 * commit order, so the rotation's counter sum is the one that stays.
 * A change staged while unsealed is applied only if no event happened
 * meanwhile (epoch: the node was not sealed, resealed or reloaded); the
 * committed data is loaded at the next unseal or reload anyway.
 */
#include "seal_int.h"
#include "cs_error.h"
#include "log.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>

change *cs_seal__change_new(cs_seal *s, enum change_kind kind, cs_seal_cb cb, void *arg) {
  change *c = calloc(1, sizeof *c);
  if (c == NULL)
    return NULL;
  c->s = s;
  c->kind = kind;
  c->epoch = s->epoch;
  c->cb = cb;
  c->arg = arg;
  return c;
}

void cs_seal__change_free(change *c) {
  cs_keyring_free(c->next_kr);
  cs_seal__keyset_free(&c->ks);
  if (c->res.shares != NULL) {
    cs_wipe(c->res.shares, (size_t)c->res.n * c->res.share_len);
    free(c->res.shares);
  }
  if (c->res.root_token != NULL) {
    cs_wipe(c->res.root_token, strlen(c->res.root_token));
    free(c->res.root_token);
  }
  cs_rekey_status_clear(&c->res.rekey);
  cs_genroot_status_clear(&c->res.genroot);
  free(c);
}

/* A new key set replaces the old one (init, rekey). */
static void take_keyset(cs_seal *s, change *c) {
  cs_seal__keyset_free(&s->ks);
  s->ks = c->ks;
  memset(&c->ks, 0, sizeof c->ks);
}

static void apply_change(cs_seal *s, change *c) {
  int live = s->state == CS_SEAL_UNSEALED && c->epoch == s->epoch;
  switch (c->kind) {
  case CH_INIT:
    take_keyset(s, c);
    if (s->state == CS_SEAL_UNINITIALIZED) /* initialized, still sealed */
      cs_seal__set_state(s, CS_SEAL_SEALED, NULL, NULL);
    break;
  case CH_ROTATE:
    if (!live)
      break;
    if (c->res.staged)
      cs_info("keyring rotated: term %u is staged (term %u encrypts until every voter holds it)",
              c->res.term, cs_keyring_active(c->next_kr));
    else
      cs_info("keyring rotated: term %u is active", c->res.term);
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, c->next_kr);
    c->next_kr = NULL;
    break;
  case CH_ACTIVATE:
    if (!live)
      break;
    cs_info("keyring: term %u is active", c->res.term);
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, c->next_kr);
    c->next_kr = NULL;
    break;
  case CH_ROTATE_CONFIG:
    if (live)
      s->rot = c->rot;
    break;
  case CH_FLUSH:
    if (live)
      s->flushed_encryptions = c->flushed;
    break;
  case CH_REKEY:
    take_keyset(s, c);
    /* Unseal shares of the old set (sealed meanwhile) are void now; so are
     * those of a generate-root attempt started while the swap was in
     * flight (they were checked against the old set). */
    if (s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT)
      cs_warn("generate-root attempt %s ended: the key set changed (rekey)", s->cur.nonce);
    if (s->cer == CS_SEAL_CEREMONY_UNSEAL || s->cer == CS_SEAL_CEREMONY_GENERATE_ROOT)
      cs_seal__end_ceremony(s);
    cs_info("rekey complete: %u shares, threshold %u", s->ks.n, s->ks.t);
    break;
  case CH_RETIRE:
    if (!live)
      break;
    cs_info("term %u retired: its key is wiped and no longer stored", c->res.term);
    cs_seal__set_state(s, CS_SEAL_UNSEALED, NULL, c->next_kr);
    c->next_kr = NULL;
    break;
  case CH_EXPIRE:
  case CH_BACKUP_DELETE:
    break;
  case CH_GENROOT: /* a new token entry: nothing in memory follows it */
    cs_info("generate-root: the new root token is written");
    break;
  }
}

static const char *key_change_name(enum change_kind k) {
  switch (k) {
  case CH_INIT:
    return "init";
  case CH_ROTATE:
    return "rotate";
  case CH_ACTIVATE:
    return "activate";
  case CH_REKEY:
    return "rekey";
  case CH_RETIRE:
    return "retire";
  default:
    return NULL;
  }
}

static void on_committed(void *arg, int status) {
  change *c = arg;
  cs_seal *s = c->s;
  s->inflight--;
  int freed = c->kind != CH_FLUSH && c->kind != CH_EXPIRE && c->kind != CH_BACKUP_DELETE;
  if (c->kind == CH_FLUSH)
    s->flushing = 0;
  else if (freed)
    s->busy = s->busy_auto = 0;
  /* The store (every node's, in a cluster) refused to overwrite an existing
   * seal config: whoever initialized it first keeps their shares. */
  if (status == CS_EEXISTS && c->kind == CH_INIT)
    status = cs_error_set(CS_EALREADYINIT, "server is already initialized: the store already "
                                           "holds core/seal-config (init refused, nothing written)");
  if (status == 0 && !s->closing)
    apply_change(s, c);
  const char *what = key_change_name(c->kind);
  if (status == 0 && !s->closing && s->opts.on_key_change != NULL && what != NULL)
    s->opts.on_key_change(s->opts.key_change_ctx, what);
  if (status < 0 && c->kind == CH_FLUSH)
    cs_warn("could not persist encryption counters: %s", cs_error_message(status));
  if (c->cb != NULL)
    c->cb(c->arg, status, &c->res);
  cs_seal__change_free(c);
  if (s->closing && s->inflight == 0) {
    cs_seal__free(s);
    return;
  }
  /* Operator requests that met the server's own key change go now. */
  if (freed && !s->closing && s->slot_free != NULL)
    s->slot_free(s->slot_free_ctx);
}

int cs_seal_key_slot(const cs_seal *s) {
  return !s->busy ? CS_SEAL_SLOT_FREE : s->busy_auto ? CS_SEAL_SLOT_SERVER : CS_SEAL_SLOT_OPERATOR;
}

void cs_seal_on_key_slot_free(cs_seal *s, void (*fn)(void *ctx), void *ctx) {
  s->slot_free = fn;
  s->slot_free_ctx = ctx;
}

int cs_seal__submit(cs_seal *s, change *c, cs_batch *b) {
  int key_change = c->kind != CH_EXPIRE && c->kind != CH_FLUSH && c->kind != CH_BACKUP_DELETE;
  if (key_change)
    s->busy = 1;
  if (c->kind == CH_FLUSH)
    s->flushing = 1;
  s->inflight++;
  int rc;
  if (s->opts.submit != NULL) {
    rc = s->opts.submit(s->opts.submit_ctx, b, on_committed, c);
  } else {
    /* Synchronous backend (tests, tools): commit and complete right here. */
    rc = cs_store_commit(s->opts.store, b);
    if (rc == 0) {
      cs_batch_clear(b);
      on_committed(c, 0);
      return CS_SEAL_PENDING;
    }
  }
  cs_batch_clear(b);
  if (rc < 0) {
    s->inflight--;
    if (key_change)
      s->busy = 0;
    if (c->kind == CH_FLUSH)
      s->flushing = 0;
    cs_seal__change_free(c);
    return rc;
  }
  return CS_SEAL_PENDING;
}

int cs_seal__check_idle(cs_seal *s) {
  if (s->busy)
    return cs_error_set(CS_EBUSY, "another key change is being committed; retry");
  return 0;
}
