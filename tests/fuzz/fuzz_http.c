/*
 * fuzz_http: libFuzzer target for the HTTP API's request path: the bytes a
 * client sends after the TLS handshake, cut into pieces (as TLS records
 * arrive), parsed by cs_http_next (http_parser + limits), routed to a
 * decoded Custos__Request (JSON bodies through jansson, packed and decoded
 * like a frame) and the answer rendered by cs_http_render for a few kinds
 * of response, exactly the calls conn.c makes.  Must never crash, leak or
 * read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "cs_error.h"
#include "http.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int granted(void *ctx) { return *(const int *)ctx; }

/* A response of a kind picked by `pick`, for the renderer. */
static void answer(cs_http_req *ctx, uint8_t pick) {
  Custos__Response res = CUSTOS__RESPONSE__INIT;
  Custos__Error err = CUSTOS__ERROR__INIT;
  Custos__StatusRes st = CUSTOS__STATUS_RES__INIT;
  switch (pick % 4) {
  case 0:
    err.code = (Custos__ErrorCode)(pick / 4 % 18);
    err.message = "x";
    err.active_address = (pick & 0x40) ? "127.0.0.1:1" : "";
    res.error = &err;
    break;
  case 1:
    st.initialized = pick & 0x10;
    st.sealed = pick & 0x20;
    st.ha_mode = (pick & 0x40) ? "standby" : "standalone";
    st.version = "0";
    st.nonce = "";
    st.active_address = "";
    res.result_case = CUSTOS__RESPONSE__RESULT_STATUS;
    res.status = &st;
    break;
  default:
    break; /* no result at all: each view must cope */
  }
  size_t len = 0;
  int close = 0;
  free(cs_http_render(ctx, &res, &len, &close));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  /* Byte 0: the piece size and whether the large-body grant holds. */
  size_t piece = 1 + (data[0] & 0x3f) * 64;
  int grant = data[0] >> 7;
  uint8_t pick = data[1];
  data += 2;
  size = size - 2;
  cs_http_limits lim = {1024, 8192, granted, &grant};
  cs_http *h = cs_http_new();
  if (h == NULL)
    return 0;
  size_t fed = 0, off = 0;
  while (off < size) {
    fed = fed + piece < size ? fed + piece : size;
    cs_http_event ev;
    int rc = cs_http_next(h, data, fed, &off, &lim, &ev);
    if (ev.kind == CS_HTTP_DISPATCH) {
      cs_wire_request_free(ev.req);
      answer(ev.ctx, pick++);
    }
    free(ev.out);
    if (rc < 0)
      break;
    if (ev.kind == CS_HTTP_NONE && fed == size)
      break;
  }
  uint64_t since;
  (void)cs_http_in_message(h, &since);
  cs_http_free(h);
  return 0;
}
