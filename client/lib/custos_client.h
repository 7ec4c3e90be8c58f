/*
 * custos_client: the client library of custos (libcustos).
 *
 * One cs_client is one blocking TLS 1.2 connection to a custosd node.  It
 * speaks the frame protocol of proto/wire.h: a 4-byte big-endian length and
 * a serialized custos.Request; responses come back in request order.
 *
 * Invariants:
 *  - the server certificate is always verified against opts.ca_file unless
 *    opts.insecure_skip_verify is set (the CLI never sets it);
 *  - when HOST is an IP literal, it is matched against the certificate's
 *    iPAddress subjectAltNames (mbedTLS 2.28 only knows DNS names); a name is
 *    matched against dNSName SANs / the CN by mbedTLS;
 *  - the token and every buffer that carried a request or a response frame
 *    are wiped (mbedtls_platform_zeroize) before they are freed;
 *  - every call is bounded by opts.timeout_ms (per connect, per I/O wait).
 *
 * Every function returns 0 or a negative CS_E* code (proto/cs_error.h).  The
 * message that goes with the last failure (the server's Error.message, or a
 * local one like "cannot connect to 127.0.0.1:7200: Connection refused") is
 * cs_client_errmsg().  A cs_client is not thread-safe; use one per thread.
 */
#ifndef CUSTOS_CLIENT_H
#define CUSTOS_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include "custos.pb-c.h"
#include "cs_error.h"

#define CS_CLIENT_DEFAULT_ADDR "127.0.0.1:7200"
#define CS_CLIENT_DEFAULT_TIMEOUT_MS 10000
#define CS_CLIENT_DEFAULT_MAX_REDIRECTS 3
/* Largest response frame accepted (body bytes); larger is CS_ETOOBIG. */
#define CS_CLIENT_MAX_FRAME (64u * 1024u * 1024u)

typedef struct cs_client cs_client;

typedef struct cs_client_opts {
  const char *addr;          /* "HOST:PORT", "[v6]:PORT"; NULL: CS_CLIENT_DEFAULT_ADDR */
  const char *ca_file;       /* PEM CA bundle that signs the server certificate */
  const char *cert_file;     /* optional PEM client certificate (chain) */
  const char *key_file;      /* optional PEM client key (with cert_file) */
  const char *token;         /* optional; sent with every request */
  int insecure_skip_verify;  /* 1: accept any server certificate (tests only) */
  int timeout_ms;            /* connect and I/O wait; <= 0: default */
  int max_redirects;         /* STANDBY hops followed by cs_client_call; < 0: default */
} cs_client_opts;

/* Fills `opts` with the defaults above (everything else NULL/0). */
void cs_client_opts_init(cs_client_opts *opts);

/*
 * Connects to opts->addr and completes the TLS handshake.  The options'
 * strings are copied.  Returns 0 and a client in *out (close with
 * cs_client_close), or a negative code with *out = NULL: CS_EINVAL (bad
 * address or options), CS_ECONFIG (unreadable CA/cert/key file), CS_ECONN,
 * CS_ETIMEOUT, CS_ETLS.  On failure the message is cs_error_message(rc)
 * (recorded with cs_error_set on this thread).
 */
int cs_client_connect(cs_client **out, const cs_client_opts *opts)
    __attribute__((warn_unused_result));

/* Sends close_notify, closes the socket, wipes the token, frees.  NULL is ok. */
void cs_client_close(cs_client *c);

/*
 * One request, one response.  Sets req->id (a fresh one) and, when the
 * request carries no token of its own, the client's token; both are
 * restored/left as the caller's after the frame is written.  Must not be
 * used while pipelined requests are in flight.
 *
 * Returns 0 with the successful response in *res (free with
 * cs_wire_response_free), or a negative code and *res = NULL.  A response
 * carrying an Error maps to cs_error_from_wire(code) and keeps its message.
 * A STANDBY error with an active_address makes the client reconnect there
 * and retry, at most opts.max_redirects times.  CS_EBUSY (wire code RETRY)
 * means nothing was done and the same request may be sent again; the
 * library leaves that to the caller.  After CS_ECONN, CS_ETIMEOUT,
 * CS_ETLS, CS_EPROTO or CS_ETOOBIG the connection is dead: close it.
 */
int cs_client_call(cs_client *c, Custos__Request *req, Custos__Response **res)
    __attribute__((warn_unused_result));

/*
 * Pipelining: cs_client_send writes one request (id and token set as in
 * cs_client_call) without waiting; cs_client_recv reads the next response in
 * order.  recv returns 0 with *res set whether or not the response carries
 * an Error (check res->error); a negative code only for transport or
 * protocol failures.  No redirect is followed here.
 */
int cs_client_send(cs_client *c, Custos__Request *req) __attribute__((warn_unused_result));
/* Sends count requests with one TLS write (ids in order), so that they may
 * share records and reach the server in one read; nothing is sent when one
 * of them cannot be encoded.  The write blocks until the server has read
 * it all, and a server holding more than max_queued_response_bytes of
 * unread answers stops reading: keep a batch to what its answers allow,
 * or the write waits until the client's timeout. */
int cs_client_send_many(cs_client *c, Custos__Request *const *reqs, size_t count)
    __attribute__((warn_unused_result));
int cs_client_recv(cs_client *c, Custos__Response **res) __attribute__((warn_unused_result));

/* Requests sent but not yet received. */
size_t cs_client_inflight(const cs_client *c);

/* The message of the last failure on `c` ("" when none).  Valid until the
 * next call on `c`. */
const char *cs_client_errmsg(const cs_client *c);

/* The address currently connected to (after redirects, the active node). */
const char *cs_client_addr(const cs_client *c);

#endif
