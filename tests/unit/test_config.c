/*
 * Unit tests of custosd's configuration parser (server/config.c): every
 * setting of every group read back, the defaults (as docs/config.md states
 * them), durations and sizes at and past their bounds, overflow, wrong
 * types, unknown groups and settings, and that every error names the file,
 * the line and the setting.  Each case writes a real file and loads it with
 * cs_config_load, as custosd does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "cs_error.h"
#include "log.h"
#include "wire.h"

static char dir[] = "/tmp/test_config-XXXXXX";
static char file[sizeof dir + 16];

#define MIN_STORAGE "storage = { path = \"/var/lib/custos\"; };\n"
#define MIN_LISTENER                                                                             \
  "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c.crt\"; "                      \
  "tls_key_file = \"/c.key\"; };\n"
#define MINIMAL MIN_STORAGE MIN_LISTENER
#define CLUSTER_HEAD                                                                             \
  "cluster = { node_id = \"n1\"; address = \"127.0.0.1:7201\"; api_address = "                   \
  "\"127.0.0.1:7200\"; tls_cert_file = \"/n1.crt\"; tls_key_file = \"/n1.key\"; "                \
  "tls_ca_file = \"/ca.crt\"; "

static int group_setup(void **state) {
  (void)state;
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(file, sizeof file, "%s/custos.conf", dir);
  cs_log_set_level(CS_LOG_ERROR + 1); /* the parser logs nothing; keep stderr clean anyway */
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  unlink(file);
  rmdir(dir);
  return 0;
}

static void write_conf(const char *text) {
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  assert_int_equal(fputs(text, f) >= 0, 1);
  assert_int_equal(fclose(f), 0);
}

/* Loads `text`; returns cs_config_load's code, the message in err. */
static int load(const char *text, cs_config *cfg, char *err, size_t cap) {
  write_conf(text);
  return cs_config_load(cfg, file, err, cap);
}

/* `text` must be refused with a message containing every NULL-terminated
 * fragment given (and the file name). */
static void refused(const char *text, const char *frag) {
  cs_config cfg;
  char err[512];
  int rc = load(text, &cfg, err, sizeof err);
  if (rc != CS_ECONFIG || strstr(err, frag) == NULL || strstr(err, file) == NULL)
    fail_msg("expected CS_ECONFIG with \"%s\", got %d \"%s\" for:\n%s", frag, rc, err, text);
  /* Nothing left allocated on failure: the defaults are back. */
  assert_null(cfg.storage_path);
  assert_null(cfg.listener.address);
  cs_config_free(&cfg);
}

