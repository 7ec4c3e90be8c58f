/* recover: offline rewrite of the raft configuration.  See recover.h. */
#include "recover.h"
#include "bytes.h"
#include "cluster_msg.h"
#include "cs_error.h"

#include <errno.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_NAMES 16

typedef struct names {
  char v[MAX_NAMES][CS_CLUSTER_NODE_ID_MAX + 1];
  size_t n;
} names;

/* "n1,n2": every name valid, none twice, at least one. */
static int parse_names(const char *list, names *out) {
  out->n = 0;
  const char *p = list;
  for (;;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == 0)
      return cs_error_set(CS_EINVAL, "--recover-peers: empty node id in \"%s\" (expected "
                                     "n1[,n2...]: the surviving members)", list);
    if (!cs_cluster_node_id_valid((const uint8_t *)p, len))
      return cs_error_set(CS_EINVAL, "--recover-peers: \"%.*s\" is not a node id (1 to 63 "
                                     "letters, digits, . _ -)", (int)(len > 64 ? 64 : len), p);
    if (out->n == MAX_NAMES)
      return cs_error_set(CS_EINVAL, "--recover-peers: at most %d members", MAX_NAMES);
    memcpy(out->v[out->n], p, len);
    out->v[out->n][len] = '\0';
    for (size_t i = 0; i < out->n; i++)
      if (strcmp(out->v[i], out->v[out->n]) == 0)
        return cs_error_set(CS_EINVAL, "--recover-peers: %s is named twice", out->v[i]);
    out->n++;
    if (end == NULL)
      return 0;
    p = end + 1;
  }
}

/* libraft's encoding of a configuration (format 1: u8 format, u64 count,
 * then per server u64 id, NUL-terminated address, u8 role; little
 * endian).  raft.h exports the encoder only. */
static int decode_conf(const uint8_t *p, size_t len, struct raft_configuration *conf) {
  if (len < 9 || p[0] != 1)
    return cs_error_set(CS_EIO, "unknown raft configuration encoding");
  uint64_t n = cs_get_le64(p + 1);
  size_t off = 9;
  for (uint64_t i = 0; i < n; i++) {
    if (len - off < 8 + 1 + 1)
      return cs_error_set(CS_EIO, "truncated raft configuration");
    raft_id id = cs_get_le64(p + off);
    off += 8;
    const uint8_t *nul = memchr(p + off, '\0', len - off);
    if (nul == NULL || (size_t)(nul - p) + 1 >= len)
      return cs_error_set(CS_EIO, "truncated raft configuration");
    const char *addr = (const char *)p + off;
    off = (size_t)(nul - p) + 1;
    int role = p[off++];
    if (raft_configuration_add(conf, id, addr, role) != 0)
      return cs_error_set(CS_EIO, "bad raft configuration (server %llx)", (unsigned long long)id);
  }
  return 0;
}

static void free_loaded(struct raft_snapshot *snap, struct raft_entry *entries, size_t n) {
  void *batch = NULL;
  for (size_t i = 0; i < n; i++)
    if (entries[i].batch != batch)
      raft_free(batch = entries[i].batch);
  raft_free(entries);
  if (snap != NULL) {
    raft_configuration_close(&snap->configuration);
    for (unsigned i = 0; i < snap->n_bufs; i++)
      raft_free(snap->bufs[i].base);
    raft_free(snap->bufs);
    raft_free(snap);
  }
}

/* The configuration raft would use on start: the last one in the log,
 * else the snapshot's.  `last` gets the log's last index. */
static int current_conf(struct raft_io *io, struct raft_configuration *conf, raft_index *last,
                        raft_term *term) {
  raft_id voted;
  struct raft_snapshot *snap = NULL;
  raft_index start = 0;
  struct raft_entry *entries = NULL;
  size_t n = 0;
  if (io->load(io, term, &voted, &snap, &start, &entries, &n) != 0)
    return cs_error_set(CS_EIO, "cannot load the raft log: %s", io->errmsg);
  *last = n > 0 ? start + n - 1 : snap ? snap->index : 0;
  int rc = 0;
  size_t i = n;
  while (i > 0 && entries[i - 1].type != RAFT_CHANGE)
    i--;
  if (i > 0)
    rc = decode_conf(entries[i - 1].buf.base, entries[i - 1].buf.len, conf);
  else if (snap != NULL)
    for (unsigned k = 0; k < snap->configuration.n && rc == 0; k++) {
      struct raft_server *s = &snap->configuration.servers[k];
      if (raft_configuration_add(conf, s->id, s->address, s->role) != 0)
        rc = cs_error_set(CS_ENOMEM, "out of memory");
    }
  else
    rc = cs_error_set(CS_ENOTFOUND, "no raft log: this node never was a cluster member");
  free_loaded(snap, entries, n);
  return rc;
}

static const struct raft_server *conf_find(const struct raft_configuration *conf, raft_id id) {
  for (unsigned i = 0; i < conf->n; i++)
    if (conf->servers[i].id == id)
      return &conf->servers[i];
  return NULL;
}

/* A member's name as this node knows it (its configuration), else its raft id. */
static const char *name_of(const cs_cluster_config *cfg, raft_id id, char *buf, size_t cap) {
  if (cs_cluster_raft_id(cfg->self.node_id) == id)
    return cfg->self.node_id;
  for (size_t i = 0; i < cfg->n_peers; i++)
    if (cs_cluster_raft_id(cfg->peers[i].node_id) == id)
      return cfg->peers[i].node_id;
  snprintf(buf, cap, "raft id %llx", (unsigned long long)id);
  return buf;
}

