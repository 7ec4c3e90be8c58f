/*
 * cluster: raft set-up, leadership, membership and the status side channel.
 * See cluster.h.
 *
 * Side-channel messages (raft_tls messages; protobuf ClusterMessage and
 * ClusterReply, decoded and validated by cluster_msg.c), one request and
 * one reply per connection.  raft_tls hands every message over with the
 * node id its sender's certificate names; a message whose node_id is not
 * that one is refused and logged.
 *   ClusterStatus (a member to the leader, every poll interval): accepted
 *      only from a node in the raft configuration; sets that member's own
 *      status and API address.  Reply: ClusterStatusAck with the answering
 *      node's own id and API address, which the reporter believes only
 *      because the connection's peer certificate named the leader it
 *      dialled.
 *   ClusterJoin (a node started with `join`): never adds anyone.  The
 *      request is logged with the command an operator runs to approve it
 *      (`custos operator raft add-peer NODE_ID ADDRESS`, sudo on sys/raft).
 *      Reply: ClusterJoinAck (member or not, the leader's raft address).
 *
 * Trust of API addresses (where standbys send clients): a member's
 * api_address comes from this node's configuration or from that member's
 * own authenticated status report or status reply, never from a third
 * node.
 */
#include "cluster.h"
#include "role.h"
#include "cluster_msg.h"
#include "cs_error.h"
#include "fsm.h"
#include "log.h"
#include "raft_tls.h"
#include "recover.h"

#include <errno.h>
#include <mbedtls/platform_util.h>
#include <limits.h>
#include <raft.h>
#include <raft/uv.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_MEMBERS 16

typedef struct member {
  raft_id id;
  char node_id[64], address[128], api_address[128];
  int sealed;
  uint32_t term;
  uint64_t applied;
  uint64_t last_seen;    /* uv_now of the last status report; 0: never */
  uint64_t last_heard;   /* uv_now of the last sign of life (report, reply, probe); 0: never */
  int initialized;       /* its last report said its store holds a seal config */
  uint32_t staged_term;  /* staged activation: the staged term it says it holds */
  uint8_t staged_proof[CS_CLUSTER_PROOF_LEN];
} member;

struct cs_cluster {
  uv_loop_t *loop;
  cs_store *store;
  struct raft raft;
  struct raft_io io;
  struct raft_uv_transport transport;
  struct raft_fsm fsm;
  cs_cluster_config cfg;       /* copy; strings borrowed from the daemon's config */
  member members[MAX_MEMBERS];
  size_t n_members;
  uv_timer_t timer;
  void (*status_fn)(void *ctx, cs_node_status *st);
  void *status_ctx;
  char join_target[128];
  int report_inflight, join_inflight, join_told;
  int probes_inflight;
  char join_noted[CS_CLUSTER_NODE_ID_MAX + 1];   /* last join request logged, and when */
  uint64_t join_noted_at;
  struct raft_transfer transfer;
  int transferring;
  void (*transfer_done)(void *arg, int status);  /* step-down waiting for the new leader */
  void *transfer_arg;
  char transfer_to[64];
  void (*stop_done)(void *arg);
  void *stop_arg;
  int stop_refs;               /* while stopping: timer close + raft close */
  struct apply_req *applying;  /* entries appended here, not yet applied */
  int removed;                 /* the leader said this node is not in its configuration */
  uint64_t recovered_index;    /* --recover-peers entry not yet passed (no snapshots until then) */
  cs_cluster_unseal_fn unseal_fn; /* relayed unseal shares (cs_cluster_on_unseal_share) */
  void *unseal_ctx;
  int relay_inflight;          /* `unseal --cluster` relays waiting for answers */
  uint64_t lost_term;          /* a raft term whose leadership this node lost (see leading) */
  char marker[4200];
};

/* ---------------------------------------------------------------- members */

static raft_id id_of(const char *node_id) { return cs_cluster_raft_id(node_id); }

static member *member_by_id(cs_cluster *c, raft_id id) {
  for (size_t i = 0; i < c->n_members; i++)
    if (c->members[i].id == id)
      return &c->members[i];
  return NULL;
}

/* Finds or adds node_id's entry and updates what is given.  NULL when the
 * table is full, or when another node id has the same raft id: raft ids
 * are a 64-bit FNV-1a of the name, not collision resistant, so an entry is
 * only ever updated under the name it was created with. */
static member *member_learn(cs_cluster *c, const char *node_id, const char *address,
                            const char *api_address) {
  raft_id id = id_of(node_id);
  member *m = member_by_id(c, id);
  if (m != NULL && strcmp(m->node_id, node_id) != 0) {
    cs_warn("cluster: node ids %s and %s have the same raft id: ignoring %s", m->node_id, node_id,
            node_id);
    return NULL;
  }
  if (m == NULL) {
    if (c->n_members == MAX_MEMBERS)
      return NULL;
    m = &c->members[c->n_members++];
    memset(m, 0, sizeof *m);
    m->id = id;
    snprintf(m->node_id, sizeof m->node_id, "%s", node_id);
  }
  if (address != NULL && address[0])
    snprintf(m->address, sizeof m->address, "%s", address);
  if (api_address != NULL && api_address[0])
    snprintf(m->api_address, sizeof m->api_address, "%s", api_address);
  return m;
}

static int in_configuration(cs_cluster *c, raft_id id, int *voter) {
  for (unsigned i = 0; i < c->raft.configuration.n; i++)
    if (c->raft.configuration.servers[i].id == id) {
      if (voter)
        *voter = c->raft.configuration.servers[i].role == RAFT_VOTER;
      return 1;
    }
  return 0;
}

/* ---------------------------------------------------------------- accessors */

/*
 * raft 0.15 fails a lost leader's pending requests (RAFT_LEADERSHIPLOST)
 * while it is still in the leader state but has already freed the leader's
 * progress: an apply, barrier or change started from such a callback
 * crashes inside libraft.  A leader never leads again in the term it lost,
 * so from the first such callback on this node counts as not leading.
 */
static int leading(cs_cluster *c) {
  return raft_state(&c->raft) == RAFT_LEADER && c->lost_term != c->raft.current_term;
}

static void note_lost(cs_cluster *c, int status) {
  if (status == RAFT_LEADERSHIPLOST)
    c->lost_term = c->raft.current_term;
}

int cs_cluster_is_leader(cs_cluster *c) { return leading(c); }

int cs_cluster_raft_state(cs_cluster *c) {
  switch (raft_state(&c->raft)) {
  case RAFT_FOLLOWER: return CS_HA_RAFT_FOLLOWER;
  case RAFT_CANDIDATE: return CS_HA_RAFT_CANDIDATE;
  case RAFT_LEADER: return leading(c) ? CS_HA_RAFT_LEADER : CS_HA_RAFT_FOLLOWER;
  default: return CS_HA_RAFT_UNAVAILABLE;
  }
}