static void accepted(const char *text, cs_config *cfg) {
  char err[512];
  int rc = load(text, cfg, err, sizeof err);
  if (rc != 0)
    fail_msg("expected success, got %d \"%s\" for:\n%s", rc, err, text);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults(void **state) {
  (void)state;
  cs_config cfg;
  accepted(MINIMAL, &cfg);
  assert_string_equal(cfg.storage_path, "/var/lib/custos");
  assert_int_equal(cfg.map_size, (size_t)1024 << 20);
  assert_string_equal(cfg.listener.address, "127.0.0.1:7200");
  assert_string_equal(cfg.listener.cert_file, "/c.crt");
  assert_string_equal(cfg.listener.key_file, "/c.key");
  assert_null(cfg.listener.client_ca_file);
  assert_int_equal(cfg.listener.max_connections, 16384);
  assert_int_equal(cfg.listener.max_per_address, 0);          /* derived: 16384 / 16 */
  assert_int_equal(cs_listener_default_per_address(16384), 1024);
  assert_int_equal(cfg.listener.max_handshakes, 0);           /* derived */
  assert_int_equal(cs_listener_default_handshakes(16384), 1024);
  assert_int_equal(cs_listener_default_handshakes_per_address(1024), 128);
  assert_int_equal(cfg.listener.max_frame, CS_WIRE_MAX_DEFAULT);
  assert_int_equal(CS_WIRE_MAX_DEFAULT, 4194304);
  assert_int_equal(cfg.listener.max_frame_preauth, CS_WIRE_MAX_PREAUTH);
  assert_int_equal(CS_WIRE_MAX_PREAUTH, 65536);
  assert_int_equal(cfg.listener.handshake_timeout_ms, 10000);
  assert_int_equal(cfg.listener.idle_timeout_ms, 300000);
  assert_int_equal(cfg.listener.max_inflight, 1024);
  assert_int_equal(cfg.listener.max_queued_bytes, 0);         /* derived: 1 MiB */
  assert_int_equal(cfg.upgrade_key_ttl, 120);
  assert_int_equal(cfg.max_activation_delay, 600);
  assert_int_equal(cfg.counter_flush_ms, 5000);
  assert_int_equal(cfg.generate_root_timeout, 600);
  assert_int_equal(cfg.verify_share_per_minute, 10);
  assert_int_equal(cfg.token_max_ttl, 32ull * 86400);
  assert_null(cfg.audit_file);
  assert_int_equal(cfg.log_level, CS_LOG_INFO);
  assert_int_equal(cfg.cluster.enabled, 0);
  assert_null(cfg.snapshot.path);
  assert_int_equal(cfg.snapshot.interval_s, 0);
  assert_int_equal(cfg.snapshot.retain, 24);
  assert_int_equal(cfg.snapshot.after_key_change, 1);
  cs_config_free(&cfg);
}

static void test_cluster_defaults(void **state) {
  (void)state;
  cs_config cfg;
  accepted(MINIMAL CLUSTER_HEAD "};\n", &cfg);
  cs_cluster_config *cc = &cfg.cluster;
  assert_int_equal(cc->enabled, 1);
  assert_string_equal(cc->self.node_id, "n1");
  assert_int_equal(cc->n_peers, 0);
  assert_null(cc->join);
  assert_int_equal(cc->election_ms, 500);
  assert_int_equal(cc->heartbeat_ms, 50);
  assert_int_equal(cc->poll_ms, 1000);
  assert_int_equal(cc->snapshot_threshold, 8192);
  assert_int_equal(cc->snapshot_trailing, 128);
  assert_int_equal(cc->snapshot_log_mb, 128);
  assert_int_equal(cc->handshake_timeout_ms, 5000);
  assert_int_equal(cc->max_unauth, 128);
  assert_int_equal(cc->max_unauth_per_addr, 16);
  cs_config_free(&cfg);
}

/* ---------------------------------------------------------------- every setting */

static void test_every_setting(void **state) {
  (void)state;
  cs_config cfg;
  accepted("storage = { path = \"/data\"; map_size_mb = 2048; };\n"
           "listener = { address = \"[::1]:7300\"; tls_cert_file = \"/s.crt\";\n"
           "  tls_key_file = \"/s.key\"; tls_client_ca_file = \"/ca.crt\";\n"
           "  max_connections = 500; max_connections_per_address = 50;\n"
           "  max_frame_bytes = 2097152; max_frame_bytes_preauth = 4096;\n"
           "  handshake_timeout = \"3s\"; idle_timeout = \"1h30m\"; max_inflight = 7;\n"
           "  max_queued_response_bytes = 65536; max_handshakes = 40;\n"
           "  max_handshakes_per_address = 4; };\n"
           "seal = { upgrade_key_ttl = \"10m\"; counter_flush_interval = 2; };\n"
           "audit = { file = \"/var/log/custos/audit.log\"; };\n"
           "token = { max_ttl = \"7d\"; };\n"
           "snapshot = { path = \"/backups\"; interval = \"1h\"; retain = 3;\n"
           "  after_key_change = false; };\n"
           "log_level = \"debug\";\n" CLUSTER_HEAD
           " join = \"127.0.0.1:7211\"; election_timeout = 1000; heartbeat_timeout = 100;\n"
           " poll_interval = 250; snapshot_threshold = 64; snapshot_trailing = 8; snapshot_log_mb = 3;\n"
           " handshake_timeout = \"2s\"; max_unauth_connections = 10;\n"
           " max_unauth_per_address = 5;\n"
           " peers = ( { node_id = \"n2\"; address = \"127.0.0.1:7211\";\n"
           "             api_address = \"127.0.0.1:7210\"; },\n"
           "           { node_id = \"n3\"; address = \"[::1]:7221\";\n"
           "             api_address = \"localhost:7220\"; } ); };\n",
           &cfg);
  assert_string_equal(cfg.storage_path, "/data");
  assert_int_equal(cfg.map_size, (size_t)2048 << 20);
  cs_listener_opts *o = &cfg.listener;
  assert_string_equal(o->address, "[::1]:7300");
  assert_string_equal(o->cert_file, "/s.crt");
  assert_string_equal(o->key_file, "/s.key");
  assert_string_equal(o->client_ca_file, "/ca.crt");
  assert_int_equal(o->max_connections, 500);
  assert_int_equal(o->max_per_address, 50);
  assert_int_equal(o->max_frame, 2097152);
  assert_int_equal(o->max_frame_preauth, 4096);
  assert_int_equal(o->handshake_timeout_ms, 3000);
  assert_int_equal(o->idle_timeout_ms, 5400000);
  assert_int_equal(o->max_inflight, 7);
  assert_int_equal(o->max_queued_bytes, 65536);
  assert_int_equal(o->max_handshakes, 40);
  assert_int_equal(o->max_handshakes_per_address, 4);
  assert_int_equal(cfg.upgrade_key_ttl, 600);
  assert_int_equal(cfg.counter_flush_ms, 2000);
  assert_string_equal(cfg.audit_file, "/var/log/custos/audit.log");
  assert_int_equal(cfg.token_max_ttl, 7ull * 86400);
  assert_string_equal(cfg.snapshot.path, "/backups");
  assert_int_equal(cfg.snapshot.interval_s, 3600);
  assert_int_equal(cfg.snapshot.retain, 3);
  assert_int_equal(cfg.snapshot.after_key_change, 0);
  assert_int_equal(cfg.log_level, CS_LOG_DEBUG);
  cs_cluster_config *cc = &cfg.cluster;
  assert_int_equal(cc->enabled, 1);
  assert_string_equal(cc->self.node_id, "n1");
  assert_string_equal(cc->self.address, "127.0.0.1:7201");
  assert_string_equal(cc->self.api_address, "127.0.0.1:7200");
  assert_string_equal(cc->cert_file, "/n1.crt");
  assert_string_equal(cc->key_file, "/n1.key");
  assert_string_equal(cc->ca_file, "/ca.crt");
  assert_string_equal(cc->join, "127.0.0.1:7211");
  assert_int_equal(cc->election_ms, 1000);
  assert_int_equal(cc->heartbeat_ms, 100);
  assert_int_equal(cc->poll_ms, 250);
  assert_int_equal(cc->snapshot_threshold, 64);
  assert_int_equal(cc->snapshot_trailing, 8);
  assert_int_equal(cc->snapshot_log_mb, 3);
  assert_int_equal(cc->handshake_timeout_ms, 2000);
  assert_int_equal(cc->max_unauth, 10);
  assert_int_equal(cc->max_unauth_per_addr, 5);
  assert_int_equal(cc->n_peers, 2);
  assert_string_equal(cc->peers[0].node_id, "n2");
  assert_string_equal(cc->peers[0].address, "127.0.0.1:7211");
  assert_string_equal(cc->peers[0].api_address, "127.0.0.1:7210");
  assert_string_equal(cc->peers[1].node_id, "n3");
  assert_string_equal(cc->peers[1].address, "[::1]:7221");
  assert_string_equal(cc->peers[1].api_address, "localhost:7220");
  cs_config_free(&cfg);
  /* Freed twice is harmless (main frees once; a failed load already did). */
  cs_config_free(&cfg);
}

/* The other three log levels, and a lower max_unauth_connections pulling
 * the per-address default down with it. */
static void test_levels_and_derived(void **state) {
  (void)state;
  static const struct {
    const char *name;
    int level;
  } levels[] = {{"info", CS_LOG_INFO}, {"warn", CS_LOG_WARN}, {"error", CS_LOG_ERROR}};
  char text[1024];
  for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
    cs_config cfg;
    snprintf(text, sizeof text, MINIMAL "log_level = \"%s\";\n", levels[i].name);
    accepted(text, &cfg);
    assert_int_equal(cfg.log_level, levels[i].level);
    cs_config_free(&cfg);
  }
  cs_config cfg;
  accepted(MINIMAL CLUSTER_HEAD "max_unauth_connections = 4; };\n", &cfg);
  assert_int_equal(cfg.cluster.max_unauth, 4);
  assert_int_equal(cfg.cluster.max_unauth_per_addr, 4);
  cs_config_free(&cfg);
}

