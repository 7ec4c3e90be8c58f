/*
 * custos_client: one blocking TLS connection to custosd.  See custos_client.h.
 *
 * Layers, bottom up: a non-blocking TCP socket whose every wait is a poll()
 * bounded by timeout_ms; mbedTLS 2.28 driven through bio callbacks over that
 * socket; frames (4-byte length + protobuf) over the TLS stream.
 *
 * mbedTLS error codes and errno are translated to CS_E* codes here and
 * nowhere else; each failure also leaves a one-line message in c->errmsg
 * (and, for cs_client_connect, in the thread's cs_error detail).
 *
 * Secrets held here: the token (c->token, wiped in cs_client_close) and the
 * frames written and read (request frames carry the token and shares,
 * response frames shares and values): every frame buffer is wiped before
 * it is freed.
 */
#define _GNU_SOURCE
#include "addr.h"
#include "tls_policy.h"
#include "custos_client.h"
#include "ip_san.h"
#include "wire.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/platform_util.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

struct cs_client {
  /* Options, owned copies. */
  char *ca_file, *cert_file, *key_file;
  unsigned char *token;
  size_t token_len;
  int insecure;
  int timeout_ms;
  int max_redirects;

  /* Where we are connected now. */
  char addr[300];
  char host[256];
  char port[8];
  int host_is_ip;
  unsigned char ip[16];
  size_t ip_len;

  /* TLS state shared by successive connections (redirects). */
  mbedtls_entropy_context entropy;
  mbedtls_ctr_drbg_context drbg;
  mbedtls_x509_crt ca;
  mbedtls_x509_crt cert;
  mbedtls_pk_context key;
  mbedtls_ssl_config conf;
  /* Per connection.  Never moves: the client is heap-allocated. */
  mbedtls_ssl_context ssl;
  int ssl_live;     /* ssl was set up (needs mbedtls_ssl_free) */
  int handshaked;   /* close_notify is worth sending */
  int broken;       /* a transport/protocol error happened: no more calls */
  int fd;

  /* Set by the bio callbacks so errors can be told apart. */
  int io_timed_out;
  int io_errno;

  uint64_t next_id;   /* id of the last request sent */
  uint64_t recv_id;   /* id of the last response received */

  char errmsg[512];
};

/* TLS 1.2, forward secrecy, AEAD only. */

/* ------------------------------------------------------------------ errors */

/* Records the message on the client and as this thread's cs_error detail;
 * returns `code`. */
static int fail(cs_client *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(cs_client *c, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
  va_end(ap);
  cs_error_set(code, "%s", c->errmsg);
  return code;
}

static void tls_strerror(int ret, char *buf, size_t cap) {
  mbedtls_strerror(ret, buf, cap);
  if (buf[0] == '\0')
    snprintf(buf, cap, "mbedTLS error -0x%04x", (unsigned)-ret);
}

/* The reasons behind MBEDTLS_ERR_X509_CERT_VERIFY_FAILED, in words. */
static void verify_reasons(const cs_client *c, uint32_t flags, char *buf, size_t cap) {
  static const struct { uint32_t flag; const char *what; } reasons[] = {
    { MBEDTLS_X509_BADCERT_NOT_TRUSTED, "not trusted" },
    { MBEDTLS_X509_BADCERT_EXPIRED, "expired" },
    { MBEDTLS_X509_BADCERT_FUTURE, "not yet valid" },
    { MBEDTLS_X509_BADCERT_REVOKED, "revoked" },
    { MBEDTLS_X509_BADCERT_KEY_USAGE, "key usage does not allow TLS" },
    { MBEDTLS_X509_BADCERT_EXT_KEY_USAGE, "extended key usage does not allow TLS server" },
    { MBEDTLS_X509_BADCERT_BAD_MD | MBEDTLS_X509_BADCERT_BAD_PK | MBEDTLS_X509_BADCERT_BAD_KEY,
      "weak or unsupported key or signature" },
    { MBEDTLS_X509_BADCERT_MISSING, "no certificate" },
    { MBEDTLS_X509_BADCERT_SKIP_VERIFY, "verification skipped" },
    { MBEDTLS_X509_BADCERT_OTHER, "other reason" },
  };
  size_t off = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
    if ((flags & reasons[i].flag) == 0)
      continue;
    int n = snprintf(buf + off, cap - off, "%s%s", off ? ", " : "", reasons[i].what);
    if (n < 0 || (size_t)n >= cap - off)
      return;
    off += (size_t)n;
  }
  if (flags & MBEDTLS_X509_BADCERT_CN_MISMATCH) {
    snprintf(buf + off, cap - off, "%scertificate is not valid for %s%s", off ? ", " : "",
             c->host_is_ip ? "IP address " : "", c->host);
  } else if (off == 0) {
    snprintf(buf, cap, "flags 0x%x", (unsigned)flags);
  }
}

