/*
 * cs_error: the one error table of custos, shared by server and client.
 *
 * Every function in custos returns int: 0 on success or a negative CS_E*
 * code from the table below.  Each code belongs to a wire class (the
 * custos.ErrorCode sent to clients, so they can act on it) and has a fixed
 * message.  Foreign codes (errno, MDB_*, MBEDTLS_ERR_*, RAFT_*) are
 * translated at the edge of the module that owns that library.
 *
 * Some failures need a detail ("no key for term 7", "authentication failed
 * for path kv/a").  cs_error_set() records one per thread; the server copies
 * it into the error response.  A detail never contains secret material.
 */
#ifndef CS_ERROR_H
#define CS_ERROR_H

#include <stdarg.h>

/* XX(name, value, wire class, message) */
#define CS_ERRNO_MAP(XX)                                                          \
  XX(NOMEM,           -1,  INTERNAL,            "out of memory")                  \
  XX(INVAL,           -2,  BAD_REQUEST,         "invalid argument")               \
  XX(SEALED,          -3,  SEALED,              "server is sealed")               \
  XX(NOTINIT,         -4,  NOT_INITIALIZED,     "server is not initialized")      \
  XX(ALREADYINIT,     -5,  ALREADY_INITIALIZED, "server is already initialized")  \
  XX(PERM,            -6,  PERMISSION_DENIED,   "permission denied")              \
  XX(NOTFOUND,        -7,  NOT_FOUND,           "not found")                      \
  XX(BADSHARE,        -8,  BAD_SHARE,           "invalid unseal key share")       \
  XX(KEYMISMATCH,     -9,  KEY_MISMATCH,        "unseal key does not match")      \
  XX(NOTERM,          -10, INTERNAL,            "no key for term")                \
  XX(AUTH,            -11, INTERNAL,            "authentication failed")          \
  XX(FEWPARTS,        -12, BAD_SHARE,           "fewer than two shares")          \
  XX(PARTLEN,         -13, BAD_SHARE,           "shares have unequal or too short lengths") \
  XX(XZERO,           -14, BAD_SHARE,           "share has x coordinate zero")    \
  XX(DUPX,            -15, BAD_SHARE,           "duplicate share (same x coordinate)") \
  XX(STOREFULL,       -16, STORAGE,             "storage is full (map size reached)") \
  XX(STORERDONLY,     -17, STORAGE,             "storage directory is read-only") \
  XX(STORECORRUPT,    -18, STORAGE,             "storage is corrupt")             \
  XX(IO,              -19, STORAGE,             "i/o error")                      \
  XX(CRYPTO,          -20, INTERNAL,            "cryptographic library failure")  \
  XX(TOOBIG,          -21, TOO_LARGE,           "request too large")              \
  XX(LIMIT,           -22, LIMIT,               "limit reached")                  \
  XX(PROTO,           -23, BAD_REQUEST,         "malformed message")              \
  XX(TLS,             -24, UNAVAILABLE,         "TLS failure")                    \
  XX(CONN,            -25, UNAVAILABLE,         "connection failed")              \
  XX(TIMEOUT,         -26, UNAVAILABLE,         "timed out")                      \
  XX(BADNONCE,        -27, BAD_NONCE,           "nonce does not match the operation in progress") \
  XX(INPROGRESS,      -28, CONFLICT,            "an operation of this kind is already in progress") \
  XX(NOOP,            -29, CONFLICT,            "no operation of this kind is in progress") \
  XX(DUPSHARE,        -30, BAD_SHARE,           "share already submitted")        \
  XX(NOTMEMBER,       -31, BAD_SHARE,           "share is not part of the current key set") \
  XX(CONFIG,          -32, BAD_REQUEST,         "configuration error")            \
  XX(INTERNAL,        -33, INTERNAL,            "internal error")                 \
  XX(STANDBY,         -34, STANDBY,             "this node is a standby")         \
  XX(UNAVAIL,         -35, UNAVAILABLE,         "service unavailable")            \
  XX(EXPIRED,         -36, PERMISSION_DENIED,   "token expired")                  \
  XX(AUDIT,           -37, INTERNAL,            "audit log write failed")         \
  XX(PEERID,          -40, PERMISSION_DENIED,   "cluster peer identity refused")  \
  XX(PEEREXISTS,      -41, CONFLICT,            "node is already a cluster member") \
  XX(BUSY,            -50, RETRY,               "busy: retry")                    \
  XX(DATADIRBUSY,     -58, STORAGE,             "storage directory is in use by another process") \
  XX(EXISTS,          -59, CONFLICT,            "already exists")                 \
  XX(STOREMISMATCH,   -60, STORAGE,             "storage does not match the raft log") \
  XX(DISKFULL,        -61, STORAGE,             "disk full")                      \
  XX(SNAPCORRUPT,     -63, BAD_REQUEST,         "snapshot is corrupt or truncated") \
  XX(SNAPVERSION,     -64, BAD_REQUEST,         "unsupported snapshot format version") \
  XX(SNAPFOREIGN,     -65, CONFLICT,            "snapshot is of another installation or key set") \
  XX(SNAPAUTH,        -66, BAD_REQUEST,         "snapshot authentication failed") \
  XX(SNAPXFER,        -67, NOT_FOUND,           "no such snapshot transfer")      \
  XX(NOSUCCESSOR,     -73, UNAVAILABLE,         "no member can take over leadership") \
  XX(AGEARMOR,       -103, BAD_REQUEST,         "malformed age armor") \
  XX(AGEHEADER,      -104, BAD_REQUEST,         "malformed age header") \
  XX(AGENOMATCH,     -105, PERMISSION_DENIED,   "no age identity matches the file") \
  XX(AGEMAC,         -106, BAD_REQUEST,         "age header MAC does not verify") \
  XX(AGEPAYLOAD,     -107, BAD_REQUEST,         "age payload is truncated or corrupt") \
  XX(AGEKEY,         -108, BAD_REQUEST,         "malformed age recipient or identity") \
  XX(AGEVERSION,     -109, BAD_REQUEST,         "unsupported age format version") \
  XX(USAGE,          -111, BAD_REQUEST,         "usage error")                    \
  XX(CLIENT,         -112, INTERNAL,            "client-side failure")            \
  XX(TERMRETIRED,     -113, INTERNAL,           "the term of this value was retired") \
  XX(TERMINUSE,       -114, CONFLICT,           "stored values are still encrypted under this term") \
  XX(TERMSTATE,       -115, CONFLICT,           "key term state change refused") \
  XX(STAGED,          -130, CONFLICT,           "a key term is staged and not yet active") \
  XX(LACKSTERM,       -131, UNAVAILABLE,        "this node lacks the active key term") \
  XX(CHANGED,         -135, RETRY,              "stored value changed since it was read") \
  XX(CASMISMATCH,     -136, BAD_REQUEST,        "check-and-set parameter did not match the current version") \
  XX(VERSIONGONE,     -137, NOT_FOUND,          "version is deleted or destroyed") \
  XX(RATELIMIT,       -119, LIMIT,              "rate limit reached: retry later") \
  XX(GRTEXPIRED,      -120, CONFLICT,           "the generate-root attempt expired") \
  XX(NOBACKUP,        -125, NOT_FOUND,          "no rekey backup is stored") \
  XX(RELAYOFF,        -126, BAD_REQUEST,        "cluster unseal relay is disabled") \
  XX(NOTCLUSTER,      -127, BAD_REQUEST,        "not in cluster mode") \