/* ---------------------------------------------------------------- durations */

/* ULLONG_MAX itself is a valid duration; the table's "refused" mark. */
#define REFUSED 0xffffffffffffffffull

static void test_durations(void **state) {
  (void)state;
  static const struct {
    const char *text;
    unsigned long long seconds; /* REFUSED: refused */
  } cases[] = {
      {"0", 0},
      {"90", 90},
      {"90s", 90},
      {"2m", 120},
      {"24h", 86400},
      {"7d", 604800},
      {"1h30m", 5400},
      {"1d2h3m4s", 93784},
      {"18446744073709551614", 18446744073709551614ull},
      {"18446744073709551616", REFUSED},  /* one past ULLONG_MAX */
      {"213503982334602d", REFUSED},      /* d * 86400 overflows */
      {"213503982334601d99999999999h", REFUSED}, /* the sum overflows */
      {"", REFUSED},
      {"s", REFUSED},
      {"5ms", REFUSED},
      {"500ms", REFUSED},
      {"1m1h", REFUSED},                  /* out of order */
      {"1h1h", REFUSED},                  /* twice */
      {"1h30", REFUSED},                  /* a bare number after a unit */
      {"-5s", REFUSED},
      {"+5s", REFUSED},
      {" 5s", REFUSED},
      {"5s ", REFUSED},
      {"5w", 3024000},                     /* weeks: common/duration.c */
      {"1d1w", REFUSED},                  /* out of order */
      {"5S", REFUSED},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned long long got = 12345;
    int rc = cs_parse_duration(cases[i].text, &got);
    if (cases[i].seconds == REFUSED) {
      if (rc != CS_EINVAL)
        fail_msg("\"%s\": expected CS_EINVAL, got %d (%llu)", cases[i].text, rc, got);
      assert_int_equal(got, 12345); /* untouched */
    } else {
      if (rc != 0 || got != cases[i].seconds)
        fail_msg("\"%s\": expected %llu, got %d / %llu", cases[i].text, cases[i].seconds, rc, got);
    }
  }
  unsigned long long got;
  assert_int_equal(cs_parse_duration("18446744073709551615", &got), 0);
  assert_true(got == 18446744073709551615ull);
  assert_int_equal(cs_parse_duration(NULL, &got), CS_EINVAL);
}