const char *cs_cluster_leader_api(cs_cluster *c) {
  raft_id id;
  const char *addr;
  raft_leader(&c->raft, &id, &addr);
  if (id == 0)
    return "";
  member *m = member_by_id(c, id);
  return m ? m->api_address : "";
}

const char *cs_cluster_node_id(const cs_cluster *c) { return c->cfg.self.node_id; }

/* ---------------------------------------------------------------- apply */

/* One appended entry (one commit-queue group) awaiting its apply. */
typedef struct apply_req {
  struct raft_apply req;
  struct apply_req *next;     /* cs_cluster.applying */
  cs_cluster *c;
  size_t n;
  int *status;                /* each batch's result, once applied here */
  int have_status;
  void (*done)(void *arg, int status, const int *each);
  void *arg;
} apply_req;

/* The state machine's per-batch results of entry `index` (every node
 * applies every entry; only the entries this node appended are waited
 * for).  Runs before the entry's raft callback, which may be deferred. */
static void on_fsm_results(void *ctx, uint64_t index, const int *status, size_t n) {
  cs_cluster *c = ctx;
  for (apply_req *a = c->applying; a != NULL; a = a->next)
    if (a->req.index == index) {
      if (n == a->n) {
        memcpy(a->status, status, n * sizeof *status);
        a->have_status = 1;
      }
      return;
    }
}

static void unlink_apply(cs_cluster *c, apply_req *a) {
  for (apply_req **pp = &c->applying; *pp != NULL; pp = &(*pp)->next)
    if (*pp == a) {
      *pp = a->next;
      return;
    }
}

static void on_applied(struct raft_apply *req, int status, void *result) {
  apply_req *a = req->data;
  int rc;
  note_lost(a->c, status);
  unlink_apply(a->c, a);
  if (status == 0)
    rc = cs_fsm_result(result);
  else if (status == RAFT_NOTLEADER)
    rc = cs_error_set(CS_ESTANDBY, "this node is no longer the leader");
  else
    rc = cs_error_set(CS_EUNAVAIL, "cluster: write not confirmed (%s); retry",
                      raft_strerror(status));
  if (rc == 0 && !a->have_status)
    rc = cs_error_set(CS_EINTERNAL, "cluster: no result for an applied entry");
  a->done(a->arg, rc, rc == 0 ? a->status : NULL);
  free(a->status);
  free(a);
}

int cs_cluster_submit(void *ctx, const cs_batch *const *batches, size_t n,
                      void (*done)(void *arg, int status, const int *each), void *arg) {
  cs_cluster *c = ctx;
  if (!leading(c))
    return cs_error_set(CS_ESTANDBY, "this node is not the leader");
  struct raft_buffer buf = {0};
  int rc = cs_fsm_entry_encode(batches, n, &buf);
  if (rc < 0)
    return rc;
  apply_req *a = calloc(1, sizeof *a);
  int *status = calloc(n ? n : 1, sizeof *status);
  if (a == NULL || status == NULL) {
    raft_free(buf.base);
    free(a);
    free(status);
    return CS_ENOMEM;
  }
  a->req.data = a;
  a->c = c;
  a->n = n;
  a->status = status;
  a->done = done;
  a->arg = arg;
  rc = raft_apply(&c->raft, &a->req, &buf, 1, on_applied);
  if (rc != 0) {
    raft_free(buf.base);
    free(status);
    free(a);
    if (rc == RAFT_NOTLEADER)
      return cs_error_set(CS_ESTANDBY, "this node is not the leader");
    return cs_error_set(CS_EUNAVAIL, "cluster: cannot append: %s", raft_errmsg(&c->raft));
  }
  /* raft_apply set req.index: the apply of that entry finds us by it. */
  a->next = c->applying;
  c->applying = a;
  return 0;
}

/* ---------------------------------------------------------------- barrier */

typedef struct barrier_req {
  struct raft_barrier req;
  cs_cluster *c;
  cs_done_fn done;
  void *arg;
} barrier_req;

static void on_barrier(struct raft_barrier *req, int status) {
  barrier_req *b = req->data;
  note_lost(b->c, status);
  int rc = status == 0 ? 0 : cs_error_set(CS_EUNAVAIL, "cluster: barrier not confirmed (%s)",
                                          raft_strerror(status));
  b->done(b->arg, rc);
  free(b);
}

int cs_cluster_barrier(cs_cluster *c, cs_done_fn done, void *arg) {
  if (!leading(c))
    return cs_error_set(CS_ESTANDBY, "this node is not the leader");
  barrier_req *b = calloc(1, sizeof *b);
  if (b == NULL)
    return CS_ENOMEM;
  b->req.data = b;
  b->c = c;
  b->done = done;
  b->arg = arg;
  int rc = raft_barrier(&c->raft, &b->req, on_barrier);
  if (rc != 0) {
    free(b);
    if (rc == RAFT_NOTLEADER)
      return cs_error_set(CS_ESTANDBY, "this node is not the leader");
    return cs_error_set(CS_EUNAVAIL, "cluster: cannot append a barrier: %s", raft_errmsg(&c->raft));
  }
  return 0;
}

uint64_t cs_cluster_term(cs_cluster *c) { return c->raft.current_term; }

/* ---------------------------------------------------------------- side channel */

static void on_change_done(struct raft_change *req, int status);

typedef struct change_req {
  struct raft_change req;
  cs_cluster *c;
  raft_id id;
  int promote;   /* after raft_add: assign voter */
  cs_done_fn done;
  void *arg;
} change_req;

static void on_change_done(struct raft_change *req, int status) {
  change_req *ch = req->data;
  cs_cluster *c = ch->c;
  note_lost(c, status);
  if (status == 0 && ch->promote) {
    ch->promote = 0;
    int rc = raft_assign(&c->raft, &ch->req, ch->id, RAFT_VOTER, on_change_done);
    if (rc == 0)
      return;
    cs_warn("cluster: cannot promote a new member: %s", raft_errmsg(&c->raft));
    status = rc;
  } else if (status == 0) {
    cs_info("cluster: membership change committed");
  } else {
    cs_warn("cluster: membership change failed: %s", raft_strerror(status));
  }
  if (ch->done)
    ch->done(ch->arg, status == 0 ? 0 : cs_error_set(CS_EUNAVAIL, "membership change failed: %s",
                                                     raft_strerror(status)));
  free(ch);
}

