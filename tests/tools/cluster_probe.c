/*
 * cluster_probe: speaks custosd's cluster protocol as a (hostile) peer, for
 * the black-box tests.  It holds any certificate it is given (typically one
 * from the cluster CA that belongs to no member) and tries what a member
 * would do: side-channel messages (new protobuf form or the old text form),
 * a raft preamble claiming some node's id, an idle session, a server that
 * impersonates a node, a pile of unauthenticated connections.
 *
 *   cluster_probe --ca F --cert F --key F CMD ARGS...
 *     status ADDR NODE_ID API_ADDR       ClusterStatus claiming NODE_ID
 *     staged ADDR NODE_ID API_ADDR TERM  ClusterStatus claiming to hold staged TERM (and
 *                                        TERM active) with a proof that is not one
 *     join ADDR NODE_ID RAFT_ADDR API_ADDR
 *     legacy ADDR TEXT                   the pre-protobuf text message ("S ...", "J ...")
 *     unseal ADDR NODE_ID HEX            ClusterUnsealShare (a relayed share) claiming NODE_ID
 *     raft ADDR NODE_ID RAFT_ADDR        raft preamble with NODE_ID's raft id
 *     idle ADDR SECONDS                  handshake, then send nothing
 *     serve PORT SECONDS [api]           accept TLS (client certificate required; with
 *                                        `api`, optional, as an API listener) and
 *                                        report each handshake and what was received
 *     hold ADDR N SECONDS                hold N TCP connections without a handshake,
 *                                        then try one handshake more
 *     frame ADDR HDRHEX SENDLEN          after the handshake, the 11-byte preamble HDRHEX
 *                                        as given (any kind, raft id, length) and SENDLEN
 *                                        bytes of 0xff; prints the reply, "closed" or
 *                                        "timeout"
 *
 * One line of result per step on stdout (the tests grep them); exit 0 when
 * the probe ran, 2 on usage or set-up errors.
 */
#include "cluster_msg.h"
#include "cs_error.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static mbedtls_entropy_context entropy;
static mbedtls_ctr_drbg_context drbg;
static mbedtls_x509_crt ca, cert;
static mbedtls_pk_context key;

static void die(const char *what, int rc) {
  char e[160] = "";
  if (rc)
    mbedtls_strerror(rc, e, sizeof e);
  fprintf(stderr, "cluster_probe: %s%s%s\n", what, rc ? ": " : "", e);
  exit(2);
}

static void split(const char *addr, char *host, size_t cap, char *port, size_t pcap) {
  const char *colon = strrchr(addr, ':');
  if (colon == NULL || (size_t)(colon - addr) >= cap)
    die("address must be HOST:PORT", 0);
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = '\0';
  snprintf(port, pcap, "%s", colon + 1);
}

static void conf_init(mbedtls_ssl_config *conf, int endpoint, uint32_t read_ms) {
  mbedtls_ssl_config_init(conf);
  int rc = mbedtls_ssl_config_defaults(conf, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                       MBEDTLS_SSL_PRESET_DEFAULT);
  if (rc)
    die("ssl config", rc);
  mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
  mbedtls_ssl_conf_authmode(conf, MBEDTLS_SSL_VERIFY_REQUIRED);
  mbedtls_ssl_conf_ca_chain(conf, &ca, NULL);
  mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, &drbg);
  mbedtls_ssl_conf_read_timeout(conf, read_ms);
  if ((rc = mbedtls_ssl_conf_own_cert(conf, &cert, &key)) != 0)
    die("own certificate", rc);
}

typedef struct session {
  mbedtls_net_context net;
  mbedtls_ssl_context ssl;
  mbedtls_ssl_config conf;
} session;

static void close_session(session *s) {
  mbedtls_ssl_free(&s->ssl);
  mbedtls_ssl_config_free(&s->conf);
  mbedtls_net_free(&s->net);
}

