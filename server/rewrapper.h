/*
 * rewrapper: what custosd does with the key lifecycle beyond rotation: the
 * background driver of a rewrap (the steps are server/core/rewrap.h), the
 * retirement of a term, and key-status with the exact value counts.
 *
 * The driver runs on the active node only (standalone: always), on the
 * event loop, one step at a time: a step reads the persisted cursor
 * (core/rewrap), re-encrypts up to 64 (256) values stored under an older term
 * into ONE batch that also carries the advanced cursor, and hands it to
 * the commit queue (standalone: one LMDB transaction; cluster: one raft
 * entry, so every member applies it and a new leader finds the cursor
 * where the last step left it).  The next step starts only once that batch
 * is committed, and reads the cursor again from the store, so a restart, a
 * failover or a snapshot restore simply continue from what storage says.
 * Each re-encryption is a put conditional on the value read (digest): a
 * newer write or a delete of the same key, committed before the step, wins.
 *
 * Rate: a token bucket of `rate` values per second (default
 * CS_REWRAP_DEFAULT_RATE, at most CS_REWRAP_MAX_RATE), in steps of
 * rate/20 values (1..64; up to 256 above 20,000 values/s), so a slow rate
 * makes small, spread-out batches and foreground requests keep their
 * latency.
 *
 * When a pass ends with values still selected (stored under an older term
 * meanwhile, say a snapshot restored behind the cursor), the driver starts
 * another pass, at most CS_REWRAP_SWEEPS times in a row; values it cannot
 * open (a retired or unknown term, a failed tag) are skipped, counted and
 * logged, and keep their term in use, so it can never be retired under them.
 *
 * Loop thread only; one daemon per process.
 */
#ifndef CS_REWRAPPER_H
#define CS_REWRAPPER_H

#include <stdint.h>
#include "custos.pb-c.h"

struct cs_api_env;

#define CS_REWRAP_DEFAULT_RATE 5000u
#define CS_REWRAP_MAX_RATE 1000000u
#define CS_REWRAP_SWEEPS 3

/* The answer to a lifecycle request: status < 0 (detail set on the loop
 * thread) or the response to send (valid during the call). */
typedef void (*cs_rewrapper_reply_fn)(void *arg, int status, Custos__Response *res);

/* Starts the driver's timer; a pass left unfinished (restart, failover)
 * continues once this node is the unsealed active.  0 or an error. */
int cs_rewrapper_start(struct cs_api_env *d) __attribute__((warn_unused_result));
/* Stops the timer (a step in flight still commits). */
void cs_rewrapper_stop(struct cs_api_env *d);

/*
 * RewrapReq: starts a pass (below_term 0: every term older than the active
 * one), answered with the status once its first cursor is committed; a
 * pass with the same below_term already running is joined instead (its
 * rate changed when q->rate is not 0).  CS_EINVAL for a rate above
 * CS_REWRAP_MAX_RATE.
 */
void cs_rewrapper_begin(struct cs_api_env *d, const Custos__RewrapReq *q,
                        cs_rewrapper_reply_fn fn, void *arg);
/* RewrapStatusReq: done/total, exact remaining, measured speed, ETA. */
void cs_rewrapper_status(struct cs_api_env *d, cs_rewrapper_reply_fn fn, void *arg);
/* RetireTermReq: cs_seal_retire.  0: fn answers once committed; <0: the
 * refusal (fn is not called), e.g. CS_EBUSY while a key change runs. */
int cs_rewrapper_retire(struct cs_api_env *d, const Custos__RetireTermReq *q,
                        cs_rewrapper_reply_fn fn, void *arg) __attribute__((warn_unused_result));
/* KeyStatusReq: every term with its state, times, encryptions and exact
 * value count; with q->verify also a full scan (one read transaction). */
void cs_rewrapper_key_status(struct cs_api_env *d, const Custos__KeyStatusReq *q,
                             cs_rewrapper_reply_fn fn, void *arg);

#endif