/* Translates a failed mbedtls_ssl_read/write; marks the connection dead. */
static int io_fail(cs_client *c, int ret, const char *doing) {
  char tmp[160];
  c->broken = 1;
  if (c->io_timed_out)
    return fail(c, CS_ETIMEOUT, "timed out %s %s", doing, c->addr);
  if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY || ret == MBEDTLS_ERR_NET_CONN_RESET)
    return fail(c, CS_ECONN, "connection closed by %s", c->addr);
  if (c->io_errno != 0)
    return fail(c, CS_ECONN, "connection to %s failed: %s", c->addr, strerror(c->io_errno));
  tls_strerror(ret, tmp, sizeof tmp);
  return fail(c, CS_ETLS, "TLS error with %s: %s", c->addr, tmp);
}

/* -------------------------------------------------------------- addresses */

/* Splits "HOST:PORT" or "[V6]:PORT" (common/addr.h). */
static int parse_addr(cs_client *c, const char *addr) {
  cs_addr a;
  if (cs_addr_parse(addr, &a) != 0)
    return fail(c, CS_EINVAL, "bad %s", cs_error_message(CS_EINVAL));
  if (strlen(a.host) >= sizeof c->host || strlen(addr) >= sizeof c->addr)
    return fail(c, CS_EINVAL, "address too long");
  snprintf(c->host, sizeof c->host, "%s", a.host);
  snprintf(c->port, sizeof c->port, "%u", (unsigned)a.port);
  snprintf(c->addr, sizeof c->addr, "%s", addr);

  c->host_is_ip = 0;
  c->ip_len = 0;
  if (inet_pton(AF_INET, c->host, c->ip) == 1) {
    c->host_is_ip = 1;
    c->ip_len = 4;
  } else if (inet_pton(AF_INET6, c->host, c->ip) == 1) {
    c->host_is_ip = 1;
    c->ip_len = 16;
  } else if (addr[0] == '[') {
    return fail(c, CS_EINVAL, "bad address \"%s\": not an IPv6 address in brackets", addr);
  }
  return 0;
}

/* ---------------------------------------------------------------- sockets */

/* Waits for `events` on c->fd.  Returns 1 ready, 0 timeout, -1 error. */
static int wait_fd(cs_client *c, short events) {
  struct pollfd pfd = { .fd = c->fd, .events = events };
  for (;;) {
    int n = poll(&pfd, 1, c->timeout_ms);
    if (n > 0)
      return 1;
    if (n == 0)
      return 0;
    if (errno != EINTR)
      return -1;
  }
}

static int bio_send(void *ctx, const unsigned char *buf, size_t len) {
  cs_client *c = ctx;
  for (;;) {
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
      return (int)n;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c->io_errno = errno;
      return errno == EPIPE || errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET
                                                   : MBEDTLS_ERR_NET_SEND_FAILED;
    }
    int w = wait_fd(c, POLLOUT);
    if (w == 0) {
      c->io_timed_out = 1;
      return MBEDTLS_ERR_NET_SEND_FAILED;
    }
    if (w < 0) {
      c->io_errno = errno;
      return MBEDTLS_ERR_NET_SEND_FAILED;
    }
  }
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len) {
  cs_client *c = ctx;
  for (;;) {
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0)
      return (int)n;   /* 0 is EOF for mbedTLS */
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
      c->io_errno = errno;
      return errno == ECONNRESET ? MBEDTLS_ERR_NET_CONN_RESET : MBEDTLS_ERR_NET_RECV_FAILED;
    }
    int w = wait_fd(c, POLLIN);
    if (w == 0) {
      c->io_timed_out = 1;
      return MBEDTLS_ERR_SSL_TIMEOUT;
    }
    if (w < 0) {
      c->io_errno = errno;
      return MBEDTLS_ERR_NET_RECV_FAILED;
    }
  }
}