/* Connects and handshakes; 0, or -1 (everything freed) after printing "handshake failed: ...". */
static int open_session(session *s, const char *addr, uint32_t read_ms) {
  char host[256], port[16];
  split(addr, host, sizeof host, port, sizeof port);
  mbedtls_net_init(&s->net);
  mbedtls_ssl_init(&s->ssl);
  conf_init(&s->conf, MBEDTLS_SSL_IS_CLIENT, read_ms);
  int rc = mbedtls_net_connect(&s->net, host, port, MBEDTLS_NET_PROTO_TCP);
  if (rc)
    die("connect", rc);
  if ((rc = mbedtls_ssl_setup(&s->ssl, &s->conf)) != 0)
    die("ssl setup", rc);
  mbedtls_ssl_set_bio(&s->ssl, &s->net, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
  while ((rc = mbedtls_ssl_handshake(&s->ssl)) != 0) {
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    char e[160];
    mbedtls_strerror(rc, e, sizeof e);
    printf("handshake failed: %s\n", e);
    close_session(s);
    return -1;
  }
  return 0;
}

static int send_all(session *s, const uint8_t *p, size_t len) {
  while (len > 0) {
    int rc = mbedtls_ssl_write(&s->ssl, p, len);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    if (rc < 0)
      return -1;
    p += rc;
    len -= (size_t)rc;
  }
  return 0;
}

/* Reads exactly len bytes: 0, 1 on EOF / close, -2 on timeout. */
static int read_exact(session *s, uint8_t *p, size_t len) {
  while (len > 0) {
    int rc = mbedtls_ssl_read(&s->ssl, p, len);
    if (rc == MBEDTLS_ERR_SSL_WANT_READ || rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    if (rc == MBEDTLS_ERR_SSL_TIMEOUT)
      return -2;
    if (rc <= 0)
      return 1;
    p += rc;
    len -= (size_t)rc;
  }
  return 0;
}

/* Sends a message preamble + payload and prints the reply. */
static int message(const char *addr, const uint8_t *msg, size_t len, int legacy) {
  session s;
  if (open_session(&s, addr, 10000) < 0)
    return 0;
  uint8_t hdr[CS_CLUSTER_PREAMBLE_LEN];
  cs_cluster_preamble_put(hdr, CS_CLUSTER_KIND_MSG, 0, len);
  if (send_all(&s, hdr, sizeof hdr) < 0 || send_all(&s, msg, len) < 0) {
    printf("closed\n");
    close_session(&s);
    return 0;
  }
  uint8_t rl[2], buf[CS_CLUSTER_MAX_PAYLOAD + 1];
  int rc = read_exact(&s, rl, 2);
  size_t n = ((size_t)rl[0] << 8) | rl[1];
  if (rc == 0 && n <= CS_CLUSTER_MAX_PAYLOAD)
    rc = read_exact(&s, buf, n);
  if (rc != 0) {
    printf(rc == -2 ? "timeout\n" : "closed\n");
  } else if (n == 0) {
    printf("reply empty\n");
  } else if (legacy) {
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
      if (buf[i] < 0x20 || buf[i] > 0x7e)
        buf[i] = '.';
    printf("reply text: %s\n", (char *)buf);
  } else {
    cs_cluster_reply r;
    if (cs_cluster_reply_decode(buf, n, &r) < 0)
      printf("reply undecodable (%zu bytes)\n", n);
    else if (r.type == CS_CLUSTER_REPLY_STATUS)
      printf("reply status node=%s api=%s\n", r.node_id, r.api_address);
    else if (r.type == CS_CLUSTER_REPLY_JOIN)
      printf("reply join member=%d leader=%s\n", r.member, r.leader_address);
    else if (r.type == CS_CLUSTER_REPLY_UNSEAL)
      printf("reply unseal node=%s sealed=%d progress=%u/%u error=%s\n", r.node_id, r.sealed,
             r.progress, r.t, r.reason);
    else
      printf("reply refused: %s\n", r.reason);
  }
  close_session(&s);
  return 0;
}

static int hexval(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                        : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A preamble as given and SENDLEN garbage bytes: what a lying or broken
 * peer sends (a length over the limit, a truncated payload, an unknown
 * kind, a payload that is no protobuf). */
static int cmd_frame(const char *addr, const char *hdrhex, const char *sendlen) {
  uint8_t hdr[CS_CLUSTER_PREAMBLE_LEN];
  if (strlen(hdrhex) != 2 * sizeof hdr)
    die("frame: HDRHEX must be 22 hex digits", 0);
  for (size_t i = 0; i < sizeof hdr; i++) {
    int hi = hexval(hdrhex[2 * i]), lo = hexval(hdrhex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      die("frame: HDRHEX must be hex", 0);
    hdr[i] = (uint8_t)(hi << 4 | lo);
  }
  long n = strtol(sendlen, NULL, 10);
  if (n < 0 || n > 1 << 20)
    die("frame: SENDLEN out of range", 0);
  session s;
  if (open_session(&s, addr, 15000) < 0)
    return 0;
  static uint8_t junk[1 << 20];
  memset(junk, 0xff, (size_t)n);
  if (send_all(&s, hdr, sizeof hdr) < 0 || send_all(&s, junk, (size_t)n) < 0) {
    printf("closed\n");
    close_session(&s);
    return 0;
  }
  uint8_t rl[2], buf[CS_CLUSTER_MAX_PAYLOAD + 1];
  int rc = read_exact(&s, rl, 2);
  size_t len = ((size_t)rl[0] << 8) | rl[1];
  if (rc == 0 && len <= CS_CLUSTER_MAX_PAYLOAD)
    rc = read_exact(&s, buf, len);
  cs_cluster_reply r;
  if (rc != 0)
    printf(rc == -2 ? "timeout\n" : "closed\n");
  else if (len == 0)
    printf("reply empty\n");
  else if (cs_cluster_reply_decode(buf, len, &r) < 0)
    printf("reply undecodable (%zu bytes)\n", len);
  else if (r.type == CS_CLUSTER_REPLY_REFUSED)
    printf("reply refused: %s\n", r.reason);
  else
    printf("reply type %d\n", r.type);
  close_session(&s);
  return 0;
}

static int cmd_status(const char *addr, const char *node, const char *api) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_STATUS, .term = 1, .applied = 1};
  snprintf(m.node_id, sizeof m.node_id, "%s", node);
  snprintf(m.api_address, sizeof m.api_address, "%s", api);
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (cs_cluster_msg_encode(&m, buf, sizeof buf, &n) < 0)
    die("cannot encode the status message", 0);
  return message(addr, buf, n, 0);
}

/* A member lying about holding a staged term: the proof is made up. */
static int cmd_staged(const char *addr, const char *node, const char *api, const char *term) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_STATUS, .applied = 1};
  m.term = m.staged_term = (uint32_t)strtoul(term, NULL, 10);
  memset(m.staged_proof, 0xa5, sizeof m.staged_proof);
  snprintf(m.node_id, sizeof m.node_id, "%s", node);
  snprintf(m.api_address, sizeof m.api_address, "%s", api);
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (cs_cluster_msg_encode(&m, buf, sizeof buf, &n) < 0)
    die("cannot encode the status message", 0);
  return message(addr, buf, n, 0);
}

