/* cs_error: the table behind cs_error.h, and the per-thread detail. */
#include "cs_error.h"
#include "custos.pb-c.h"

#include <stdio.h>
#include <string.h>

/* Room for two paths and a sentence on what to do (start-up refusals). */
#define CS_ERR_DETAIL_MAX 1024

static __thread int detail_code;
static __thread char detail[CS_ERR_DETAIL_MAX];

const char *cs_strerror(int code) {
  switch (code) {
  case CS_OK: return "success";
#define XX(name, val, cls, msg) case CS_E##name: return msg;
  CS_ERRNO_MAP(XX)
#undef XX
  }
  return "unknown error";
}

const char *cs_errname(int code) {
  switch (code) {
  case CS_OK: return "CS_OK";
#define XX(name, val, cls, msg) case CS_E##name: return "CS_E" #name;
  CS_ERRNO_MAP(XX)
#undef XX
  }
  return "CS_E?";
}

int cs_error_wire_code(int code) {
  switch (code) {
  case CS_OK: return CUSTOS__ERROR_CODE__OK;
#define XX(name, val, cls, msg) case CS_E##name: return CUSTOS__ERROR_CODE__##cls;
  CS_ERRNO_MAP(XX)
#undef XX
  }
  return CUSTOS__ERROR_CODE__INTERNAL;
}

int cs_error_from_wire(int wire_code) {
  switch (wire_code) {
  case CUSTOS__ERROR_CODE__OK: return CS_OK;
  case CUSTOS__ERROR_CODE__BAD_REQUEST: return CS_EINVAL;
  case CUSTOS__ERROR_CODE__SEALED: return CS_ESEALED;
  case CUSTOS__ERROR_CODE__NOT_INITIALIZED: return CS_ENOTINIT;
  case CUSTOS__ERROR_CODE__ALREADY_INITIALIZED: return CS_EALREADYINIT;
  case CUSTOS__ERROR_CODE__PERMISSION_DENIED: return CS_EPERM;
  case CUSTOS__ERROR_CODE__NOT_FOUND: return CS_ENOTFOUND;
  case CUSTOS__ERROR_CODE__BAD_SHARE: return CS_EBADSHARE;
  case CUSTOS__ERROR_CODE__KEY_MISMATCH: return CS_EKEYMISMATCH;
  case CUSTOS__ERROR_CODE__STORAGE: return CS_EIO;
  case CUSTOS__ERROR_CODE__TOO_LARGE: return CS_ETOOBIG;
  case CUSTOS__ERROR_CODE__LIMIT: return CS_ELIMIT;
  case CUSTOS__ERROR_CODE__BAD_NONCE: return CS_EBADNONCE;
  case CUSTOS__ERROR_CODE__CONFLICT: return CS_EINPROGRESS;
  case CUSTOS__ERROR_CODE__STANDBY: return CS_ESTANDBY;
  case CUSTOS__ERROR_CODE__UNAVAILABLE: return CS_EUNAVAIL;
  case CUSTOS__ERROR_CODE__RETRY: return CS_EBUSY;
  default: return CS_EINTERNAL;
  }
}

/* A detail cut by the buffer may end inside a UTF-8 sequence (a long field
 * name): drop that partial sequence, so Error.message stays valid UTF-8 as
 * proto3 requires of a string (strict decoders reject the whole response). */
static void trim_partial_utf8(char *s) {
  size_t n = strlen(s), k = n;
  while (k > 0 && ((unsigned char)s[k - 1] & 0xc0) == 0x80)
    k--;
  if (k == 0)
    return;
  unsigned char lead = (unsigned char)s[k - 1];
  size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  if (n - (k - 1) < want)
    s[k - 1] = '\0';
}

int cs_error_set(int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(detail, sizeof detail, fmt, ap);
  va_end(ap);
  if (n >= (int)sizeof detail)
    trim_partial_utf8(detail);
  detail_code = code;
  return code;
}

const char *cs_error_message(int code) {
  if (code != 0 && code == detail_code && detail[0] != '\0')
    return detail;
  return cs_strerror(code);
}

void cs_error_clear(void) {
  detail_code = 0;
  detail[0] = '\0';
}