/* Non-blocking connect to each resolved address in turn, bounded by the
 * timeout.  The socket stays non-blocking: the bio callbacks poll. */
static int tcp_connect(cs_client *c) {
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                            .ai_flags = AI_NUMERICSERV | AI_ADDRCONFIG };
  struct addrinfo *res = NULL;
  int gai = getaddrinfo(c->host, c->port, &hints, &res);
  if (gai == EAI_ADDRFAMILY || gai == EAI_NONAME) {
    hints.ai_flags = AI_NUMERICSERV;   /* e.g. ::1 with no v6 address configured */
    gai = getaddrinfo(c->host, c->port, &hints, &res);
  }
  if (gai != 0)
    return fail(c, CS_ECONN, "cannot resolve %s: %s", c->host,
                gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));

  int err = ECONNREFUSED, timed_out = 0;
  for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol);
    if (fd < 0) {
      err = errno;
      continue;
    }
    c->fd = fd;
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      int w = wait_fd(c, POLLOUT);
      if (w == 1) {
        socklen_t sl = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) < 0)
          err = errno;
        rc = err == 0 ? 0 : -1;
      } else {
        if (w == 0)
          timed_out = 1;
        err = w == 0 ? ETIMEDOUT : errno;
        rc = -1;
      }
    } else if (rc < 0) {
      err = errno;
    }
    if (rc == 0) {
      int one = 1;
      (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      freeaddrinfo(res);
      return 0;
    }
    close(fd);
    c->fd = -1;
  }
  freeaddrinfo(res);
  if (timed_out && err == ETIMEDOUT)
    return fail(c, CS_ETIMEOUT, "cannot connect to %s: timed out after %d ms", c->addr, c->timeout_ms);
  return fail(c, CS_ECONN, "cannot connect to %s: %s", c->addr, strerror(err));
}

/* -------------------------------------------------------------------- TLS */

/*
 * Called by mbedTLS for every certificate of the chain, root first.  For the
 * leaf, when we dialed an IP literal, the name check is ours: no hostname was
 * given to mbedTLS (so it neither sends an IP as SNI nor compares it with
 * DNS names), and the leaf must carry a matching iPAddress SAN.
 */
static int verify_cb(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags) {
  const cs_client *c = ctx;
  if (depth != 0 || !c->host_is_ip)
    return 0;
  if (cs_x509_ip_san_match(crt, c->ip, c->ip_len))
    *flags &= ~(uint32_t)MBEDTLS_X509_BADCERT_CN_MISMATCH;
  else
    *flags |= MBEDTLS_X509_BADCERT_CN_MISMATCH;
  return 0;
}

/* mbedTLS says "PK - Read/write of file failed" for a missing file: ask
 * the OS first for a message that names the cause. */
static int check_readable(cs_client *c, const char *what, const char *path) {
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return fail(c, CS_ECONFIG, "cannot read %s %s: %s", what, path, strerror(errno));
  fclose(f);
  return 0;
}