static int cmd_unseal(const char *addr, const char *node, const char *hex) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_UNSEAL};
  snprintf(m.node_id, sizeof m.node_id, "%s", node);
  size_t n = strlen(hex) / 2;
  if (n > sizeof m.key)
    n = sizeof m.key;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(hex + 2 * i, "%2x", &v) != 1)
      die("HEX must be hex", 0);
    m.key[i] = (uint8_t)v;
  }
  m.key_len = n;
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t len;
  if (cs_cluster_msg_encode(&m, buf, sizeof buf, &len) < 0)
    die("cannot encode the unseal message", 0);
  return message(addr, buf, len, 0);
}

static int cmd_join(const char *addr, const char *node, const char *raft, const char *api) {
  cs_cluster_msg m = {.type = CS_CLUSTER_MSG_JOIN};
  snprintf(m.node_id, sizeof m.node_id, "%s", node);
  snprintf(m.address, sizeof m.address, "%s", raft);
  snprintf(m.api_address, sizeof m.api_address, "%s", api);
  uint8_t buf[CS_CLUSTER_MAX_PAYLOAD];
  size_t n;
  if (cs_cluster_msg_encode(&m, buf, sizeof buf, &n) < 0)
    die("cannot encode the join message", 0);
  return message(addr, buf, n, 0);
}