/* Encodes `r` as the reply (nothing when it does not fit). */
static void put_reply(const cs_cluster_reply *r, uint8_t *reply, size_t *reply_len) {
  size_t cap = *reply_len;
  *reply_len = 0;
  if (cs_cluster_reply_encode(r, reply, cap, reply_len) < 0)
    *reply_len = 0;
}

static void put_refusal(const char *why, uint8_t *reply, size_t *reply_len) {
  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_REFUSED};
  snprintf(r.reason, sizeof r.reason, "%s", why);
  put_reply(&r, reply, reply_len);
}

/* A status report from `peer` (authenticated, and the report's own node). */
static void on_status(cs_cluster *c, const char *peer, const cs_cluster_msg *m, uint8_t *reply,
                      size_t *reply_len) {
  if (!in_configuration(c, id_of(peer), NULL)) {
    cs_warn("cluster: refused a status report from node %s: not a member of the cluster", peer);
    /* The leader's configuration is the newest: a node it does not list
     * was removed (a follower's may lag behind an addition). */
    cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_REFUSED,
                          .removed = leading(c)};
    snprintf(r.reason, sizeof r.reason, "not a member of the cluster");
    put_reply(&r, reply, reply_len);
    return;
  }
  member *m2 = member_learn(c, peer, NULL, m->api_address);
  if (m2 == NULL) {
    put_refusal("node id not accepted", reply, reply_len);
    return;
  }
  m2->sealed = m->sealed;
  m2->initialized = m->initialized;
  m2->term = m->term;
  m2->applied = m->applied;
  m2->staged_term = m->staged_term;
  memcpy(m2->staged_proof, m->staged_proof, sizeof m2->staged_proof);
  m2->last_seen = m2->last_heard = uv_now(c->loop);
  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_STATUS};
  snprintf(r.node_id, sizeof r.node_id, "%s", c->cfg.self.node_id);
  snprintf(r.api_address, sizeof r.api_address, "%s", c->cfg.self.api_address);
  put_reply(&r, reply, reply_len);
}

/* A join request: logged for the operator (once a minute per node), never acted on. */
static void on_join(cs_cluster *c, const char *peer, const cs_cluster_msg *m, uint8_t *reply,
                    size_t *reply_len) {
  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_JOIN};
  r.member = in_configuration(c, id_of(peer), NULL);
  raft_id lid;
  const char *laddr;
  raft_leader(&c->raft, &lid, &laddr);
  if (lid != 0 && laddr != NULL)
    snprintf(r.leader_address, sizeof r.leader_address, "%s", laddr);
  uint64_t now = uv_now(c->loop);
  if (!r.member && (strcmp(c->join_noted, peer) != 0 || now - c->join_noted_at > 60000)) {
    cs_warn("cluster: join request from node %s (%s) not acted on: an operator must approve it "
            "with: custos operator raft add-peer %s %s",
            peer, m->address, peer, m->address);
    snprintf(c->join_noted, sizeof c->join_noted, "%s", peer);
    c->join_noted_at = now;
  }
  put_reply(&r, reply, reply_len);
}

/* A share relayed by `peer` (authenticated; the message's own node).  Only
 * a member of the configuration may relay, and only while relay_unseal is
 * on; the seal (unseal_fn) checks the share against this node's own key
 * set and ignores it when the node is not sealed. */
static void on_unseal_share(cs_cluster *c, const char *peer, const cs_cluster_msg *m,
                            uint8_t *reply, size_t *reply_len) {
  cs_cluster_reply r = {.type = CS_CLUSTER_REPLY_UNSEAL};
  snprintf(r.node_id, sizeof r.node_id, "%s", c->cfg.self.node_id);
  if (!in_configuration(c, id_of(peer), NULL)) {
    cs_warn("cluster: refused a relayed unseal share from node %s: not a member of the cluster",
            peer);
    put_refusal("not a member of the cluster", reply, reply_len);
    return;
  }
  if (!c->cfg.relay_unseal || c->unseal_fn == NULL) {
    cs_info("cluster: ignored an unseal share relayed by node %s: cluster.relay_unseal is off",
            peer);
    snprintf(r.reason, sizeof r.reason, "cluster.relay_unseal is off on node %s",
             c->cfg.self.node_id);
    put_reply(&r, reply, reply_len);
    return;
  }
  cs_relay_result a = {0};
  c->unseal_fn(c->unseal_ctx, peer, m->key, m->key_len, &a);
  r.sealed = a.sealed;
  r.progress = a.progress;
  r.t = a.t;
  snprintf(r.reason, sizeof r.reason, "%s", a.error);
  put_reply(&r, reply, reply_len);
}

void cs_cluster_on_unseal_share(cs_cluster *c, cs_cluster_unseal_fn fn, void *ctx) {
  c->unseal_fn = fn;
  c->unseal_ctx = ctx;
}

typedef struct relay relay;
typedef struct relay_leg {
  relay *r;
  size_t idx;
  raft_id id;
} relay_leg;
struct relay {
  cs_cluster *c;
  void (*done)(void *arg, const cs_relay_result *r, size_t n);
  void *arg;
  size_t n, pending;
  cs_relay_result res[MAX_MEMBERS];
  relay_leg legs[MAX_MEMBERS];
};

static void relay_finish(relay *r) {
  r->c->relay_inflight--;
  r->done(r->arg, r->res, r->n);
  free(r);
}

static void on_relay_reply(void *arg, int status, const char *peer, const uint8_t *reply,
                           size_t len) {
  relay_leg *leg = arg;
  relay *r = leg->r;
  cs_relay_result *out = &r->res[leg->idx];
  cs_cluster_reply a;
  int rc = status;
  if (rc == 0 && (rc = cs_cluster_reply_decode(reply, len, &a)) < 0)
    cs_warn("cluster: malformed unseal reply from node %s: %s", peer, cs_error_message(rc));
  if (rc < 0) {
    snprintf(out->error, sizeof out->error, "not delivered: %s", cs_error_message(rc));
  } else if (a.type == CS_CLUSTER_REPLY_REFUSED) {
    out->delivered = 1;
    snprintf(out->error, sizeof out->error, "refused: %.200s", a.reason);
  } else if (a.type != CS_CLUSTER_REPLY_UNSEAL || strcmp(a.node_id, peer) != 0) {
    snprintf(out->error, sizeof out->error, "unexpected reply");
  } else {
    out->delivered = 1;
    out->sealed = a.sealed;
    out->progress = a.progress;
    out->t = a.t;
    snprintf(out->error, sizeof out->error, "%s", a.reason);
    member *m = member_by_id(r->c, leg->id);
    if (m != NULL)
      m->last_heard = uv_now(r->c->loop);
  }
  if (--r->pending == 0)
    relay_finish(r);
}

