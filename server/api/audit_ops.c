/*
 * audit_ops: audit-hash (the audit log's form of a value, for auditors
 * checking whether a given secret, share or token was read or written).
 */
#include "api_int.h"

#include "cs_error.h"

size_t cs_sens_audit_hash(const Custos__Request *req, cs_audit_sensitive *s) {
  if (s != NULL)
    s[0] = (cs_audit_sensitive){"value", req->audit_hash->value.data, req->audit_hash->value.len};
  return 1;
}

void cs_op_audit_hash(cs_rq *r) {
  if (r->d->audit == NULL) {
    respond(r, cs_error_set(CS_EINVAL, "no audit log is configured"), NULL, NULL, 0);
    return;
  }
  const Custos__AuditHashReq *q = r->req->audit_hash;
  char hash[CS_AUDIT_HMAC_STR_MAX];
  cs_audit_hmac_hex(r->d->audit, q->value.data, q->value.len, hash);
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__AuditHashRes ah = CUSTOS__AUDIT_HASH_RES__INIT;
  ah.hash = hash;
  res.result_case = CUSTOS__RESPONSE__RESULT_AUDIT_HASH;
  res.audit_hash = &ah;
  respond(r, 0, &res, NULL, 0);
}
