/* cluster_msg: the cluster side channel's wire format and node identity.
 * See cluster_msg.h. */
#include "cluster_msg.h"
#include "cs_error.h"
#include "custos.pb-c.h"

#include <mbedtls/platform_util.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------- fields */

int cs_cluster_node_id_valid(const uint8_t *s, size_t len) {
  if (len == 0 || len > CS_CLUSTER_NODE_ID_MAX)
    return 0;
  for (size_t i = 0; i < len; i++) {
    uint8_t ch = s[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
          ch == '.' || ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

static int host_char(uint8_t ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '.' || ch == '-' || ch == '_';
}

int cs_cluster_address_valid(const uint8_t *s, size_t len) {
  if (len < 3 || len > CS_CLUSTER_ADDR_MAX)
    return 0;
  size_t i = 0, host_end;
  if (s[0] == '[') {
    for (i = 1; i < len && s[i] != ']'; i++)
      if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
            (s[i] >= 'A' && s[i] <= 'F') || s[i] == ':' || s[i] == '.'))
        return 0;
    if (i == len || i == 1)
      return 0;
    host_end = i + 1;
  } else {
    for (i = 0; i < len && s[i] != ':'; i++)
      if (!host_char(s[i]))
        return 0;
    if (i == 0)
      return 0;
    host_end = i;
  }
  if (host_end >= len || s[host_end] != ':')
    return 0;
  size_t digits = len - host_end - 1;
  if (digits == 0 || digits > 5)
    return 0;
  unsigned long port = 0;
  for (i = host_end + 1; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return 0;
    port = port * 10 + (unsigned long)(s[i] - '0');
  }
  return port >= 1 && port <= 65535;
}

uint64_t cs_cluster_raft_id(const char *node_id) {
  uint64_t h = 1469598103934665603ULL;
  for (const unsigned char *p = (const unsigned char *)node_id; *p; p++) {
    h ^= *p;
    h *= 1099511628211ULL;
  }
  return h == 0 ? 1 : h;
}

/* ---------------------------------------------------------------- identity */

int cs_cluster_cert_node_id(const mbedtls_x509_crt *crt, char *out) {
  static const char suffix[] = CS_CLUSTER_NODE_SUFFIX;
  const size_t slen = sizeof suffix - 1;
  int found = 0;
  out[0] = '\0';
  if (crt == NULL)
    return cs_error_set(CS_EPEERID, "no certificate");
  for (const mbedtls_x509_sequence *s = &crt->subject_alt_names; s != NULL; s = s->next) {
    if (s->buf.p == NULL || s->buf.tag != (MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_X509_SAN_DNS_NAME))
      continue;
    size_t len = s->buf.len;
    if (len <= slen || memcmp(s->buf.p + len - slen, suffix, slen) != 0)
      continue;
    if (!cs_cluster_node_id_valid(s->buf.p, len - slen))
      return cs_error_set(CS_EPEERID, "certificate has an invalid node name");
    if (found++)
      return cs_error_set(CS_EPEERID, "certificate names more than one node");
    memcpy(out, s->buf.p, len - slen);
    out[len - slen] = '\0';
  }
  if (!found)
    return cs_error_set(CS_EPEERID, "certificate names no node (it needs a subjectAltName "
                                    "DNS:<node_id>" CS_CLUSTER_NODE_SUFFIX ")");
  return 0;
}

/* ---------------------------------------------------------------- preamble */

void cs_cluster_preamble_put(uint8_t *p, int kind, uint64_t raft_id, size_t len) {
  p[0] = (uint8_t)kind;
  for (int i = 0; i < 8; i++)
    p[1 + i] = (uint8_t)(raft_id >> (56 - 8 * i));
  p[9] = (uint8_t)(len >> 8);
  p[10] = (uint8_t)len;
}

int cs_cluster_preamble_parse(const uint8_t *p, cs_cluster_preamble *out) {
  out->kind = p[0];
  out->raft_id = 0;
  for (int i = 0; i < 8; i++)
    out->raft_id = (out->raft_id << 8) | p[1 + i];
  out->len = ((size_t)p[9] << 8) | p[10];
  if (out->kind != CS_CLUSTER_KIND_RAFT && out->kind != CS_CLUSTER_KIND_MSG)
    return cs_error_set(CS_EPROTO, "unknown preamble kind %d", out->kind);
  if ((out->kind == CS_CLUSTER_KIND_RAFT) != (out->raft_id != 0))
    return cs_error_set(CS_EPROTO, "preamble raft id does not fit its kind");
  if (out->len == 0 || out->len > CS_CLUSTER_MAX_PAYLOAD)
    return cs_error_set(CS_EPROTO, "preamble payload length %zu out of range", out->len);
  return 0;
}

/* ---------------------------------------------------------------- fields of messages */

/* Copies a validated bytes field into out (NUL-terminated). */
static int take_id(const ProtobufCBinaryData *b, char *out, const char *what) {
  if (!cs_cluster_node_id_valid(b->data, b->len))
    return cs_error_set(CS_EPROTO, "%s is not a node id", what);
  memcpy(out, b->data, b->len);
  out[b->len] = '\0';
  return 0;
}

/* An address field; `optional` allows the empty one. */
static int take_addr(const ProtobufCBinaryData *b, char *out, const char *what, int optional) {
  out[0] = '\0';
  if (b->len == 0 && optional)
    return 0;
  if (!cs_cluster_address_valid(b->data, b->len))
    return cs_error_set(CS_EPROTO, "%s is not HOST:PORT", what);
  memcpy(out, b->data, b->len);
  out[b->len] = '\0';
  return 0;
}

static ProtobufCBinaryData bin(const char *s) {
  return (ProtobufCBinaryData){.data = (uint8_t *)s, .len = strlen(s)};
}

/* 1 when the message or any submessage carried fields this version does not know. */
static int has_unknown(const ProtobufCMessage *m) {
  return m != NULL && m->n_unknown_fields != 0;
}

static int pack_into(const ProtobufCMessage *m, uint8_t *buf, size_t cap, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  if (n > cap)
    return cs_error_set(CS_EINVAL, "cluster message too large (%zu bytes)", n);
  *len = protobuf_c_message_pack(m, buf);
  return 0;
}

/* ---------------------------------------------------------------- messages */

static int decode_msg(const Custos__ClusterMessage *m, cs_cluster_msg *out) {
  if (has_unknown(&m->base))
    return cs_error_set(CS_EPROTO, "unknown fields in a cluster message");
  int rc;
  switch (m->kind_case) {
  case CUSTOS__CLUSTER_MESSAGE__KIND_STATUS: {
    const Custos__ClusterStatus *s = m->status;
    if (has_unknown(&s->base))
      return cs_error_set(CS_EPROTO, "unknown fields in a status report");
    out->type = CS_CLUSTER_MSG_STATUS;
    if ((rc = take_id(&s->node_id, out->node_id, "status node_id")) < 0 ||
        (rc = take_addr(&s->api_address, out->api_address, "status api_address", 0)) < 0)
      return rc;
    out->sealed = s->sealed ? 1 : 0;
    out->initialized = s->initialized ? 1 : 0;
    out->term = s->term;
    out->applied = s->applied;
    out->staged_term = s->staged_term;
    if (s->staged_term == 0 ? s->staged_proof.len != 0
                            : s->staged_proof.len != CS_CLUSTER_PROOF_LEN)
      return cs_error_set(CS_EPROTO, "status staged_proof has %zu bytes (staged term %u)",
                          s->staged_proof.len, (unsigned)s->staged_term);
    memset(out->staged_proof, 0, sizeof out->staged_proof);
    if (s->staged_term != 0)
      memcpy(out->staged_proof, s->staged_proof.data, CS_CLUSTER_PROOF_LEN);
    return 0;
  }
  case CUSTOS__CLUSTER_MESSAGE__KIND_JOIN: {
    const Custos__ClusterJoin *j = m->join;
    if (has_unknown(&j->base))
      return cs_error_set(CS_EPROTO, "unknown fields in a join request");
    out->type = CS_CLUSTER_MSG_JOIN;
    if ((rc = take_id(&j->node_id, out->node_id, "join node_id")) < 0 ||
        (rc = take_addr(&j->address, out->address, "join address", 0)) < 0 ||
        (rc = take_addr(&j->api_address, out->api_address, "join api_address", 0)) < 0)
      return rc;
    return 0;
  }
  case CUSTOS__CLUSTER_MESSAGE__KIND_UNSEAL_SHARE: {
    const Custos__ClusterUnsealShare *u = m->unseal_share;
    if (has_unknown(&u->base))
      return cs_error_set(CS_EPROTO, "unknown fields in a relayed unseal share");
    out->type = CS_CLUSTER_MSG_UNSEAL;
    if ((rc = take_id(&u->node_id, out->node_id, "unseal node_id")) < 0)
      return rc;
    if (u->key.len == 0 || u->key.len > CS_CLUSTER_KEY_MAX)
      return cs_error_set(CS_EPROTO, "relayed unseal share of %zu bytes", u->key.len);
    memcpy(out->key, u->key.data, u->key.len);
    out->key_len = u->key.len;
    return 0;
  }
  default:
    return cs_error_set(CS_EPROTO, "cluster message of no known kind");
  }
}

/* A relayed share in the unpacked message is wiped before it is freed. */
static void wipe_msg(Custos__ClusterMessage *m) {
  if (m->kind_case == CUSTOS__CLUSTER_MESSAGE__KIND_UNSEAL_SHARE && m->unseal_share != NULL &&
      m->unseal_share->key.data != NULL)
    mbedtls_platform_zeroize(m->unseal_share->key.data, m->unseal_share->key.len);
}

int cs_cluster_msg_decode(const uint8_t *buf, size_t len, cs_cluster_msg *out) {
  memset(out, 0, sizeof *out);
  if (len == 0 || len > CS_CLUSTER_MAX_PAYLOAD)
    return cs_error_set(CS_EPROTO, "cluster message length %zu out of range", len);
  Custos__ClusterMessage *m = custos__cluster_message__unpack(NULL, len, buf);
  if (m == NULL)
    return cs_error_set(CS_EPROTO, "cluster message does not decode");
  int rc = decode_msg(m, out);
  wipe_msg(m);
  custos__cluster_message__free_unpacked(m, NULL);
  if (rc < 0)
    mbedtls_platform_zeroize(out->key, sizeof out->key);
  return rc;
}

int cs_cluster_msg_encode(const cs_cluster_msg *in, uint8_t *buf, size_t cap, size_t *len) {
  Custos__ClusterMessage m = CUSTOS__CLUSTER_MESSAGE__INIT;
  Custos__ClusterStatus s = CUSTOS__CLUSTER_STATUS__INIT;
  Custos__ClusterJoin j = CUSTOS__CLUSTER_JOIN__INIT;
  Custos__ClusterUnsealShare u = CUSTOS__CLUSTER_UNSEAL_SHARE__INIT;
  if (in->type == CS_CLUSTER_MSG_UNSEAL) {
    u.node_id = bin(in->node_id);
    u.key = (ProtobufCBinaryData){.data = (uint8_t *)in->key, .len = in->key_len};
    m.kind_case = CUSTOS__CLUSTER_MESSAGE__KIND_UNSEAL_SHARE;
    m.unseal_share = &u;
  } else if (in->type == CS_CLUSTER_MSG_STATUS) {
    s.node_id = bin(in->node_id);
    s.api_address = bin(in->api_address);
    s.sealed = in->sealed != 0;
    s.initialized = in->initialized != 0;
    s.term = in->term;
    s.applied = in->applied;
    s.staged_term = in->staged_term;
    if (in->staged_term != 0)
      s.staged_proof = (ProtobufCBinaryData){.data = (uint8_t *)in->staged_proof,
                                             .len = CS_CLUSTER_PROOF_LEN};
    m.kind_case = CUSTOS__CLUSTER_MESSAGE__KIND_STATUS;
    m.status = &s;
  } else if (in->type == CS_CLUSTER_MSG_JOIN) {
    j.node_id = bin(in->node_id);
    j.address = bin(in->address);
    j.api_address = bin(in->api_address);
    m.kind_case = CUSTOS__CLUSTER_MESSAGE__KIND_JOIN;
    m.join = &j;
  } else {
    return cs_error_set(CS_EINVAL, "unknown cluster message type %d", in->type);
  }
  return pack_into(&m.base, buf, cap, len);
}

/* ---------------------------------------------------------------- replies */

static int decode_reply(const Custos__ClusterReply *m, cs_cluster_reply *out) {
  if (has_unknown(&m->base))
    return cs_error_set(CS_EPROTO, "unknown fields in a cluster reply");
  int rc;
  switch (m->kind_case) {
  case CUSTOS__CLUSTER_REPLY__KIND_STATUS:
    if (has_unknown(&m->status->base))
      return cs_error_set(CS_EPROTO, "unknown fields in a status reply");
    out->type = CS_CLUSTER_REPLY_STATUS;
    if ((rc = take_id(&m->status->node_id, out->node_id, "reply node_id")) < 0 ||
        (rc = take_addr(&m->status->api_address, out->api_address, "reply api_address", 1)) < 0)
      return rc;
    return 0;
  case CUSTOS__CLUSTER_REPLY__KIND_JOIN:
    if (has_unknown(&m->join->base))
      return cs_error_set(CS_EPROTO, "unknown fields in a join reply");
    out->type = CS_CLUSTER_REPLY_JOIN;
    out->member = m->join->member ? 1 : 0;
    return take_addr(&m->join->leader_address, out->leader_address, "reply leader_address", 1);
  case CUSTOS__CLUSTER_REPLY__KIND_REFUSED: {
    const ProtobufCBinaryData *r = &m->refused->reason;
    if (has_unknown(&m->refused->base) || r->len >= sizeof out->reason)
      return cs_error_set(CS_EPROTO, "malformed refusal");
    for (size_t i = 0; i < r->len; i++)
      if (r->data[i] < 0x20 || r->data[i] > 0x7e)
        return cs_error_set(CS_EPROTO, "refusal reason is not printable");
    out->type = CS_CLUSTER_REPLY_REFUSED;
    if (r->len > 0) /* an empty bytes field has data NULL */
      memcpy(out->reason, r->data, r->len);
    out->reason[r->len] = '\0';
    out->removed = m->refused->removed ? 1 : 0;
    return 0;
  }
  case CUSTOS__CLUSTER_REPLY__KIND_UNSEAL: {
    const Custos__ClusterUnsealAck *u = m->unseal;
    const ProtobufCBinaryData *e = &u->error;
    if (has_unknown(&u->base) || e->len >= sizeof out->reason)
      return cs_error_set(CS_EPROTO, "malformed unseal reply");
    for (size_t i = 0; i < e->len; i++)
      if (e->data[i] < 0x20 || e->data[i] > 0x7e)
        return cs_error_set(CS_EPROTO, "unseal reply error is not printable");
    if (u->progress > 255 || u->t > 255)
      return cs_error_set(CS_EPROTO, "unseal reply progress out of range");
    out->type = CS_CLUSTER_REPLY_UNSEAL;
    if ((rc = take_id(&u->node_id, out->node_id, "unseal reply node_id")) < 0)
      return rc;
    if (e->len > 0)
      memcpy(out->reason, e->data, e->len);
    out->reason[e->len] = '\0';
    out->sealed = u->sealed ? 1 : 0;
    out->progress = u->progress;
    out->t = u->t;
    return 0;
  }
  default:
    return cs_error_set(CS_EPROTO, "cluster reply of no known kind");
  }
}

int cs_cluster_reply_decode(const uint8_t *buf, size_t len, cs_cluster_reply *out) {
  memset(out, 0, sizeof *out);
  if (len == 0 || len > CS_CLUSTER_MAX_PAYLOAD)
    return cs_error_set(CS_EPROTO, "cluster reply length %zu out of range", len);
  Custos__ClusterReply *m = custos__cluster_reply__unpack(NULL, len, buf);
  if (m == NULL)
    return cs_error_set(CS_EPROTO, "cluster reply does not decode");
  int rc = decode_reply(m, out);
  custos__cluster_reply__free_unpacked(m, NULL);
  return rc;
}

int cs_cluster_reply_encode(const cs_cluster_reply *in, uint8_t *buf, size_t cap, size_t *len) {
  Custos__ClusterReply m = CUSTOS__CLUSTER_REPLY__INIT;
  Custos__ClusterStatusAck s = CUSTOS__CLUSTER_STATUS_ACK__INIT;
  Custos__ClusterJoinAck j = CUSTOS__CLUSTER_JOIN_ACK__INIT;
  Custos__ClusterRefusal f = CUSTOS__CLUSTER_REFUSAL__INIT;
  Custos__ClusterUnsealAck u = CUSTOS__CLUSTER_UNSEAL_ACK__INIT;
  switch (in->type) {
  case CS_CLUSTER_REPLY_UNSEAL:
    u.node_id = bin(in->node_id);
    u.sealed = in->sealed != 0;
    u.progress = in->progress;
    u.t = in->t;
    u.error = bin(in->reason);
    m.kind_case = CUSTOS__CLUSTER_REPLY__KIND_UNSEAL;
    m.unseal = &u;
    break;
  case CS_CLUSTER_REPLY_STATUS:
    s.node_id = bin(in->node_id);
    s.api_address = bin(in->api_address);
    m.kind_case = CUSTOS__CLUSTER_REPLY__KIND_STATUS;
    m.status = &s;
    break;
  case CS_CLUSTER_REPLY_JOIN:
    j.member = in->member != 0;
    j.leader_address = bin(in->leader_address);
    m.kind_case = CUSTOS__CLUSTER_REPLY__KIND_JOIN;
    m.join = &j;
    break;
  case CS_CLUSTER_REPLY_REFUSED:
    f.reason = bin(in->reason);
    f.removed = in->removed != 0;
    m.kind_case = CUSTOS__CLUSTER_REPLY__KIND_REFUSED;
    m.refused = &f;
    break;
  default:
    return cs_error_set(CS_EINVAL, "unknown cluster reply type %d", in->type);
  }
  return pack_into(&m.base, buf, cap, len);
}