/* A raft preamble; "open" when the server still holds the stream after 2 s. */
static int cmd_raft(const char *addr, const char *node, const char *raft_addr) {
  session s;
  if (open_session(&s, addr, 2000) < 0)
    return 0;
  uint8_t hdr[CS_CLUSTER_PREAMBLE_LEN];
  cs_cluster_preamble_put(hdr, CS_CLUSTER_KIND_RAFT, cs_cluster_raft_id(node), strlen(raft_addr));
  if (send_all(&s, hdr, sizeof hdr) < 0 ||
      send_all(&s, (const uint8_t *)raft_addr, strlen(raft_addr)) < 0) {
    printf("closed\n");
  } else {
    uint8_t b[1];
    int rc = read_exact(&s, b, 1);
    printf(rc == -2 ? "open\n" : rc == 0 ? "open (raft data)\n" : "closed\n");
  }
  close_session(&s);
  return 0;
}

static int cmd_idle(const char *addr, int seconds) {
  session s;
  if (open_session(&s, addr, (uint32_t)seconds * 1000) < 0)
    return 0;
  uint8_t b[1];
  int rc = read_exact(&s, b, 1);
  printf(rc == -2 ? "still open after %d s\n" : "closed by server\n", seconds);
  close_session(&s);
  return 0;
}

/* A TLS server with this certificate: who connects, does the handshake
 * complete, what arrives. */
static int cmd_serve(const char *port, int seconds, int api) {
  mbedtls_net_context lis;
  mbedtls_net_init(&lis);
  int rc = mbedtls_net_bind(&lis, "127.0.0.1", port, MBEDTLS_NET_PROTO_TCP);
  if (rc)
    die("bind", rc);
  printf("listening\n");
  fflush(stdout);
  time_t end = time(NULL) + seconds;
  mbedtls_ssl_config conf;
  conf_init(&conf, MBEDTLS_SSL_IS_SERVER, 2000);
  if (api) /* as the API listener: clients present no certificate */
    mbedtls_ssl_conf_authmode(&conf, MBEDTLS_SSL_VERIFY_NONE);
  while (time(NULL) < end) {
    struct pollfd pfd = {.fd = lis.fd, .events = POLLIN};
    if (poll(&pfd, 1, 200) <= 0)
      continue;
    mbedtls_net_context cli;
    mbedtls_net_init(&cli);
    if (mbedtls_net_accept(&lis, &cli, NULL, 0, NULL) != 0)
      continue;
    mbedtls_ssl_context ssl;
    mbedtls_ssl_init(&ssl);
    mbedtls_ssl_setup(&ssl, &conf);
    mbedtls_ssl_set_bio(&ssl, &cli, mbedtls_net_send, NULL, mbedtls_net_recv_timeout);
    while ((rc = mbedtls_ssl_handshake(&ssl)) == MBEDTLS_ERR_SSL_WANT_READ ||
           rc == MBEDTLS_ERR_SSL_WANT_WRITE)
      ;
    if (rc != 0) {
      char e[160];
      mbedtls_strerror(rc, e, sizeof e);
      printf("peer handshake failed: %s\n", e);
    } else {
      uint8_t buf[512];
      int n = mbedtls_ssl_read(&ssl, buf, sizeof buf);
      printf("peer handshake ok; received %d bytes\n", n > 0 ? n : 0);
    }
    fflush(stdout);
    mbedtls_ssl_free(&ssl);
    mbedtls_net_free(&cli);
  }
  mbedtls_ssl_config_free(&conf);
  mbedtls_net_free(&lis);
  return 0;
}

/* Counts the held sockets the server has closed (EOF or reset). */
static int count_closed(const int *fds, int n) {
  int closed = 0;
  for (int i = 0; i < n; i++) {
    struct pollfd pfd = {.fd = fds[i], .events = POLLIN};
    char b;
    if (poll(&pfd, 1, 0) == 1 && recv(fds[i], &b, 1, MSG_DONTWAIT | MSG_PEEK) <= 0)
      closed++;
  }
  return closed;
}