/* Loads the files and builds the shared ssl_config.  Once per client. */
static int tls_config(cs_client *c) {
  char tmp[160];
  int ret;
  static const unsigned char pers[] = "custos-client";
  if ((ret = mbedtls_ctr_drbg_seed(&c->drbg, mbedtls_entropy_func, &c->entropy, pers,
                                   sizeof pers - 1)) != 0)
    return fail(c, CS_ECRYPTO, "cannot seed the random generator (-0x%04x)", (unsigned)-ret);

  if (c->ca_file != NULL) {
    if ((ret = check_readable(c, "CA certificate", c->ca_file)) < 0)
      return ret;
    ret = mbedtls_x509_crt_parse_file(&c->ca, c->ca_file);
    if (ret < 0 || c->ca.version == 0) {
      tls_strerror(ret, tmp, sizeof tmp);
      return fail(c, CS_ECONFIG, "cannot load CA certificate %s: %s", c->ca_file,
                  ret < 0 ? tmp : "no certificate found");
    }
  } else if (!c->insecure) {
    return fail(c, CS_ECONFIG, "no CA certificate given to verify the server "
                               "(--ca-cert FILE or CUSTOS_CACERT)");
  }
  if ((c->cert_file == NULL) != (c->key_file == NULL))
    return fail(c, CS_EINVAL, "a client certificate needs both a certificate file and a key file");
  if (c->cert_file != NULL) {
    if ((ret = check_readable(c, "client certificate", c->cert_file)) < 0 ||
        (ret = check_readable(c, "client key", c->key_file)) < 0)
      return ret;
    ret = mbedtls_x509_crt_parse_file(&c->cert, c->cert_file);
    if (ret != 0) {
      tls_strerror(ret, tmp, sizeof tmp);
      return fail(c, CS_ECONFIG, "cannot load client certificate %s: %s", c->cert_file,
                  ret < 0 ? tmp : "some certificates could not be parsed");
    }
    ret = mbedtls_pk_parse_keyfile(&c->key, c->key_file, NULL);
    if (ret != 0) {
      tls_strerror(ret, tmp, sizeof tmp);
      return fail(c, CS_ECONFIG, "cannot load client key %s: %s", c->key_file, tmp);
    }
  }

  /* The client profile of the one TLS policy (common/tls_policy.h): TLS
   * 1.2, ECDHE + AEAD suites, the project's curves; the server verified
   * against the CA unless the caller asked for insecure. */
  mbedtls_ssl_config_free(&c->conf);
  ret = cs_tls_policy_client(&c->conf, &c->drbg, c->insecure ? NULL : &c->ca,
                             c->cert_file != NULL ? &c->cert : NULL,
                             c->cert_file != NULL ? &c->key : NULL);
  if (ret < 0)
    return fail(c, ret == CS_ETLS ? CS_ECONFIG : ret, "%s", cs_error_message(ret));
  if (!c->insecure)
    mbedtls_ssl_conf_verify(&c->conf, verify_cb, c); /* IP SANs (mbedTLS 2.28 has none) */
  return 0;
}

static void conn_close(cs_client *c) {
  if (c->ssl_live) {
    if (c->handshaked && !c->broken && c->fd >= 0) {
      int saved = c->timeout_ms;
      c->timeout_ms = saved < 1000 ? saved : 1000;   /* best effort */
      (void)mbedtls_ssl_close_notify(&c->ssl);
      c->timeout_ms = saved;
    }
    mbedtls_ssl_free(&c->ssl);
    c->ssl_live = 0;
  }
  c->handshaked = 0;
  if (c->fd >= 0) {
    close(c->fd);
    c->fd = -1;
  }
}

