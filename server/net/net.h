/*
 * net: custosd's listener, TLS over libuv streams, and framed connections.
 *
 * A request's way in: socket -> tls (mbedTLS driven by the loop) -> conn
 * (one frame, limits) -> wire (decode, validate) -> cs_dispatch().  The net
 * layer knows nothing about keys; dispatch knows nothing about sockets.
 *
 * Pipelining: a connection may carry many requests in flight.  Each decoded
 * request gets a cs_reply handle; responses are written in request order
 * whatever order the handlers finish in (a write waits for its group
 * commit, a read answers at once).  Requests of one connection take effect
 * in order: a request is handed to dispatch only once every request before
 * it has been answered, except that a request the dispatcher calls
 * independent (cs_independent_fn: it reads nothing an earlier independent
 * request writes) may follow earlier independent ones that are still being
 * committed.  So a read behind a write on the same connection sees it.
 */
#ifndef CS_NET_H
#define CS_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "custos.pb-c.h"

typedef struct cs_reply cs_reply;
typedef struct cs_listener cs_listener;

typedef struct cs_listener_opts {
  const char *address;          /* "127.0.0.1:7200" */
  const char *cert_file;        /* PEM server certificate (chain) */
  const char *key_file;         /* PEM private key */
  const char *client_ca_file;   /* optional: require client certificates */
  size_t max_frame_preauth;     /* 0: CS_WIRE_MAX_PREAUTH */
  size_t max_frame;             /* 0: CS_WIRE_MAX_DEFAULT */
  unsigned handshake_timeout_ms;/* 0: 10000 */
  unsigned idle_timeout_ms;     /* 0: 300000 */
  unsigned max_connections;     /* 0: CS_LISTENER_MAX_CONNECTIONS */
  unsigned max_per_address;     /* 0: cs_listener_default_per_address() */
  unsigned max_inflight;        /* per connection; 0: 1024 */
  size_t max_queued_bytes;      /* per connection: response bytes not yet sent;
                                   0: CS_LISTENER_MAX_QUEUED_BYTES */
  unsigned max_handshakes;      /* connections in their TLS handshake; 0: default below */
  unsigned max_handshakes_per_address; /* 0: default below */
} cs_listener_opts;

#define CS_LISTENER_MAX_CONNECTIONS 16384u
#define CS_LISTENER_MAX_QUEUED_BYTES ((size_t)1 << 20)
/* Defaults derived from the caps above them (each at least 1): a
 * sixteenth of max_connections per address and in the handshake, an eighth
 * of the handshakes per address. */
unsigned cs_listener_default_per_address(unsigned max_connections);
unsigned cs_listener_default_handshakes(unsigned max_connections);
unsigned cs_listener_default_handshakes_per_address(unsigned max_handshakes);

/* What dispatch learns about the client. */
typedef struct cs_client_info {
  char address[64];             /* "127.0.0.1:53422" */
  int has_client_cert;
} cs_client_info;

/*
 * Implemented by the daemon (server/api/api.c).  Takes ownership of `req`
 * (free with cs_wire_request_free) and must call cs_reply_send() exactly
 * once for `reply`, now or later on the loop thread.
 */
typedef void (*cs_dispatch_fn)(void *ctx, const cs_client_info *client, Custos__Request *req,
                               cs_reply *reply);

/*
 * Also implemented by the daemon: 1 when `req` may be dispatched while
 * earlier requests of the same connection for which it also returned 1 are
 * still unanswered (their effects are ordered by the commit queue and it
 * reads nothing they write), 0 when it must wait for every earlier request.
 */
typedef int (*cs_independent_fn)(const Custos__Request *req);

/*
 * Starts listening on `loop`.  Returns 0, or a CS_E* code with a detail
 * (bad address, unreadable certificate or key, bind failure).
 */
int cs_listener_start(cs_listener **out, uv_loop_t *loop, const cs_listener_opts *opts,
                      cs_dispatch_fn dispatch, cs_independent_fn independent, void *ctx)
    __attribute__((warn_unused_result));
/* Stops accepting; open connections finish their in-flight requests and
 * close.  `done` runs on the loop when the last connection is gone. */
void cs_listener_stop(cs_listener *l, void (*done)(void *arg), void *arg);
/* Number of open connections (the metrics endpoint). */
unsigned cs_listener_connections(const cs_listener *l);
/*
 * Reloads the certificate chain, key and client CA from these files (the
 * configured paths): new connections get the new ones, open connections
 * keep theirs.  On any error (unreadable, garbage, key not matching the
 * certificate) nothing changes and the old ones are still served: returns
 * CS_ETLS / CS_ENOMEM with a detail.
 */
int cs_listener_reload_tls(cs_listener *l, const char *cert_file, const char *key_file,
                           const char *client_ca_file) __attribute__((warn_unused_result));

/*
 * Sends the response for `reply` (its id is set from the request) and
 * releases the handle.  `authenticated` = the request carried a token the
 * server accepted (it no longer raises the frame limit by itself: see
 * cs_reply_grant_frames).  Safe when the connection has gone away meanwhile
 * (the response is dropped).
 */
void cs_reply_send(cs_reply *reply, Custos__Response *res, int authenticated);

/* 1 when `reply` answers an HTTP request (rendered by server/http, not
 * bound by the frame limit), 0 for a protobuf one or NULL. */
int cs_reply_is_http(const cs_reply *reply);

/*
 * Two-step sending, for grouped audit writes (server/api/api.c): hold packs
 * the response at once (res may be freed when it returns) but keeps it, and
 * every later reply of its connection, back until cs_reply_release.
 * Release with rc 0 lets it go; with rc < 0 it is replaced by an error
 * response with code rc (its audit record could not be written), so none
 * of it leaves.  Both are safe when the connection has gone away; release
 * must be called exactly once after hold.
 */
void cs_reply_hold(cs_reply *reply, Custos__Response *res, int authenticated);
void cs_reply_release(cs_reply *reply, int rc);
/* cs_reply_release of each, and then each connection's answers written
 * once, together (a connection with many answers in the list gets a few
 * records and writes, not one each). */
void cs_reply_release_many(cs_reply *const *list, size_t n, int rc);

/*
 * The larger frame limit (max_frame) for the connection of `reply`.  Given
 * the SHA-256 of the token a request was authorized with and check(ctx,
 * hash), the connection accepts a frame above max_frame_preauth only if
 * check says, at that moment, that the token is still valid and may write
 * (so an expired or revoked token loses the limit at once); otherwise the
 * frame gets TOO_LARGE.  A NULL check withdraws the grant.  The latest
 * grant of a connection wins.  Call before cs_reply_send; a no-op when the
 * connection is gone.
 */
typedef int (*cs_frame_grant_fn)(void *ctx, const uint8_t token_hash[32]);
void cs_reply_grant_frames(cs_reply *reply, const uint8_t token_hash[32], cs_frame_grant_fn check,
                           void *ctx);

#endif