/* Durations in the file: bounds of each, numbers and strings, wrong types. */
static void test_duration_settings(void **state) {
  (void)state;
  cs_config cfg;
  /* At the bounds. */
  accepted(MIN_STORAGE
           "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\"; tls_key_file = "
           "\"/k\"; handshake_timeout = \"1h\"; idle_timeout = \"30d\"; };\n"
           "seal = { upgrade_key_ttl = \"30d\"; counter_flush_interval = \"1d\";\n"
           "         max_activation_delay = \"1d\"; };\n"
           "token = { max_ttl = \"3650d\"; };\n",
           &cfg);
  assert_int_equal(cfg.max_activation_delay, 86400);
  assert_int_equal(cfg.listener.handshake_timeout_ms, 3600000);
  assert_int_equal(cfg.listener.idle_timeout_ms, 30u * 86400 * 1000);
  assert_int_equal(cfg.upgrade_key_ttl, 30u * 86400);
  assert_int_equal(cfg.counter_flush_ms, 86400000);
  assert_int_equal(cfg.token_max_ttl, 3650ull * 86400);
  cs_config_free(&cfg);

  refused(MINIMAL "seal = { upgrade_key_ttl = \"0s\"; };\n", "seal.upgrade_key_ttl: must be between");
  refused(MINIMAL "seal = { max_activation_delay = \"0s\"; };\n",
          "seal.max_activation_delay: must be between");
  refused(MINIMAL "seal = { max_activation_delay = \"1d1s\"; };\n",
          "seal.max_activation_delay: must be between");
  refused(MINIMAL "seal = { upgrade_key_ttl = \"30d1s\"; };\n", "seal.upgrade_key_ttl: must be between");
  refused(MINIMAL "seal = { counter_flush_interval = \"1d1s\"; };\n",
          "seal.counter_flush_interval: must be between");
  refused(MINIMAL "seal = { counter_flush_interval = -1; };\n",
          "seal.counter_flush_interval: must not be negative");
  refused(MINIMAL "seal = { counter_flush_interval = 1.5; };\n",
          "seal.counter_flush_interval: expected a duration");
  refused(MINIMAL "seal = { counter_flush_interval = \"500ms\"; };\n",
          "seal.counter_flush_interval: expected a duration");
  accepted(MINIMAL "seal = { generate_root_timeout = \"2s\"; verify_share_per_minute = 3; };\n",
           &cfg);
  assert_int_equal(cfg.generate_root_timeout, 2);
  assert_int_equal(cfg.verify_share_per_minute, 3);
  cs_config_free(&cfg);
  refused(MINIMAL "seal = { generate_root_timeout = 0; };\n",
          "seal.generate_root_timeout: must be between");
  refused(MINIMAL "seal = { generate_root_timeout = \"1d1s\"; };\n",
          "seal.generate_root_timeout: must be between");
  refused(MINIMAL "seal = { verify_share_per_minute = 0; };\n",
          "seal.verify_share_per_minute: must be between");
  refused(MINIMAL "seal = { verify_share_per_minute = \"5\"; };\n",
          "seal.verify_share_per_minute: expected an integer");
  refused(MINIMAL "token = { max_ttl = \"3651d\"; };\n", "token.max_ttl: must be between");
  refused(MINIMAL "token = { max_ttl = \"99999999999999999999d\"; };\n",
          "token.max_ttl: expected a duration");
  /* An int64 of seconds that overflows milliseconds must not wrap. */
  refused(MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\"; "
                      "tls_key_file = \"/k\"; idle_timeout = 9223372036854775807L; };\n",
          "listener.idle_timeout: must be between");
  refused(MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\"; "
                      "tls_key_file = \"/k\"; handshake_timeout = \"1h1s\"; };\n",
          "listener.handshake_timeout: must be between");
  refused(MINIMAL "snapshot = { path = \"/b\"; interval = \"367d\"; };\n",
          "snapshot.interval: must be between");
  refused(MINIMAL CLUSTER_HEAD "handshake_timeout = true; };\n",
          "cluster.handshake_timeout: expected a duration");
}