/* Connects (TCP + TLS) to `addr`, dropping any current connection. */
static int conn_open(cs_client *c, const char *addr) {
  char tmp[160];
  int ret, rc;
  conn_close(c);
  c->broken = 1;   /* until the handshake succeeds */
  c->io_timed_out = 0;
  c->io_errno = 0;
  if ((rc = parse_addr(c, addr)) < 0)
    return rc;
  if ((rc = tcp_connect(c)) < 0)
    return rc;

  mbedtls_ssl_init(&c->ssl);
  c->ssl_live = 1;
  if ((ret = mbedtls_ssl_setup(&c->ssl, &c->conf)) != 0)
    return fail(c, CS_ECRYPTO, "cannot set up TLS (-0x%04x)", (unsigned)-ret);
  /* A name goes to mbedTLS (SNI + dNSName/CN check); an IP literal does
   * not: RFC 6066 forbids IP literals in SNI, and verify_cb checks it. */
  if ((ret = mbedtls_ssl_set_hostname(&c->ssl, c->host_is_ip ? NULL : c->host)) != 0)
    return fail(c, CS_EINVAL, "bad server name %s", c->host);
  mbedtls_ssl_set_bio(&c->ssl, c, bio_send, bio_recv, NULL);

  do
    ret = mbedtls_ssl_handshake(&c->ssl);
  while (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE);
  if (ret != 0) {
    if (c->io_timed_out)
      return fail(c, CS_ETIMEOUT, "TLS handshake with %s timed out", c->addr);
    if (ret == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED) {
      verify_reasons(c, mbedtls_ssl_get_verify_result(&c->ssl), tmp, sizeof tmp);
      return fail(c, CS_ETLS, "TLS handshake with %s failed: certificate verify failed (%s)",
                  c->addr, tmp);
    }
    if (c->io_errno != 0)
      return fail(c, CS_ECONN, "TLS handshake with %s failed: %s", c->addr, strerror(c->io_errno));
    if (ret == MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE)
      return fail(c, CS_ETLS, "TLS handshake with %s failed: the server sent a fatal alert "
                  "(no shared TLS 1.2 ECDHE AEAD cipher suite, or a client certificate is "
                  "required or was refused)", c->addr);
    if (ret == MBEDTLS_ERR_SSL_CONN_EOF || ret == MBEDTLS_ERR_NET_CONN_RESET)
      return fail(c, CS_ECONN, "TLS handshake with %s failed: connection closed by the server",
                  c->addr);
    tls_strerror(ret, tmp, sizeof tmp);
    return fail(c, CS_ETLS, "TLS handshake with %s failed: %s", c->addr, tmp);
  }
  c->handshaked = 1;
  c->broken = 0;
  return 0;
}

/* ------------------------------------------------------------- lifecycle */

void cs_client_opts_init(cs_client_opts *opts) {
  memset(opts, 0, sizeof *opts);
  opts->addr = CS_CLIENT_DEFAULT_ADDR;
  opts->timeout_ms = CS_CLIENT_DEFAULT_TIMEOUT_MS;
  opts->max_redirects = CS_CLIENT_DEFAULT_MAX_REDIRECTS;
}

static int dup_opt(char **dst, const char *src) {
  if (src == NULL || *src == '\0')
    return 0;
  *dst = strdup(src);
  return *dst == NULL ? CS_ENOMEM : 0;
}

int cs_client_connect(cs_client **out, const cs_client_opts *opts) {
  *out = NULL;
  cs_client *c = calloc(1, sizeof *c);
  if (c == NULL)
    return cs_error_set(CS_ENOMEM, "out of memory");
  c->fd = -1;
  mbedtls_entropy_init(&c->entropy);
  mbedtls_ctr_drbg_init(&c->drbg);
  mbedtls_x509_crt_init(&c->ca);
  mbedtls_x509_crt_init(&c->cert);
  mbedtls_pk_init(&c->key);
  mbedtls_ssl_config_init(&c->conf);

  int rc;
  c->insecure = opts->insecure_skip_verify != 0;
  c->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : CS_CLIENT_DEFAULT_TIMEOUT_MS;
  c->max_redirects = opts->max_redirects >= 0 ? opts->max_redirects : CS_CLIENT_DEFAULT_MAX_REDIRECTS;
  if ((rc = dup_opt(&c->ca_file, opts->ca_file)) < 0 ||
      (rc = dup_opt(&c->cert_file, opts->cert_file)) < 0 ||
      (rc = dup_opt(&c->key_file, opts->key_file)) < 0) {
    rc = fail(c, CS_ENOMEM, "out of memory");
    goto fail_opts;
  }
  if (opts->token != NULL && opts->token[0] != '\0') {
    c->token_len = strlen(opts->token);
    c->token = malloc(c->token_len);
    if (c->token == NULL) {
      rc = fail(c, CS_ENOMEM, "out of memory");
      goto fail_opts;
    }
    memcpy(c->token, opts->token, c->token_len);
  }
  if ((rc = tls_config(c)) < 0)
    goto fail_opts;
  if ((rc = conn_open(c, opts->addr != NULL && opts->addr[0] ? opts->addr : CS_CLIENT_DEFAULT_ADDR)) < 0)
    goto fail_opts;
  *out = c;
  return 0;

fail_opts:
  /* cs_client_close frees everything; keep the detail it does not touch. */
  cs_client_close(c);
  return rc;
}

