/*
 * config: custosd's configuration file (libconfig syntax).
 *
 *   storage  = { path = "/var/lib/custos"; map_size_mb = 1024; };
 *   listener = { address = "127.0.0.1:7200"; tls_cert_file = "..."; tls_key_file = "...";
 *                tls_client_ca_file = "..."; max_connections = 16384; ... };
 *   seal     = { upgrade_key_ttl = "2m"; counter_flush_interval = "5s";
 *                max_activation_delay = "10m";
 *                generate_root_timeout = "10m"; verify_share_per_minute = 10; };
 *   audit    = { file = "/var/log/custos/audit.log"; };
 *   token    = { max_ttl = "32d"; };
 *   snapshot = { path = "/var/backups/custos"; interval = "1h"; retain = 24;
 *                after_key_change = true; };
 *   log_level = "info";
 *
 * Errors name the file, the line and the setting.
 */
#ifndef CS_CONFIG_H
#define CS_CONFIG_H

#include <stddef.h>
#include "net/net.h"
#include "ha/cluster.h"

#define CS_TOKEN_MAX_TTL_DEFAULT (32ull * 86400)      /* 32 days, like Vault's */
#define CS_TOKEN_MAX_TTL_LIMIT (10ull * 365 * 86400)  /* keeps now + ttl far from overflow */

typedef struct cs_config {
  char *storage_path;
  size_t map_size;                 /* bytes */
  cs_listener_opts listener;       /* strings owned by the config */
  unsigned upgrade_key_ttl;        /* seconds; default 120 */
  unsigned max_activation_delay;   /* seconds a staged term waits for every voter; default 600 */
  unsigned counter_flush_ms;       /* default 5000 */
  unsigned generate_root_timeout;  /* seconds without a share; default 600 */
  unsigned verify_share_per_minute; /* per client address; default 10 */
  unsigned long long token_max_ttl; /* seconds; default CS_TOKEN_MAX_TTL_DEFAULT */
  char *audit_file;                /* NULL: no audit log */
  int metrics_unauthenticated;     /* telemetry.unauthenticated_metrics_access; default 0 */
  int log_level;                   /* CS_LOG_* */
  cs_cluster_config cluster;       /* enabled = 0: standalone */
  struct {
    char *path;                    /* directory of scheduled snapshots; NULL: none */
    unsigned interval_s;           /* 0: only after key changes */
    unsigned retain;               /* files kept; default 24 */
    int after_key_change;          /* default 1 */
  } snapshot;
} cs_config;

/* Parses `path`.  On error returns CS_ECONFIG and writes a message like
 * "custos.conf:3: listener.address: expected HOST:PORT" into err. */
int cs_config_load(cs_config *cfg, const char *path, char *err, size_t errcap)
    __attribute__((warn_unused_result));
void cs_config_free(cs_config *cfg);
/* Defaults for every field (no storage path, no listener address). */
void cs_config_defaults(cs_config *cfg);
/* Parses "90s", "2m", "24h", "7d", "1h30m" or a bare number of seconds. */
int cs_parse_duration(const char *s, unsigned long long *seconds) __attribute__((warn_unused_result));

#endif