/* ---------------------------------------------------------------- sizes, integers */

static void test_sizes(void **state) {
  (void)state;
  cs_config cfg;
  accepted("storage = { path = \"/d\"; map_size_mb = 16777216; };\n" MIN_LISTENER, &cfg);
  assert_int_equal(cfg.map_size, (size_t)16777216 << 20);
  cs_config_free(&cfg);
  accepted("storage = { path = \"/d\"; map_size_mb = 1L; };\n" MIN_LISTENER, &cfg);
  assert_int_equal(cfg.map_size, (size_t)1 << 20);
  cs_config_free(&cfg);

  refused("storage = { path = \"/d\"; map_size_mb = 0; };\n" MIN_LISTENER,
          "storage.map_size_mb: must be between 1 and 16777216");
  refused("storage = { path = \"/d\"; map_size_mb = 16777217; };\n" MIN_LISTENER,
          "storage.map_size_mb: must be between");
  /* Shifting by 20 would overflow size_t: refused, never wrapped. */
  refused("storage = { path = \"/d\"; map_size_mb = 9223372036854775807L; };\n" MIN_LISTENER,
          "storage.map_size_mb: must be between");
  refused("storage = { path = \"/d\"; map_size_mb = -1; };\n" MIN_LISTENER,
          "storage.map_size_mb: must be between");
  refused("storage = { path = \"/d\"; map_size_mb = \"1024\"; };\n" MIN_LISTENER,
          "storage.map_size_mb: expected an integer");
  refused("storage = { path = \"/d\"; map_size_mb = 1.0; };\n" MIN_LISTENER,
          "storage.map_size_mb: expected an integer");

#define L(extra)                                                                                 \
  MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\"; "              \
              "tls_key_file = \"/k\"; " extra " };\n"
  refused(L("max_connections = 0;"), "listener.max_connections: must be between 1 and 1000000");
  refused(L("max_connections = 1000001;"), "listener.max_connections: must be between");
  refused(L("max_connections_per_address = 0;"), "listener.max_connections_per_address");
  refused(L("max_inflight = 65537;"), "listener.max_inflight: must be between 1 and 65536");
  refused(L("max_queued_response_bytes = 16383;"),
          "listener.max_queued_response_bytes: must be between 16384");
  refused(L("max_queued_response_bytes = 1073741825;"), "listener.max_queued_response_bytes");
  refused(L("max_handshakes = 0;"), "listener.max_handshakes: must be between");
  refused(L("max_handshakes_per_address = 1000001;"), "listener.max_handshakes_per_address");
  refused(L("max_frame_bytes = 1023;"), "listener.max_frame_bytes: must be between 1024");
  refused(L("max_frame_bytes = 67108865;"), "listener.max_frame_bytes: must be between");
  refused(L("max_frame_bytes_preauth = 1023;"), "listener.max_frame_bytes_preauth");
  /* preauth above the (default or given) post-auth limit */
  refused(L("max_frame_bytes = 4096; max_frame_bytes_preauth = 8192;"),
          "listener.max_frame_bytes_preauth: must not exceed listener.max_frame_bytes");
  refused(L("max_frame_bytes = 2048;"),
          "listener.max_frame_bytes_preauth: must not exceed listener.max_frame_bytes (2048)");
  refused(L("max_inflight = \"7\";"), "listener.max_inflight: expected an integer");
  accepted(L("max_frame_bytes = 67108864; max_frame_bytes_preauth = 67108864;"), &cfg);
  assert_int_equal(cfg.listener.max_frame, 67108864);
  cs_config_free(&cfg);
#undef L

  refused(MINIMAL "snapshot = { path = \"/b\"; retain = 0; };\n", "snapshot.retain: must be between");
  refused(MINIMAL "snapshot = { path = \"/b\"; retain = 100001; };\n", "snapshot.retain");
  refused(MINIMAL "snapshot = { path = \"/b\"; after_key_change = 1; };\n",
          "snapshot.after_key_change: expected true or false");
  refused(MINIMAL "snapshot = { retain = 3; };\n", "snapshot.path: required setting is missing");
}