void cs_client_close(cs_client *c) {
  if (c == NULL)
    return;
  conn_close(c);
  mbedtls_ssl_config_free(&c->conf);
  mbedtls_pk_free(&c->key);
  mbedtls_x509_crt_free(&c->cert);
  mbedtls_x509_crt_free(&c->ca);
  mbedtls_ctr_drbg_free(&c->drbg);
  mbedtls_entropy_free(&c->entropy);
  if (c->token != NULL) {
    mbedtls_platform_zeroize(c->token, c->token_len);
    free(c->token);
  }
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  mbedtls_platform_zeroize(c, sizeof *c);
  free(c);
}

const char *cs_client_errmsg(const cs_client *c) { return c != NULL ? c->errmsg : ""; }
const char *cs_client_addr(const cs_client *c) { return c->addr; }
size_t cs_client_inflight(const cs_client *c) { return (size_t)(c->next_id - c->recv_id); }

/* ----------------------------------------------------------------- frames */

static int write_all(cs_client *c, const uint8_t *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    int ret = mbedtls_ssl_write(&c->ssl, buf + off, len - off);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    if (ret <= 0)
      return io_fail(c, ret, "writing to");
    off += (size_t)ret;
  }
  return 0;
}

static int read_all(cs_client *c, uint8_t *buf, size_t len) {
  size_t off = 0;
  while (off < len) {
    int ret = mbedtls_ssl_read(&c->ssl, buf + off, len - off);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
      continue;
    if (ret <= 0)
      return io_fail(c, ret, "waiting for");
    off += (size_t)ret;
  }
  return 0;
}

/* Encodes req as the frame of request `id`, lending it the client's token
 * when it carries none (for the encoding only).  0 or a negative code. */
static int encode_request(cs_client *c, Custos__Request *req, uint64_t id, uint8_t **frame,
                          size_t *n) {
  *frame = NULL;
  if (req->op_case == CUSTOS__REQUEST__OP__NOT_SET)
    return fail(c, CS_EINVAL, "request carries no operation");
  ProtobufCBinaryData saved = req->token;
  if (req->token.len == 0 && c->token_len > 0) {
    req->token.data = c->token;
    req->token.len = c->token_len;
  }
  req->id = id;
  uint8_t *f = cs_wire_encode(&req->base, n);
  req->token = saved;
  if (f == NULL)
    return fail(c, CS_ENOMEM, "out of memory");
  if (*n - CS_WIRE_HDR > CS_CLIENT_MAX_FRAME) {
    mbedtls_platform_zeroize(f, *n);
    free(f);
    return fail(c, CS_ETOOBIG, "request of %zu bytes is too large", *n - CS_WIRE_HDR);
  }
  *frame = f;
  return 0;
}

static void wipe_free(uint8_t *buf, size_t len) {
  if (buf != NULL)
    mbedtls_platform_zeroize(buf, len);
  free(buf);
}

int cs_client_send(cs_client *c, Custos__Request *req) { return cs_client_send_many(c, &req, 1); }

/* Appends frame to *all (grown by doubling; the old buffer wiped). */
static int append_frame(uint8_t **all, size_t *len, size_t *cap, const uint8_t *frame, size_t n) {
  if (n > SIZE_MAX / 2 - *len)
    return -1;
  if (*len + n > *cap) {
    size_t ncap = *cap * 2 > *len + n ? *cap * 2 : *len + n;
    uint8_t *grown = malloc(ncap);
    if (grown == NULL)
      return -1;
    if (*len > 0)
      memcpy(grown, *all, *len);
    wipe_free(*all, *len);
    *all = grown;
    *cap = ncap;
  }
  memcpy(*all + *len, frame, n);
  *len += n;
  return 0;
}

