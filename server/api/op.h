/*
 * op: one row of the op table (ops.def), as the request path and the
 * authorization decision see it.  No daemon here: authz.c and its unit
 * test include this alone.
 */
#ifndef CS_API_OP_H
#define CS_API_OP_H

#include <stddef.h>

#include "audit.h"
#include "custos.pb-c.h"

/* needs_token value: a token once the server is initialized; none before
 * (snapshot restore onto an uninitialized server, see server/snapshots.h). */
#define NEEDS_TOKEN_INIT 2
/* needs_token value: a token, unless the configuration opens the op to
 * anyone (telemetry.unauthenticated_metrics_access: Prometheus scrapers);
 * then a request without a token runs, sealed or not (authz_daemon.c). */
#define NEEDS_TOKEN_UNLESS_PUBLIC 3

typedef struct cs_rq cs_rq;

/* One row of ops.def. */
typedef struct cs_op {
  int op;                 /* Custos__Request__OpCase */
  const char *name;       /* for logs and the audit log */
  int needs_token;        /* 0, 1 or NEEDS_TOKEN_INIT (see ops.def) */
  const char *sys_path;   /* operator actions: the sys/ path they need `cap` on */
  unsigned cap;           /* CS_CAP_* needed on sys_path, or on the request's path */
  void (*handler)(cs_rq *r);
  int (*path_of)(const Custos__Request *req, char *out, size_t cap);
  size_t (*sensitive_of)(const Custos__Request *req, cs_audit_sensitive *s);
  void (*after_commit)(cs_rq *r, int status);
} cs_op;

#endif