int cs_cluster_relay_ready(cs_cluster *c) {
  if (!c->cfg.relay_unseal)
    return cs_error_set(CS_ERELAYOFF, "cluster.relay_unseal is off on this node (%s): unseal each "
                                      "member on its own", c->cfg.self.node_id);
  if (c->relay_inflight >= CS_CLUSTER_MAX_RELAYS)
    return cs_error_set(CS_EBUSY, "%d cluster unseal relays are in flight on this node; retry",
                        c->relay_inflight);
  return 0;
}

int cs_cluster_relay_unseal(cs_cluster *c, const uint8_t *key, size_t len,
                            void (*done)(void *arg, const cs_relay_result *r, size_t n),
                            void *arg) {
  int rc = cs_cluster_relay_ready(c);
  if (rc < 0)
    return rc;
  if (len == 0 || len > CS_CLUSTER_KEY_MAX)
    return cs_error_set(CS_EBADSHARE, "an unseal share of %zu bytes cannot be relayed", len);
  relay *r = calloc(1, sizeof *r);
  if (r == NULL)
    return CS_ENOMEM;
  r->c = c;
  r->done = done;
  r->arg = arg;
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_UNSEAL, .key_len = len};
  snprintf(m.node_id, sizeof m.node_id, "%s", c->cfg.self.node_id);
  memcpy(m.key, key, len);
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t blen = 0;
  rc = cs_cluster_msg_encode(&m, buf, sizeof buf, &blen);
  mbedtls_platform_zeroize(m.key, sizeof m.key);
  if (rc < 0) {
    mbedtls_platform_zeroize(buf, sizeof buf);
    free(r);
    return rc;
  }
  /* Count every leg first: a send that fails at once still answers. */
  for (unsigned i = 0; i < c->raft.configuration.n && r->n < MAX_MEMBERS; i++) {
    struct raft_server *sv = &c->raft.configuration.servers[i];
    if (sv->id == c->raft.id)
      continue;
    size_t k = r->n++;
    member *mb = member_by_id(c, sv->id);
    snprintf(r->res[k].node_id, sizeof r->res[k].node_id, "%s", mb ? mb->node_id : "?");
    r->legs[k] = (relay_leg){.r = r, .idx = k, .id = sv->id};
  }
  r->pending = r->n + 1; /* +1: held until every leg is started */
  c->relay_inflight++;
  size_t k = 0;
  for (unsigned i = 0; i < c->raft.configuration.n && k < r->n; i++) {
    struct raft_server *sv = &c->raft.configuration.servers[i];
    if (sv->id == c->raft.id)
      continue;
    relay_leg *leg = &r->legs[k++];
    if ((rc = cs_raft_tls_send_msg(&c->transport, sv->address, sv->id, buf, blen, on_relay_reply,
                                   leg)) < 0) {
      snprintf(r->res[leg->idx].error, sizeof r->res[leg->idx].error, "not sent: %s",
               cs_error_message(rc));
      r->pending--;
    }
  }
  mbedtls_platform_zeroize(buf, sizeof buf);
  if (--r->pending == 0)
    relay_finish(r); /* nothing in flight: answers now (done runs before we return) */
  return 0;
}

static void on_message(void *ctx, const char *peer, const uint8_t *msg, size_t len,
                       uint8_t *reply, size_t *reply_len) {
  cs_cluster *c = ctx;
  cs_cluster_msg m;
  int rc = cs_cluster_msg_decode(msg, len, &m);
  if (rc < 0) {
    cs_warn("cluster: refused a malformed message from node %s: %s", peer, cs_error_message(rc));
    put_refusal("malformed message", reply, reply_len);
    return;
  }
  if (strcmp(m.node_id, peer) != 0) {
    cs_warn("cluster: refused a %s from node %s: it claims to be node %s",
            m.type == CS_CLUSTER_MSG_STATUS ? "status report"
            : m.type == CS_CLUSTER_MSG_UNSEAL ? "relayed unseal share" : "join request",
            peer, m.node_id);
    mbedtls_platform_zeroize(m.key, sizeof m.key);
    put_refusal("node_id is not the node of your certificate", reply, reply_len);
    return;
  }
  if (m.type == CS_CLUSTER_MSG_UNSEAL) {
    on_unseal_share(c, peer, &m, reply, reply_len);
    mbedtls_platform_zeroize(m.key, sizeof m.key);
    return;
  }
  if (m.type == CS_CLUSTER_MSG_STATUS)
    on_status(c, peer, &m, reply, reply_len);
  else
    on_join(c, peer, &m, reply, reply_len);
}

/*
 * The leader `peer` (authenticated by the transport) refused this node's
 * report or probe because its configuration does not list this node: an
 * operator removed it.  From then on it does not campaign (an election
 * timeout of a day: libraft has no "stop"), reports to nobody, and ha.c
 * seals it and says so in status.
 */
static void learn_removed(cs_cluster *c, const char *peer, const cs_cluster_reply *r) {
  /* A node started with `join` has no configuration yet: it is waiting to
   * be added, not removed. */
  if (c->removed || r->type != CS_CLUSTER_REPLY_REFUSED || !r->removed ||
      c->raft.configuration.n == 0)
    return;
  c->removed = 1;
  raft_set_election_timeout(&c->raft, 86400000);
  cs_warn("cluster: this node (%s) was removed from the cluster (the leader, node %s, no longer "
          "lists it): sealing; it no longer campaigns. Stop it and wipe its data directory, or "
          "add it back with an empty one (docs/ha.md)", c->cfg.self.node_id, peer);
}

int cs_cluster_removed(cs_cluster *c) { return c->removed; }

/* May `peer` (authenticated) open a raft stream?  Members may; so may
 * anyone while this node is in no configuration yet (a node started with
 * `join` waits for the leader an operator told to add it). */
static int may_open_raft(void *ctx, const char *peer) {
  cs_cluster *c = ctx;
  raft_id id = id_of(peer);
  member *m = member_by_id(c, id);
  if (m != NULL && strcmp(m->node_id, peer) != 0)
    return cs_error_set(CS_EPEERID, "node %s has the raft id of node %s", peer, m->node_id);
  if (in_configuration(c, id, NULL))
    return 0;
  /* A new node (no configuration yet) is contacted by the leader an
   * operator told to add it: only nodes of its own `peers` may. */
  if (c->raft.configuration.n == 0) {
    for (size_t i = 0; i < c->cfg.n_peers; i++)
      if (strcmp(c->cfg.peers[i].node_id, peer) == 0)
        return 0;
    return cs_error_set(CS_EPEERID, "node %s is not in this node's cluster.peers", peer);
  }
  return cs_error_set(CS_EPEERID, "node %s is not a member of the cluster", peer);
}