/*
 * libraft 0.15's raft_recover writes the new configuration entry with term
 * 1 (it reuses the bootstrap writer).  A raft snapshot taken at exactly that
 * index is then named as older than the snapshots before it, and libraft's
 * "keep the two newest" deletes it, after it already deleted the segments
 * it covered: the next start fails with "closed segment ... is past last
 * snapshot".  So the recovery leaves a marker with the entry's index, and
 * cluster.c holds snapshots back until an entry past it is applied (an
 * entry of the new leader's term).
 */
static int write_marker(const char *raft_dir, raft_index index) {
  char path[4200];
  snprintf(path, sizeof path, "%s/" CS_RECOVER_MARKER, raft_dir);
  FILE *f = fopen(path, "w");
  if (f == NULL || fprintf(f, "%llu\n", (unsigned long long)index) < 0 || fflush(f) != 0 ||
      fsync(fileno(f)) != 0) {
    if (f != NULL)
      fclose(f);
    return cs_error_set(CS_EIO, "cannot write %s: %s", path, strerror(errno));
  }
  fclose(f);
  return 0;
}

static int rewrite(struct raft *r, struct raft_io *io, const char *raft_dir,
                   const cs_cluster_config *cfg, const names *want, FILE *out) {
  struct raft_configuration cur, next;
  raft_configuration_init(&cur);
  raft_configuration_init(&next);
  raft_index last = 0;
  raft_term term = 0;
  char buf[64];
  int rc = current_conf(io, &cur, &last, &term);
  for (size_t i = 0; i < want->n && rc == 0; i++) {
    const struct raft_server *s = conf_find(&cur, cs_cluster_raft_id(want->v[i]));
    if (s == NULL)
      rc = cs_error_set(CS_ENOTFOUND, "--recover-peers: %s is not a member of the current raft "
                                      "configuration", want->v[i]);
    else if (raft_configuration_add(&next, s->id, s->address, RAFT_VOTER) != 0)
      rc = cs_error_set(CS_ENOMEM, "out of memory");
  }
  if (rc == 0) {
    fprintf(out, "custosd: raft log of node %s: last index %llu, term %llu\n", cfg->self.node_id,
            (unsigned long long)last, (unsigned long long)term);
    fprintf(out, "custosd: current configuration:");
    for (unsigned i = 0; i < cur.n; i++)
      fprintf(out, " %s (%s)", name_of(cfg, cur.servers[i].id, buf, sizeof buf),
              cur.servers[i].address);
    fprintf(out, "\n");
    if (raft_recover(r, &next) != 0)
      rc = cs_error_set(CS_EIO, "raft_recover: %s", raft_errmsg(r));
    else
      rc = write_marker(raft_dir, last + 1);
  }
  if (rc == 0) {
    fprintf(out, "custosd: new configuration:");
    for (unsigned i = 0; i < next.n; i++)
      fprintf(out, " %s (%s)", name_of(cfg, next.servers[i].id, buf, sizeof buf),
              next.servers[i].address);
    fprintf(out, "\ncustosd: done; start the survivors now (each elects among these members "
                 "only; the removed members must never start again with their old data)\n");
  }
  raft_configuration_close(&cur);
  raft_configuration_close(&next);
  return rc;
}

static void on_closed(struct raft *r) { (void)r; }

int cs_recover_peers(const char *raft_dir, const cs_cluster_config *cfg, const char *list,
                     FILE *out) {
  names want;
  int rc = parse_names(list, &want);
  if (rc < 0)
    return rc;
  int self = 0;
  for (size_t i = 0; i < want.n; i++)
    self |= strcmp(want.v[i], cfg->self.node_id) == 0;
  if (!self)
    return cs_error_set(CS_EINVAL, "--recover-peers: the list must include this node (%s): run "
                                   "it on a survivor, naming itself and the other survivors",
                        cfg->self.node_id);
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return cs_error_set(CS_EIO, "cannot create an event loop");
  struct raft_uv_transport transport;
  struct raft_io io;
  struct raft_fsm fsm;
  struct raft r;
  memset(&fsm, 0, sizeof fsm);
  fsm.version = 1;
  /* The transport is never started: recovery only touches the disk. */
  if (raft_uv_tcp_init(&transport, &loop) != 0) {
    uv_loop_close(&loop);
    return cs_error_set(CS_EIO, "cannot set up raft");
  }
  if (raft_uv_init(&io, &loop, raft_dir, &transport) != 0) {
    rc = cs_error_set(CS_EIO, "raft storage in %s: %s", raft_dir, io.errmsg);
    raft_uv_tcp_close(&transport);
    uv_loop_close(&loop);
    return rc;
  }
  if (raft_init(&r, &io, &fsm, cs_cluster_raft_id(cfg->self.node_id), cfg->self.address) != 0) {
    rc = cs_error_set(CS_EIO, "raft_init in %s: %s", raft_dir, raft_errmsg(&r));
    raft_uv_close(&io);
  } else {
    rc = rewrite(&r, &io, raft_dir, cfg, &want, out);
    raft_close(&r, on_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    raft_uv_close(&io);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  raft_uv_tcp_close(&transport);
  uv_loop_close(&loop);
  return rc;
}