/* ---------------------------------------------------------------- cluster */

static void test_cluster_bad(void **state) {
  (void)state;
  refused(MINIMAL CLUSTER_HEAD "election_timeout = 49; };\n", "cluster.election_timeout");
  refused(MINIMAL CLUSTER_HEAD "election_timeout = 60001; };\n", "cluster.election_timeout");
  refused(MINIMAL CLUSTER_HEAD "heartbeat_timeout = 9; };\n", "cluster.heartbeat_timeout");
  refused(MINIMAL CLUSTER_HEAD "heartbeat_timeout = 500; };\n",
          "cluster.heartbeat_timeout: must be below cluster.election_timeout");
  refused(MINIMAL CLUSTER_HEAD "poll_interval = 49; };\n", "cluster.poll_interval");
  refused(MINIMAL CLUSTER_HEAD "snapshot_threshold = 1; };\n", "cluster.snapshot_threshold");
  refused(MINIMAL CLUSTER_HEAD "snapshot_trailing = 0; };\n", "cluster.snapshot_trailing");
  refused(MINIMAL CLUSTER_HEAD "snapshot_log_mb = 0; };\n", "cluster.snapshot_log_mb");
  refused(MINIMAL CLUSTER_HEAD "snapshot_log_mb = 1048577; };\n", "cluster.snapshot_log_mb");
  refused(MINIMAL CLUSTER_HEAD "max_unauth_connections = 4097; };\n", "cluster.max_unauth_connections");
  refused(MINIMAL CLUSTER_HEAD "max_unauth_connections = 4; max_unauth_per_address = 5; };\n",
          "cluster.max_unauth_per_address: must not exceed cluster.max_unauth_connections (4)");
  refused(MINIMAL CLUSTER_HEAD "join = \"nowhere\"; };\n", "cluster.join: expected HOST:PORT");
  refused(MINIMAL CLUSTER_HEAD "peers = { node_id = \"n2\"; }; };\n", "cluster.peers: expected a list");
  refused(MINIMAL CLUSTER_HEAD "peers = ( \"n2\" ); };\n", "cluster.peers: expected a group");
  refused(MINIMAL CLUSTER_HEAD "peers = ( { node_id = \"n2\"; address = \"127.0.0.1:7211\"; } ); };\n",
          "cluster.peers.api_address: required setting is missing");
  refused(MINIMAL CLUSTER_HEAD "peers = ( { node_id = \"n1\"; address = \"127.0.0.1:7211\"; "
                           "api_address = \"127.0.0.1:7210\"; } ); };\n",
          "node_id \"n1\" is this node's own");
  refused(MINIMAL CLUSTER_HEAD "peers = ( { node_id = \"n2\"; address = \"127.0.0.1:7211\"; "
                           "api_address = \"127.0.0.1:7210\"; colour = \"red\"; } ); };\n",
          "cluster.peers.colour: unknown setting");
  refused(MINIMAL CLUSTER_HEAD "peers = ( { node_id = \"n 2\"; address = \"127.0.0.1:7211\"; "
                           "api_address = \"127.0.0.1:7210\"; } ); };\n",
          "node_id: use up to 63 letters");
  refused(MINIMAL CLUSTER_HEAD "peers = ( { node_id = \"n2\"; address = \"127.0.0.1:0\"; "
                           "api_address = \"127.0.0.1:7210\"; } ); };\n",
          "address: expected HOST:PORT");
  refused(MINIMAL "cluster = { node_id = \"n1\"; address = \"127.0.0.1:7201\"; api_address = "
              "\"127.0.0.1:7200\"; tls_cert_file = \"/c\"; tls_key_file = \"/k\"; };\n",
          "cluster.tls_ca_file: required setting is missing");
  char text[8192];
  int n = snprintf(text, sizeof text, MINIMAL CLUSTER_HEAD "peers = (");
  for (int i = 2; i <= 17; i++)
    n += snprintf(text + n, sizeof text - (size_t)n,
                  "%s{ node_id = \"n%d\"; address = \"127.0.0.1:%d\"; api_address = "
                  "\"127.0.0.1:%d\"; }",
                  i == 2 ? "" : ", ", i, 7300 + i, 7400 + i);
  snprintf(text + n, sizeof text - (size_t)n, " ); };\n");
  refused(text, "cluster.peers: at most 15 peers");
  char id[80];
  memset(id, 'a', 64);
  id[64] = '\0';
  snprintf(text, sizeof text,
           MINIMAL "cluster = { node_id = \"%s\"; address = \"127.0.0.1:7201\"; api_address = "
               "\"127.0.0.1:7200\"; tls_cert_file = \"/c\"; tls_key_file = \"/k\"; "
               "tls_ca_file = \"/ca\"; };\n",
           id);
  refused(text, "node_id: use up to 63");
}