static const char *node_name(void *ctx, uint64_t id) {
  member *m = member_by_id(ctx, id);
  return m ? m->node_id : NULL;
}

/* The leader's answer to our status report: its own API address.  The
 * transport checked that the peer's certificate names the leader we
 * dialled, so only an answer about that node is believed. */
static void on_report_reply(void *arg, int status, const char *peer, const uint8_t *reply,
                            size_t len) {
  cs_cluster *c = arg;
  c->report_inflight = 0;
  if (status < 0 || c->stop_done != NULL)
    return;
  member *lm = member_by_id(c, id_of(peer));
  if (lm != NULL)
    lm->last_heard = uv_now(c->loop);
  cs_cluster_reply r;
  int rc = cs_cluster_reply_decode(reply, len, &r);
  if (rc < 0) {
    cs_warn("cluster: malformed reply from node %s: %s", peer, cs_error_message(rc));
    return;
  }
  if (r.type == CS_CLUSTER_REPLY_REFUSED) {
    learn_removed(c, peer, &r);
    if (!c->removed)
      cs_warn("cluster: node %s refused this node's status report: %s", peer, r.reason);
    return;
  }
  if (r.type != CS_CLUSTER_REPLY_STATUS || strcmp(r.node_id, peer) != 0) {
    cs_warn("cluster: ignored a status reply from node %s about node %s", peer,
            r.type == CS_CLUSTER_REPLY_STATUS ? r.node_id : "?");
    return;
  }
  if (r.api_address[0])
    member_learn(c, peer, NULL, r.api_address);
}

static void on_join_reply(void *arg, int status, const char *peer, const uint8_t *reply,
                          size_t len) {
  cs_cluster *c = arg;
  c->join_inflight = 0;
  cs_cluster_reply r;
  if (status < 0 || c->stop_done != NULL || cs_cluster_reply_decode(reply, len, &r) < 0) {
    cs_debug("cluster: join request to %s failed; retrying", c->join_target);
    snprintf(c->join_target, sizeof c->join_target, "%s", c->cfg.join);
    return;
  }
  if (r.type == CS_CLUSTER_REPLY_JOIN && r.leader_address[0])
    snprintf(c->join_target, sizeof c->join_target, "%s", r.leader_address);
  if (!c->join_told) {
    c->join_told = 1;
    cs_info("cluster: not a member yet (node %s answered); an operator adds this node with: "
            "custos operator raft add-peer %s %s",
            peer, c->cfg.self.node_id, c->cfg.self.address);
  }
}

static void send_join(cs_cluster *c) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_JOIN};
  snprintf(m.node_id, sizeof m.node_id, "%s", c->cfg.self.node_id);
  snprintf(m.address, sizeof m.address, "%s", c->cfg.self.address);
  snprintf(m.api_address, sizeof m.api_address, "%s", c->cfg.self.api_address);
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (cs_cluster_msg_encode(&m, buf, sizeof buf, &n) == 0 &&
      cs_raft_tls_send_msg(&c->transport, c->join_target, 0, buf, n, on_join_reply, c) == 0)
    c->join_inflight = 1;
}

static int encode_status(cs_cluster *c, const cs_node_status *st, uint8_t *buf, size_t cap,
                         size_t *n) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_STATUS};
  snprintf(m.node_id, sizeof m.node_id, "%s", c->cfg.self.node_id);
  snprintf(m.api_address, sizeof m.api_address, "%s", c->cfg.self.api_address);
  m.sealed = st->sealed;
  m.initialized = st->initialized;
  m.term = st->term;
  m.applied = raft_last_applied(&c->raft);
  m.staged_term = st->staged_term;
  memcpy(m.staged_proof, st->staged_proof, sizeof m.staged_proof);
  return cs_cluster_msg_encode(&m, buf, cap, n);
}

typedef struct probe {
  cs_cluster *c;
  raft_id id;
} probe;

static void on_probe_reply(void *arg, int status, const char *peer, const uint8_t *reply,
                           size_t len) {
  probe *p = arg;
  cs_cluster *c = p->c;
  member *m;
  cs_cluster_reply r;
  /* Any answer (even a refusal) proves the member is up and reachable. */
  if (status == 0 && c->stop_done == NULL && (m = member_by_id(c, p->id)) != NULL) {
    m->last_heard = uv_now(c->loop);
    if (cs_cluster_reply_decode(reply, len, &r) == 0)
      learn_removed(c, peer, &r);
  }
  c->probes_inflight--;
  free(p);
}

/* Without a leader nobody reports to anybody: send this node's status to
 * every other member of the configuration, so that "no quorum: N of M
 * members reachable" is true of the network now, not of the last term. */
static void probe_members(cs_cluster *c, const cs_node_status *st) {
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (c->probes_inflight > 0 || encode_status(c, st, buf, sizeof buf, &n) < 0)
    return;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    struct raft_server *s = &c->raft.configuration.servers[i];
    if (s->id == c->raft.id)
      continue;
    probe *p = malloc(sizeof *p);
    if (p == NULL)
      return;
    p->c = c;
    p->id = s->id;
    if (cs_raft_tls_send_msg(&c->transport, s->address, s->id, buf, n, on_probe_reply, p) == 0)
      c->probes_inflight++;
    else
      free(p);
  }
}

void cs_cluster_quorum(cs_cluster *c, unsigned *reachable, unsigned *voters) {
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  *reachable = *voters = 0;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    struct raft_server *s = &c->raft.configuration.servers[i];
    if (s->role != RAFT_VOTER)
      continue;
    (*voters)++;
    member *m = member_by_id(c, s->id);
    if (s->id == c->raft.id ||
        (m != NULL && m->last_heard != 0 && now - m->last_heard <= window))
      (*reachable)++;
  }
}

int cs_cluster_has_leader(cs_cluster *c) {
  raft_id id;
  const char *addr;
  raft_leader(&c->raft, &id, &addr);
  return id != 0;
}

const char *cs_cluster_initialized_member(cs_cluster *c) {
  if (!leading(c))
    return NULL;
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    member *m = member_by_id(c, c->raft.configuration.servers[i].id);
    if (m != NULL && m->id != c->raft.id && m->initialized && m->last_seen != 0 &&
        now - m->last_seen <= window)
      return m->node_id;
  }
  return NULL;
}

static void send_report(cs_cluster *c, const cs_node_status *st, raft_id lid, const char *laddr) {
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (encode_status(c, st, buf, sizeof buf, &n) == 0 &&
      cs_raft_tls_send_msg(&c->transport, laddr, lid, buf, n, on_report_reply, c) == 0)
    c->report_inflight = 1;
}