enum cs_errno {
  CS_OK = 0,
#define XX(name, val, cls, msg) CS_E##name = (val),
  CS_ERRNO_MAP(XX)
#undef XX
};

/* Fixed message of a code ("unknown error" for codes outside the table). */
const char *cs_strerror(int code);
/* Symbolic name, e.g. "CS_ESEALED". */
const char *cs_errname(int code);
/* The custos.ErrorCode (wire class) a code is sent as. */
int cs_error_wire_code(int code);
/* Inverse for clients: a wire class back to a representative CS_E* code. */
int cs_error_from_wire(int wire_code);

/*
 * Records a detail message for this thread and returns `code`, so a caller
 * can `return cs_error_set(CS_ENOTERM, "no key for term %u", t);`.
 */
int cs_error_set(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The detail recorded for this thread if it was set for `code`, else the
 * fixed message of `code`.  Valid until the next cs_error_set on this thread. */
const char *cs_error_message(int code);
/* Forget the detail (the next cs_error_message falls back to cs_strerror). */
void cs_error_clear(void);

/* The one completion callback of the project: an asynchronous operation
 * that ends with a status only (0 or a CS_E code, detail set on the loop
 * thread) calls done(arg, status) exactly once.  The commit queue, the seal's
 * writes, raft changes and barriers all take this type. */
typedef void (*cs_done_fn)(void *arg, int status);

#endif