int cs_client_send_many(cs_client *c, Custos__Request *const *reqs, size_t count) {
  c->errmsg[0] = '\0';
  if (c->broken)
    return fail(c, CS_ECONN, "connection to %s is closed", c->addr);
  uint8_t *all = NULL, *frame;
  size_t total = 0, cap = 0, n;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < count; i++) {
    rc = encode_request(c, reqs[i], c->next_id + 1 + i, &frame, &n);
    if (rc == 0 && count == 1) {
      all = frame; /* a single request is written from its own buffer */
      total = n;
    } else if (rc == 0) {
      if (append_frame(&all, &total, &cap, frame, n) < 0)
        rc = fail(c, CS_ENOMEM, "out of memory");
      wipe_free(frame, n);
    }
  }
  if (rc == 0 && total > 0)
    rc = write_all(c, all, total); /* one TLS write: the frames may share a record */
  wipe_free(all, total);
  if (rc < 0)
    return rc;
  c->next_id += count;
  return 0;
}

int cs_client_recv(cs_client *c, Custos__Response **res) {
  uint8_t hdr[CS_WIRE_HDR];
  size_t body_len = 0;
  int rc;
  *res = NULL;
  c->errmsg[0] = '\0';
  if (c->broken)
    return fail(c, CS_ECONN, "connection to %s is closed", c->addr);
  if (c->next_id == c->recv_id)
    return fail(c, CS_EINVAL, "no request in flight");

  if ((rc = read_all(c, hdr, sizeof hdr)) < 0)
    return rc;
  rc = cs_wire_frame_check(hdr, sizeof hdr, CS_CLIENT_MAX_FRAME, &body_len);
  if (rc < 0) {
    c->broken = 1;
    return fail(c, CS_ETOOBIG, "response from %s too large: %s", c->addr, cs_error_message(rc));
  }
  body_len = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
  uint8_t *body = malloc(body_len ? body_len : 1);
  if (body == NULL) {
    c->broken = 1;
    return fail(c, CS_ENOMEM, "out of memory for a response of %zu bytes", body_len);
  }
  rc = read_all(c, body, body_len);
  Custos__Response *r = NULL;
  if (rc == 0 && cs_wire_decode_response(body, body_len, &r) < 0) {
    c->broken = 1;
    rc = fail(c, CS_EPROTO, "malformed response from %s", c->addr);
  }
  mbedtls_platform_zeroize(body, body_len);
  free(body);
  if (rc < 0)
    return rc;

  uint64_t want = c->recv_id + 1;
  /* A frame the server could not decode is answered with id 0. */
  if (r->id != want && !(r->id == 0 && r->error != NULL)) {
    c->broken = 1;
    rc = fail(c, CS_EPROTO, "response id %" PRIu64 " from %s does not match request %" PRIu64,
              r->id, c->addr, want);
    cs_wire_response_free(r);
    return rc;
  }
  c->recv_id = want;
  *res = r;
  return 0;
}

int cs_client_call(cs_client *c, Custos__Request *req, Custos__Response **res) {
  *res = NULL;
  if (cs_client_inflight(c) != 0)
    return fail(c, CS_EINVAL, "cs_client_call with pipelined requests in flight");
  for (int hops = 0;; hops++) {
    Custos__Response *r;
    int rc = cs_client_send(c, req);
    if (rc < 0)
      return rc;
    if ((rc = cs_client_recv(c, &r)) < 0)
      return rc;
    if (r->error == NULL || r->error->code == CUSTOS__ERROR_CODE__OK) {
      *res = r;
      return 0;
    }
    int code = cs_error_from_wire(r->error->code);
    const char *active = r->error->active_address;
    if (code == CS_ESTANDBY && active != NULL && active[0] != '\0' && hops < c->max_redirects) {
      char next[sizeof c->addr];
      snprintf(next, sizeof next, "%s", active);
      cs_wire_response_free(r);
      if ((rc = conn_open(c, next)) < 0) {
        char why[sizeof c->errmsg];
        snprintf(why, sizeof why, "%s", c->errmsg);
        return fail(c, rc, "redirected to the active node: %s", why);
      }
      continue;
    }
    const char *msg = r->error->message;
    if (code == CS_ESTANDBY && active != NULL && active[0] != '\0')
      fail(c, code, "too many redirects (last: standby pointed to %s)", active);
    else if (msg != NULL && msg[0] != '\0')
      fail(c, code, "%s", msg);
    else
      fail(c, code, "%s", cs_strerror(code));
    cs_wire_response_free(r);
    return code;
  }
}