/* The configured snapshot threshold (0 in a config built by hand: the default). */
static unsigned snapshot_threshold(const cs_cluster_config *cfg) {
  return cfg->snapshot_threshold ? cfg->snapshot_threshold : CS_SNAPSHOT_THRESHOLD;
}

/* After --recover-peers: snapshots resume once an entry past the
 * recovery's (term 1) entry is applied, so no snapshot is ever taken at it. */
static void watch_recovered(cs_cluster *c) {
  if (c->recovered_index == 0 || raft_last_applied(&c->raft) <= c->recovered_index)
    return;
  c->recovered_index = 0;
  raft_set_snapshot_threshold(&c->raft, snapshot_threshold(&c->cfg));
  if (unlink(c->marker) != 0 && errno != ENOENT)
    cs_warn("cluster: cannot remove %s: %s", c->marker, strerror(errno));
  cs_info("cluster: past the recovered configuration; raft snapshots resume");
}

static void on_timer(uv_timer_t *t) {
  cs_cluster *c = t->data;
  watch_recovered(c);
  member *self = member_by_id(c, c->raft.id);
  cs_node_status st = {0};
  c->status_fn(c->status_ctx, &st);
  if (self != NULL) {
    self->sealed = st.sealed;
    self->term = st.term;
    self->applied = raft_last_applied(&c->raft);
    self->last_seen = uv_now(c->loop);
  }
  /* A node started with `join` and not yet in any configuration tells the
   * cluster it is waiting (an operator adds it). */
  if (c->cfg.join != NULL && c->raft.configuration.n == 0) {
    if (!c->join_inflight)
      send_join(c);
    return;
  }
  if (leading(c) || c->report_inflight || c->removed)
    return;
  raft_id lid;
  const char *laddr;
  raft_leader(&c->raft, &lid, &laddr);
  if (lid != 0 && laddr != NULL)
    send_report(c, &st, lid, laddr);
  else if (lid == 0)
    probe_members(c, &st);
}

uint32_t cs_cluster_min_member_term(cs_cluster *c) {
  if (!leading(c))
    return 0;
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  uint32_t min = UINT32_MAX;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    member *m = member_by_id(c, c->raft.configuration.servers[i].id);
    if (m == NULL || m->last_seen == 0 || now - m->last_seen > window || m->sealed)
      return 0;
    if (m->term < min)
      min = m->term;
  }
  return min == UINT32_MAX ? 0 : min;
}

size_t cs_cluster_reports(cs_cluster *c, cs_member_report *out, size_t cap) {
  if (!leading(c))
    return 0;
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  size_t n = 0;
  for (unsigned i = 0; i < c->raft.configuration.n && n < cap; i++) {
    const struct raft_server *sv = &c->raft.configuration.servers[i];
    if (sv->id == c->raft.id)
      continue;
    member *m = member_by_id(c, sv->id);
    cs_member_report *r = &out[n++];
    memset(r, 0, sizeof *r);
    r->voter = sv->role == RAFT_VOTER;
    if (m == NULL) {
      snprintf(r->node_id, sizeof r->node_id, "raft id %llu", (unsigned long long)sv->id);
      continue;
    }
    snprintf(r->node_id, sizeof r->node_id, "%s", m->node_id);
    r->fresh = m->last_seen != 0 && now - m->last_seen <= window;
    r->sealed = m->sealed;
    r->term = m->term;
    r->staged_term = m->staged_term;
    memcpy(r->staged_proof, m->staged_proof, sizeof r->staged_proof);
    r->applied = m->applied;
  }
  return n;
}

uint64_t cs_cluster_applied(cs_cluster *c) { return raft_last_applied(&c->raft); }

static void on_transfer(struct raft_transfer *req) {
  cs_cluster *c = req->data;
  c->transferring = 0;
  void (*done)(void *, int) = c->transfer_done;
  c->transfer_done = NULL;
  if (done == NULL)
    return;
  if (leading(c))
    done(c->transfer_arg, cs_error_set(CS_EUNAVAIL, "leadership transfer to %s did not complete "
                                       "(this node still leads); retry", c->transfer_to));
  else
    done(c->transfer_arg, 0);
}

/* A member recently heard from with a status report: voter, not this node. */
static member *recent_voter(cs_cluster *c, const struct raft_server *s, uint64_t now) {
  uint64_t window = 3ULL * c->cfg.poll_ms + 500;
  member *m = member_by_id(c, s->id);
  if (s->id == c->raft.id || s->role != RAFT_VOTER || m == NULL || m->last_seen == 0 ||
      now - m->last_seen > window)
    return NULL;
  return m;
}

int cs_cluster_step_down(cs_cluster *c, cs_done_fn done, void *arg) {
  if (!leading(c))
    return cs_error_set(CS_ESTANDBY, "this node is not the leader");
  if (c->transferring)
    return cs_error_set(CS_EINPROGRESS, "a leadership transfer is already in progress");
  uint64_t now = uv_now(c->loop);
  member *best = NULL;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    member *m = recent_voter(c, &c->raft.configuration.servers[i], now);
    if (m != NULL && !m->sealed && (best == NULL || m->applied > best->applied))
      best = m;
  }
  if (best == NULL)
    return cs_error_set(CS_ENOSUCCESSOR, "no member can take over: step-down needs an unsealed "
                        "voter that reported within the last %.1f s (see operator raft "
                        "list-peers)", (3.0 * c->cfg.poll_ms + 500) / 1000.0);
  c->transfer.data = c;
  /* raft_transfer waits until the target has the leader's whole log
   * before it asks it to campaign: nothing committed is left behind. */
  int rc = raft_transfer(&c->raft, &c->transfer, best->id, on_transfer);
  if (rc != 0)
    return cs_error_set(CS_EUNAVAIL, "cannot hand leadership to %s: %s", best->node_id,
                        raft_errmsg(&c->raft));
  c->transferring = 1;
  c->transfer_done = done;
  c->transfer_arg = arg;
  snprintf(c->transfer_to, sizeof c->transfer_to, "%s", best->node_id);
  cs_info("cluster: stepping down (operator request): handing leadership to %s", best->node_id);
  return 0;
}

int cs_cluster_transfer_to_unsealed(cs_cluster *c) {
  if (!leading(c) || c->transferring)
    return CS_ENOTFOUND;
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  for (unsigned i = 0; i < c->raft.configuration.n; i++) {
    struct raft_server *s = &c->raft.configuration.servers[i];
    member *m = member_by_id(c, s->id);
    if (s->id == c->raft.id || s->role != RAFT_VOTER || m == NULL || m->sealed ||
        m->last_seen == 0 || now - m->last_seen > window)
      continue;
    c->transfer.data = c;
    if (raft_transfer(&c->raft, &c->transfer, s->id, on_transfer) == 0) {
      c->transferring = 1;
      cs_info("cluster: this node is sealed: handing leadership to %s", m->node_id);
      return 0;
    }
  }
  return CS_ENOTFOUND;
}