/* ---------------------------------------------------------------- names, types, syntax */

static void test_unknown_and_missing(void **state) {
  (void)state;
  refused(MINIMAL "listner = { };\n", ":3: listner: unknown setting");
  refused(MINIMAL "verbose = true;\n", "verbose: unknown setting");
  refused(MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\";\n"
                      "  tls_key_file = \"/k\"; max_conections = 5; };\n",
          ":3: listener.max_conections: unknown setting");
  refused("storage = { path = \"/d\"; size = 5; };\n" MIN_LISTENER, "storage.size: unknown setting");
  refused(MINIMAL "seal = { ttl = 5; };\n", "seal.ttl: unknown setting");
  refused(MINIMAL "audit = { path = \"/a\"; };\n", "audit.path: unknown setting");
  refused(MINIMAL "token = { ttl = 5; };\n", "token.ttl: unknown setting");
  refused(MINIMAL "snapshot = { path = \"/b\"; keep = 5; };\n", "snapshot.keep: unknown setting");
  refused(MINIMAL CLUSTER_HEAD "raft_port = 5; };\n", "cluster.raft_port: unknown setting");

  refused(MIN_LISTENER, "storage: required group is missing");
  refused(MIN_STORAGE, "listener: required group is missing");
  refused("storage = { };\n" MIN_LISTENER, "storage.path: required setting is missing");
  refused(MIN_STORAGE "listener = { tls_cert_file = \"/c\"; tls_key_file = \"/k\"; };\n",
          "listener.address: required setting is missing");
  refused(MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_key_file = \"/k\"; };\n",
          "listener.tls_cert_file: required setting is missing");
  refused(MIN_STORAGE "listener = { address = \"127.0.0.1:7200\"; tls_cert_file = \"/c\"; };\n",
          "listener.tls_key_file: required setting is missing");

  refused("storage = \"/d\";\n" MIN_LISTENER, "storage: expected a group");
  refused(MINIMAL "seal = 5;\n", "seal: expected a group");
  refused("storage = { path = 5; };\n" MIN_LISTENER, "storage.path: expected a string");
  refused("storage = { path = \"\"; };\n" MIN_LISTENER, "storage.path: must not be empty");
  refused(MINIMAL "audit = { file = \"\"; };\n", "audit.file: must not be empty");
  refused(MINIMAL "log_level = \"verbose\";\n", "log_level: expected debug, info, warn or error");
  refused(MINIMAL "log_level = 3;\n", "log_level: expected a string");
}

