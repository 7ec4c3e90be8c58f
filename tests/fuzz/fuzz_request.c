/*
 * fuzz_request: libFuzzer target for the server's request parser: the
 * bytes a client sends after the TLS layer.  Frames are cut with
 * cs_wire_frame_check under both limits the server uses, each body is
 * decoded with cs_wire_decode_request and freed with cs_wire_request_free,
 * exactly as conn.c does.  Must never crash, leak or read out of bounds.
 */
#include <stddef.h>
#include <stdint.h>

#include "cs_error.h"
#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The first byte picks the limit: pre-authentication or the default. */
  size_t max = (size > 0 && (data[0] & 1)) ? CS_WIRE_MAX_DEFAULT : CS_WIRE_MAX_PREAUTH;
  size_t off = 0;
  while (off < size) {
    size_t body = 0;
    int rc = cs_wire_frame_check(data + off, size - off, max, &body);
    if (rc <= 0) {
      (void)cs_error_message(rc);
      break; /* needs more bytes, or too big: the server stops here */
    }
    Custos__Request *req = NULL;
    rc = cs_wire_decode_request(data + off + CS_WIRE_HDR, body, &req);
    if (rc == 0)
      cs_wire_request_free(req);
    else
      (void)cs_error_message(rc);
    off += CS_WIRE_HDR + body;
  }
  /* Also the whole input as one body, as if framing had already happened. */
  Custos__Request *req = NULL;
  if (cs_wire_decode_request(data, size, &req) == 0)
    cs_wire_request_free(req);
  return 0;
}