/* What this node knows of a member's health (the leader: from its status
 * reports and probe answers). */
static void member_health(cs_cluster *c, raft_id id, const member *m, cs_member_info *p) {
  uint64_t now = uv_now(c->loop), window = 3ULL * c->cfg.poll_ms + 500;
  if (id == c->raft.id) {
    cs_node_status st = {0};
    c->status_fn(c->status_ctx, &st);
    p->reachable = p->reported = 1;
    p->last_contact_ms = 0;
    p->sealed = st.sealed;
    p->term = st.term;
    return;
  }
  p->last_contact_ms = m && m->last_heard ? (int64_t)(now - m->last_heard) : -1;
  p->reachable = p->last_contact_ms >= 0 && (uint64_t)p->last_contact_ms <= window;
  p->reported = m && m->last_seen != 0;
  p->sealed = p->reported ? m->sealed : 1;
  p->term = p->reported ? m->term : 0;
}

size_t cs_cluster_members(cs_cluster *c, cs_member_info *out, size_t cap) {
  raft_id lid;
  const char *laddr;
  raft_leader(&c->raft, &lid, &laddr);
  size_t n = 0;
  for (unsigned i = 0; i < c->raft.configuration.n && n < cap; i++) {
    struct raft_server *s = &c->raft.configuration.servers[i];
    member *m = member_by_id(c, s->id);
    cs_member_info *p = &out[n++];
    memset(p, 0, sizeof *p);
    snprintf(p->node_id, sizeof p->node_id, "%s", m ? m->node_id : "?");
    snprintf(p->address, sizeof p->address, "%s", s->address);
    snprintf(p->api_address, sizeof p->api_address, "%s", m ? m->api_address : "");
    p->voter = s->role == RAFT_VOTER;
    p->leader = s->id == lid;
    p->applied = s->id == c->raft.id ? raft_last_applied(&c->raft) : m ? m->applied : 0;
    member_health(c, s->id, m, p);
  }
  return n;
}

int cs_cluster_add(cs_cluster *c, const char *node_id, const char *address,
                   cs_done_fn done, void *arg) {
  if (!cs_cluster_node_id_valid((const uint8_t *)node_id, strlen(node_id)))
    return cs_error_set(CS_EINVAL, "node id: use 1 to 63 letters, digits, . _ -");
  if (!cs_cluster_address_valid((const uint8_t *)address, strlen(address)))
    return cs_error_set(CS_EINVAL, "address: expected the new node's cluster address HOST:PORT");
  if (!leading(c))
    return cs_error_set(CS_ESTANDBY, "this node is not the leader");
  raft_id id = id_of(node_id);
  if (in_configuration(c, id, NULL))
    return cs_error_set(CS_EPEEREXISTS, "node %s is already a member of the cluster", node_id);
  if (member_by_id(c, id) == NULL && c->n_members == MAX_MEMBERS)
    return cs_error_set(CS_ELIMIT, "at most %d members", MAX_MEMBERS);
  change_req *ch = calloc(1, sizeof *ch);
  if (ch == NULL)
    return CS_ENOMEM;
  ch->req.data = ch;
  ch->c = c;
  ch->id = id;
  ch->promote = 1;
  ch->done = done;
  ch->arg = arg;
  int rc = raft_add(&c->raft, &ch->req, id, address, on_change_done);
  if (rc != 0) {
    free(ch);
    return cs_error_set(CS_EUNAVAIL, "cannot add %s: %s", node_id, raft_errmsg(&c->raft));
  }
  member_learn(c, node_id, address, NULL);
  cs_info("cluster: adding node %s at %s (approved by an operator)", node_id, address);
  return 0;
}

int cs_cluster_remove(cs_cluster *c, const char *node_id, cs_done_fn done,
                      void *arg) {
  if (!leading(c))
    return cs_error_set(CS_ESTANDBY, "this node is not the leader");
  raft_id id = id_of(node_id);
  if (!in_configuration(c, id, NULL))
    return cs_error_set(CS_ENOTFOUND, "no peer %s in the cluster", node_id);
  if (id == c->raft.id)
    return cs_error_set(CS_EINVAL, "the leader cannot remove itself; remove it from another node "
                                   "after a leadership change");
  change_req *ch = calloc(1, sizeof *ch);
  if (ch == NULL)
    return CS_ENOMEM;
  ch->req.data = ch;
  ch->c = c;
  ch->id = id;
  ch->done = done;
  ch->arg = arg;
  int rc = raft_remove(&c->raft, &ch->req, id, on_change_done);
  if (rc != 0) {
    free(ch);
    return cs_error_set(CS_EUNAVAIL, "cannot remove %s: %s", node_id, raft_errmsg(&c->raft));
  }
  cs_info("cluster: removing %s", node_id);
  return 0;
}

/* ---------------------------------------------------------------- start / stop */

static int mkdir_p(const char *dir) {
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return cs_error_set(CS_EIO, "cannot create %s: %s", dir, strerror(errno));
  return 0;
}

