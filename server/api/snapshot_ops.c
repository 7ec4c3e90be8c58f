/*
 * snapshot_ops: snapshot-save and snapshot-restore, served by
 * server/snapshots.c (chunked transfers); these only answer its replies.
 */
#include "api_int.h"

#include "snapshots.h"

static void on_snapshot_reply(void *arg, int status, Custos__Response *res) {
  cs_rq *r = arg;
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond(r, 0, res, NULL, 0);
}

void cs_op_snapshot_save(cs_rq *r) {
  cs_snapshots_save(r->d, r->req->snapshot_save, on_snapshot_reply, r);
}

void cs_op_snapshot_restore(cs_rq *r) {
  cs_snapshots_restore(r->d, r->req->snapshot_restore, r->client, r->authed, on_snapshot_reply, r);
}
