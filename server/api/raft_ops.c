/*
 * raft_ops: the cluster membership handlers (raft-list-peers, -add-peer,
 * -remove-peer, -step-down), authorized as sudo on sys/raft; server/ha
 * does the work.  Standalone: CS_EINVAL "not in cluster mode".
 */
#include "api_int.h"

#include "cs_error.h"
#include "ha.h"

void cs_op_raft_list_peers(cs_rq *r) {
  cs_peer_info info[16];
  Custos__RaftPeer peers[16], *ptrs[16];
  size_t n = 0;
  int rc = cs_ha_peers(r->d, info, 16, &n);
  if (rc < 0) {
    respond(r, rc, NULL, NULL, 0);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    custos__raft_peer__init(&peers[i]);
    peers[i].node_id = info[i].node_id;
    peers[i].address = info[i].address;
    peers[i].api_address = info[i].api_address;
    peers[i].voter = info[i].voter;
    peers[i].leader = info[i].leader;
    peers[i].applied_index = info[i].applied;
    peers[i].reachable = info[i].reachable;
    peers[i].last_contact_ms = info[i].last_contact_ms;
    peers[i].sealed = info[i].sealed;
    peers[i].keyring_term = info[i].term;
    peers[i].reported = info[i].reported;
    ptrs[i] = &peers[i];
  }
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__RaftPeersRes pr = CUSTOS__RAFT_PEERS_RES__INIT;
  pr.n_peers = n;
  pr.peers = ptrs;
  res.result_case = CUSTOS__RESPONSE__RESULT_RAFT_PEERS;
  res.raft_peers = &pr;
  respond(r, 0, &res, NULL, 0);
}

/* A membership change finished (add, remove, step-down). */
static void on_membership_done(void *arg, int status) {
  cs_rq *r = arg;
  cs_error_clear();
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond_empty(r);
}

void cs_op_raft_remove_peer(cs_rq *r) {
  int rc = cs_ha_remove_peer(r->d, r->req->raft_remove_peer->node_id, on_membership_done, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}

/* The operator's approval of a new member: nothing else adds one (a
 * certificate from the cluster CA alone does not). */
void cs_op_raft_add_peer(cs_rq *r) {
  const Custos__RaftAddPeerReq *q = r->req->raft_add_peer;
  int rc = cs_ha_add_peer(r->d, q->node_id, q->address, on_membership_done, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}

void cs_op_raft_step_down(cs_rq *r) {
  int rc = cs_ha_step_down(r->d, on_membership_done, r);
  if (rc < 0)
    respond(r, rc, NULL, NULL, 0);
}