int cs_cluster_start(cs_cluster **out, uv_loop_t *loop, cs_store *store, const char *dir,
                     const cs_cluster_config *cfg,
                     void (*status_fn)(void *ctx, cs_node_status *st), void *ctx) {
  int rc = mkdir_p(dir);
  if (rc < 0)
    return rc;
  cs_cluster *c = calloc(1, sizeof *c);
  if (c == NULL)
    return CS_ENOMEM;
  c->loop = loop;
  c->store = store;
  c->cfg = *cfg;
  c->status_fn = status_fn;
  c->status_ctx = ctx;
  if (cfg->join)
    snprintf(c->join_target, sizeof c->join_target, "%s", cfg->join);
  member_learn(c, cfg->self.node_id, cfg->self.address, cfg->self.api_address);
  for (size_t i = 0; i < cfg->n_peers; i++)
    member_learn(c, cfg->peers[i].node_id, cfg->peers[i].address, cfg->peers[i].api_address);

  cs_raft_tls_opts to = {.cert_file = cfg->cert_file, .key_file = cfg->key_file,
                         .ca_file = cfg->ca_file, .self_node_id = cfg->self.node_id,
                         .handshake_timeout_ms = cfg->handshake_timeout_ms,
                         .max_unauth = cfg->max_unauth, .max_unauth_per_addr = cfg->max_unauth_per_addr,
                         .on_message = on_message, .may_open_raft = may_open_raft,
                         .node_name = node_name, .ctx = c};
  if ((rc = cs_raft_tls_init(&c->transport, loop, &to)) < 0) {
    free(c);
    return rc;
  }
  raft_id self = id_of(cfg->self.node_id);
  if ((rc = raft_uv_init(&c->io, loop, dir, &c->transport)) != 0) {
    rc = cs_error_set(CS_EIO, "cluster: raft storage in %s: %s", dir, c->io.errmsg);
    goto fail;
  }
  raft_uv_set_connect_retry_delay(&c->io, 200);
  /* libraft 0.15's uv io has async_work but says version 1, and raft_init
   * wants 2 for async snapshots (fixed upstream in 0.17.1, commit 269e541:
   * "uv: set io version to 2").  Without async_work, snapshots stay on the
   * loop (fsm.c). */
  if (c->io.async_work != NULL && c->io.version < 2)
    c->io.version = 2;
  cs_fsm_init(&c->fsm, &c->raft, store, on_fsm_results, c);
  if (c->io.async_work == NULL)
    c->fsm.snapshot_async = NULL;
  if ((rc = raft_init(&c->raft, &c->io, &c->fsm, self, cfg->self.address)) != 0) {
    rc = cs_error_set(CS_EIO, "cluster: raft_init: %s", raft_errmsg(&c->raft));
    goto fail;
  }
  c->raft.data = c;
  raft_set_pre_vote(&c->raft, true);
  raft_set_election_timeout(&c->raft, cfg->election_ms ? cfg->election_ms : 1000);
  raft_set_heartbeat_timeout(&c->raft, cfg->heartbeat_ms ? cfg->heartbeat_ms : 100);
  raft_set_snapshot_threshold(&c->raft, snapshot_threshold(cfg));
  raft_set_snapshot_trailing(&c->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 128);
  unsigned log_mb = cfg->snapshot_log_mb ? cfg->snapshot_log_mb : CS_SNAPSHOT_LOG_MB;
  cs_fsm_set_snapshot_limits(&c->fsm, snapshot_threshold(cfg), (uint64_t)log_mb << 20);
  snprintf(c->marker, sizeof c->marker, "%s/" CS_RECOVER_MARKER, dir);
  FILE *mf = fopen(c->marker, "r");
  if (mf != NULL) {
    unsigned long long idx = 0;
    if (fscanf(mf, "%llu", &idx) == 1 && idx > 0) {
      c->recovered_index = idx;
      raft_set_snapshot_threshold(&c->raft, UINT_MAX / 2);
    }
    fclose(mf);
  }

  if (cfg->join == NULL) {
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    rc = raft_configuration_add(&conf, self, cfg->self.address, RAFT_VOTER);
    for (size_t i = 0; i < cfg->n_peers && rc == 0; i++)
      rc = raft_configuration_add(&conf, id_of(cfg->peers[i].node_id), cfg->peers[i].address,
                                  RAFT_VOTER);
    if (rc == 0)
      rc = raft_bootstrap(&c->raft, &conf);
    raft_configuration_close(&conf);
    if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
      rc = cs_error_set(CS_EIO, "cluster: bootstrap: %s", raft_errmsg(&c->raft));
      goto fail;
    }
  }
  if ((rc = raft_start(&c->raft)) != 0) {
    rc = cs_error_set(CS_EIO, "cluster: raft_start: %s", raft_errmsg(&c->raft));
    goto fail;
  }
  uv_timer_init(loop, &c->timer);
  c->timer.data = c;
  unsigned poll = cfg->poll_ms ? cfg->poll_ms : 1000;
  c->cfg.poll_ms = poll;
  uv_timer_start(&c->timer, on_timer, 100, poll);
  cs_info("cluster: node %s (raft id %llx) on %s, %zu peers, applied index %llu", cfg->self.node_id,
          (unsigned long long)self, cfg->self.address, cfg->n_peers,
          (unsigned long long)cs_store_applied_index(store));
  *out = c;
  return 0;
fail:
  /* raft may hold the loop's handles: a failed start ends the process. */
  return rc;
}

/* c is freed once both its timer is closed and raft has closed: libuv runs
 * close callbacks last-closed first, so raft may finish before the timer. */
static void stop_release(cs_cluster *c) {
  if (--c->stop_refs > 0)
    return;
  void (*done)(void *) = c->stop_done;
  void *arg = c->stop_arg;
  free(c);
  if (done)
    done(arg);
}

static void on_timer_closed(uv_handle_t *h) {
  stop_release((cs_cluster *)((char *)h - offsetof(cs_cluster, timer)));
}

static void on_raft_closed(struct raft *r) {
  cs_cluster *c = r->data;
  raft_uv_close(&c->io);
  cs_raft_tls_free(&c->transport);
  cs_fsm_close(&c->fsm);
  stop_release(c);
}

void cs_cluster_stop(cs_cluster *c, void (*done)(void *arg), void *arg) {
  c->stop_done = done;
  c->stop_arg = arg;
  c->stop_refs = 2;
  uv_timer_stop(&c->timer);
  uv_close((uv_handle_t *)&c->timer, on_timer_closed);
  raft_close(&c->raft, on_raft_closed);
}

/* ---------------------------------------------------------------- config */

void cs_cluster_config_defaults(cs_cluster_config *cc) {
  memset(cc, 0, sizeof *cc);
  /* With pre-vote, 500/50 ms fails over in about 1 s on a LAN (see
   * docs/ha.md for the measurements); raise both on slow networks. */
  cc->election_ms = 500;
  cc->heartbeat_ms = 50;
  cc->poll_ms = 1000;
  cc->snapshot_threshold = CS_SNAPSHOT_THRESHOLD;
  cc->snapshot_trailing = 128;
  cc->snapshot_log_mb = CS_SNAPSHOT_LOG_MB;
  cc->handshake_timeout_ms = 5000;
  cc->max_unauth = 128;
  cc->max_unauth_per_addr = 16;
  cc->relay_unseal = 1;
}

static void member_free(cs_cluster_member *m) {
  free(m->node_id);
  free(m->address);
  free(m->api_address);
}

void cs_cluster_config_free(cs_cluster_config *cc) {
  member_free(&cc->self);
  for (size_t i = 0; i < cc->n_peers; i++)
    member_free(&cc->peers[i]);
  free(cc->peers);
  free(cc->cert_file);
  free(cc->key_file);
  free(cc->ca_file);
  free(cc->join);
  cs_cluster_config_defaults(cc);
}

int cs_cluster_reload_tls(cs_cluster *c) {
  return cs_raft_tls_reload(&c->transport, c->cfg.cert_file, c->cfg.key_file, c->cfg.ca_file);
}

void cs_cluster_on_auth_change(cs_cluster *c, void (*fn)(void *ctx), void *ctx) {
  cs_fsm_on_auth_change(&c->fsm, fn, ctx);
}
