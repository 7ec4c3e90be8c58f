/*
 * lifecycle_ops: key-status, rewrap, rewrap-status and retire-term, served
 * by server/rewrapper.c (the rewrap driver and the term lifecycle); these
 * only answer its replies.
 */
#include "api_int.h"

#include "rewrapper.h"

static void on_reply(void *arg, int status, Custos__Response *res) {
  cs_rq *r = arg;
  if (status < 0)
    respond(r, status, NULL, NULL, 0);
  else
    respond(r, 0, res, NULL, 0);
}

void cs_op_key_status(cs_rq *r) {
  cs_rewrapper_key_status(r->d, r->req->key_status, on_reply, r);
}

void cs_op_rewrap(cs_rq *r) { cs_rewrapper_begin(r->d, r->req->rewrap, on_reply, r); }

void cs_op_rewrap_status(cs_rq *r) { cs_rewrapper_status(r->d, on_reply, r); }

void cs_op_retire_term(cs_rq *r) {
  int rc = cs_rewrapper_retire(r->d, r->req->retire_term, on_reply, r);
  if (rc < 0 && !park(r, rc))
    respond(r, rc, NULL, NULL, 0);
}
