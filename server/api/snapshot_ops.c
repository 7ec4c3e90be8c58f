/*
 * snapshot_ops: snapshot-save and snapshot-restore, served by
 * server/snapshots.c (chunked transfers); these only answer its replies.
 */
#include "api_int.h"

#include "cs_error.h"
#include "net.h"
#include "snapshots.h"

static void on_snapshot_reply(void *arg, int status, Custos__Response *res) {
  cs_rq *r = arg;
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond(r, 0, res, NULL, 0);
}

void cs_op_snapshot_save(cs_rq *r) {
  /* One chunk of the whole file is for HTTP answers only: a protobuf
   * client keeps the frame limit and the chunked transfer. */
  if (r->req->snapshot_save->whole && !cs_reply_is_http(r->reply)) {
    respond(r, cs_error_set(CS_EINVAL, "whole is only served over the HTTP API; use chunks"),
            NULL, NULL, 0);
    return;
  }
  cs_snapshots_save(r->d, r->req->snapshot_save, on_snapshot_reply, r);
}

void cs_op_snapshot_restore(cs_rq *r) {
  cs_snapshots_restore(r->d, r->req->snapshot_restore, r->client, r->authed, on_snapshot_reply, r);
}