static int cmd_hold(const char *addr, int n, int seconds) {
  char host[256], port[16];
  split(addr, host, sizeof host, port, sizeof port);
  int *fds = calloc((size_t)n, sizeof *fds);
  for (int i = 0; i < n; i++) {
    mbedtls_net_context c;
    mbedtls_net_init(&c);
    if (mbedtls_net_connect(&c, host, port, MBEDTLS_NET_PROTO_TCP) != 0)
      die("connect", 0);
    fds[i] = c.fd;
  }
  /* One more, with a real handshake, while the others are held. */
  session s;
  int ok = open_session(&s, addr, 3000) == 0;
  if (ok) {
    printf("extra handshake: ok\n");
    close_session(&s);
  } else {
    printf("extra handshake: refused\n");
  }
  printf("closed early: %d of %d\n", count_closed(fds, n), n);
  fflush(stdout);
  time_t end = time(NULL) + seconds;
  int closed = 0;
  while (time(NULL) < end && (closed = count_closed(fds, n)) < n)
    usleep(100 * 1000);
  printf("closed by server: %d of %d\n", closed, n);
  for (int i = 0; i < n; i++)
    close(fds[i]);
  free(fds);
  return 0;
}

int main(int argc, char **argv) {
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *caf = NULL, *certf = NULL, *keyf = NULL;
  int i = 1;
  for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
    if (strcmp(argv[i], "--ca") == 0)
      caf = argv[i + 1];
    else if (strcmp(argv[i], "--cert") == 0)
      certf = argv[i + 1];
    else if (strcmp(argv[i], "--key") == 0)
      keyf = argv[i + 1];
    else
      die("unknown option", 0);
  }
  if (caf == NULL || certf == NULL || keyf == NULL || i >= argc)
    die("usage: cluster_probe --ca F --cert F --key F CMD ARGS...", 0);
  mbedtls_entropy_init(&entropy);
  mbedtls_ctr_drbg_init(&drbg);
  mbedtls_x509_crt_init(&ca);
  mbedtls_x509_crt_init(&cert);
  mbedtls_pk_init(&key);
  int rc;
  if ((rc = mbedtls_ctr_drbg_seed(&drbg, mbedtls_entropy_func, &entropy, NULL, 0)) != 0 ||
      (rc = mbedtls_x509_crt_parse_file(&ca, caf)) != 0 ||
      (rc = mbedtls_x509_crt_parse_file(&cert, certf)) != 0 ||
      (rc = mbedtls_pk_parse_keyfile(&key, keyf, NULL)) != 0)
    die("loading the certificates", rc);
  const char *cmd = argv[i];
  char **a = argv + i + 1;
  int na = argc - i - 1;
  if (strcmp(cmd, "status") == 0 && na == 3)
    return cmd_status(a[0], a[1], a[2]);
  if (strcmp(cmd, "staged") == 0 && na == 4)
    return cmd_staged(a[0], a[1], a[2], a[3]);
  if (strcmp(cmd, "join") == 0 && na == 4)
    return cmd_join(a[0], a[1], a[2], a[3]);
  if (strcmp(cmd, "unseal") == 0 && na == 3)
    return cmd_unseal(a[0], a[1], a[2]);
  if (strcmp(cmd, "legacy") == 0 && na == 2)
    return message(a[0], (const uint8_t *)a[1], strlen(a[1]), 1);
  if (strcmp(cmd, "raft") == 0 && na == 3)
    return cmd_raft(a[0], a[1], a[2]);
  if (strcmp(cmd, "idle") == 0 && na == 2)
    return cmd_idle(a[0], atoi(a[1]));
  if (strcmp(cmd, "serve") == 0 && (na == 2 || (na == 3 && strcmp(a[2], "api") == 0)))
    return cmd_serve(a[0], atoi(a[1]), na == 3);
  if (strcmp(cmd, "frame") == 0 && na == 3)
    return cmd_frame(a[0], a[1], a[2]);
  if (strcmp(cmd, "hold") == 0 && na == 3)
    return cmd_hold(a[0], atoi(a[1]), atoi(a[2]));
  die("unknown command or wrong number of arguments", 0);
  return 2;
}