static void test_addresses(void **state) {
  (void)state;
  static const char *const good[] = {"127.0.0.1:7200", "0.0.0.0:1", "[::]:65535", "[::1]:7200",
                                     "localhost:7200", "node-1.example:80"};
  static const char *const bad[] = {"127.0.0.1",   "127.0.0.1:",      ":7200",     "127.0.0.1:0",
                                    "127.0.0.1:65536", "127.0.0.1:123456", "::1:7200", "[::1]7200",
                                    "[]:7200",     "[::1:7200",       "host:72x0", "host:-1"};
  char text[1024];
  cs_config cfg;
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    snprintf(text, sizeof text,
             MIN_STORAGE "listener = { address = \"%s\"; tls_cert_file = \"/c\"; "
                         "tls_key_file = \"/k\"; };\n",
             good[i]);
    accepted(text, &cfg);
    assert_string_equal(cfg.listener.address, good[i]);
    cs_config_free(&cfg);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(text, sizeof text,
             MIN_STORAGE "listener = { address = \"%s\"; tls_cert_file = \"/c\"; "
                         "tls_key_file = \"/k\"; };\n",
             bad[i]);
    refused(text, "listener.address: expected HOST:PORT or [IPv6]:PORT");
  }
}

static void test_syntax_and_files(void **state) {
  (void)state;
  refused(MINIMAL "seal = { upgrade_key_ttl = ; };\n", ":3: syntax error");
  refused(MIN_STORAGE MIN_STORAGE MIN_LISTENER, ":2: ");   /* duplicate group */
  refused("\xff\xfe garbage\n", ":1: ");
  cs_config cfg;
  char err[512];
  assert_int_equal(cs_config_load(&cfg, "/nonexistent/custos.conf", err, sizeof err), CS_ECONFIG);
  assert_non_null(strstr(err, "/nonexistent/custos.conf: cannot read: No such file"));
  /* A message that does not fit is cut, never overrun; no buffer at all is fine. */
  char tiny[8];
  memset(tiny, 'x', sizeof tiny);
  assert_int_equal(load(MINIMAL "verbose = 1;\n", &cfg, tiny, sizeof tiny), CS_ECONFIG);
  assert_int_equal(tiny[7], '\0');
  assert_int_equal(load(MINIMAL "verbose = 1;\n", &cfg, NULL, 0), CS_ECONFIG);
  /* @include works, and errors name the included file. */
  char inc[sizeof dir + 16];
  snprintf(inc, sizeof inc, "%s/inc.conf", dir);
  FILE *f = fopen(inc, "w");
  assert_non_null(f);
  fputs("seal = { counter_flush_interval = \"0s\"; };\n", f);
  fclose(f);
  char text[1024];
  snprintf(text, sizeof text, MINIMAL "@include \"%s\"\n", inc);
  assert_int_equal(load(text, &cfg, err, sizeof err), CS_ECONFIG);
  assert_non_null(strstr(err, inc));
  assert_non_null(strstr(err, "seal.counter_flush_interval"));
  unlink(inc);
  /* A second load into a used config: the first one's values are gone. */
  accepted("storage = { path = \"/first\"; };\n" MIN_LISTENER "audit = { file = \"/a\"; };\n", &cfg);
  cs_config_free(&cfg);
  accepted(MINIMAL, &cfg);
  assert_null(cfg.audit_file);
  assert_string_equal(cfg.storage_path, "/var/lib/custos");
  cs_config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_cluster_defaults),
      cmocka_unit_test(test_every_setting),
      cmocka_unit_test(test_levels_and_derived),
      cmocka_unit_test(test_durations),
      cmocka_unit_test(test_duration_settings),
      cmocka_unit_test(test_sizes),
      cmocka_unit_test(test_cluster_bad),
      cmocka_unit_test(test_unknown_and_missing),
      cmocka_unit_test(test_addresses),
      cmocka_unit_test(test_syntax_and_files),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
