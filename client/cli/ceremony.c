/*
 * ceremony: `operator verify-share` and `operator generate-root` (see
 * ceremony.h).  Neither sends a token: a holder checks a share, or a
 * threshold of holders mints a root token, without one.
 *
 * Secrets handled here: shares (wiped by cli_free_secret), the OTP (made
 * here from getrandom(2), or given), and the decoded token of --decode; each
 * is wiped before its buffer is freed or goes out of scope.
 */
#define _GNU_SOURCE
#include "ceremony.h"
#include "age_keys.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <mbedtls/base64.h>
#include <mbedtls/platform_util.h>

#define OTP_LEN 46 /* as long as a token: "cs." and 43 base64url characters */
#define S(x) ((x) != NULL ? (x) : "")

/* A share from the argument or stdin (hex/base64), or from an age file
 * with --identity. */
static int get_share(cli_ctx *g, const char *arg, const char *identity, const char *prompt, uint8_t **key,
                     size_t *len) {
  if (identity != NULL)
    return cli_age_unseal_key(g, arg, identity, key, len);
  return cli_get_key(g, arg, prompt, key, len);
}

/* ------------------------------------------------------------ verify-share */

int cli_verify_share(cli_ctx *g, int argc, char **argv) {
  const char *identity = NULL;
  const cli_opt opts[] = {
    { .name = "identity", .arg = 1, .val = &identity },
    { 0 },
  };
  char *pos[1];
  size_t npos;
  int rc;
  if ((rc = cli_parse(g, argc, argv, opts, pos, 1, &npos)) != 0)
    return rc;
  uint8_t *key = NULL;
  size_t keylen = 0;
  if ((rc = get_share(g, npos ? pos[0] : NULL, identity, "Key Share (will be hidden): ", &key,
                      &keylen)) != 0)
    return rc;
  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__VerifyShareReq op = CUSTOS__VERIFY_SHARE_REQ__INIT;
  Custos__Response *res;
  op.key.data = key;
  op.key.len = keylen;
  req.op_case = CUSTOS__REQUEST__OP_VERIFY_SHARE;
  req.verify_share = &op;
  rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_VERIFY_SHARE, &res);
  cli_free_secret(key, keylen);
  if (rc != 0)
    return rc;
  int valid = res->verify_share->valid;
  cs_wire_response_free(res);
  out_bool(g, "valid", NULL, valid);
  if (!valid)
    return cli_fail(g, "this share is NOT part of the current key set");
  out_text(g, "Success! This share is part of the current key set.\n");
  return CLI_OK;
}

/* ------------------------------------------------------------ generate-root */

/* OTP_LEN characters of [0-9A-Za-z], uniform (rejection sampling). */
static int make_otp(cli_ctx *g, char out[OTP_LEN + 1]) {
  static const char alphabet[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  uint8_t r[64];
  size_t n = 0;
  while (n < OTP_LEN) {
    ssize_t got = getrandom(r, sizeof r, 0);
    if (got < 0 && errno == EINTR)
      continue;
    if (got != (ssize_t)sizeof r) {
      mbedtls_platform_zeroize(r, sizeof r);
      return cli_fail(g, "cannot get random bytes for the OTP: %s", strerror(errno));
    }
    for (size_t i = 0; i < sizeof r && n < OTP_LEN; i++)
      if (r[i] < 248)
        out[n++] = alphabet[r[i] % 62];
  }
  out[n] = '\0';
  mbedtls_platform_zeroize(r, sizeof r);
  return CLI_OK;
}

/* Writes an armored age file to a new file (mode 0600, never over an
 * existing one).  0 or CLI_FAIL (printed). */
static int write_new_file(cli_ctx *g, const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0)
    return cli_fail(g, "cannot create %s: %s", path, strerror(errno));
  size_t n = strlen(text), off = 0;
  while (off < n) {
    ssize_t w = write(fd, text + off, n - off);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      int e = errno;
      close(fd);
      return cli_fail(g, "cannot write %s: %s", path, strerror(e));
    }
    off += (size_t)w;
  }
  if (fsync(fd) != 0 || close(fd) != 0)
    return cli_fail(g, "cannot write %s: %s", path, strerror(errno));
  return CLI_OK;
}

/* Prints a GenerateRootStatusRes.  `otp`: the OTP to show (made here or by
 * the server), NULL for none; `output`: where the age-encrypted token goes. */
static int print_genroot(cli_ctx *g, const Custos__GenerateRootStatusRes *r, const char *otp,
                         const char *output) {
  char when[40] = "";
  if (r->expires)
    cli_fmt_time(r->expires, 0, when, sizeof when);
  int rc = CLI_OK;
  const char *age = S(r->encoded_token_age);
  int has_nonce = r->nonce && r->nonce[0], has_enc = r->encoded_token && r->encoded_token[0];
  if (r->complete && age[0] != '\0' && output != NULL)
    rc = write_new_file(g, output, age);
  /* JSON: every field; the text shows a different set when complete. */
  if (r->complete) {
    out_str(g, has_nonce ? "nonce" : NULL, "Nonce", S(r->nonce));
    out_bool(g, "started", NULL, r->started);
    out_u64(g, "progress", NULL, r->progress);
    out_u64(g, "required", NULL, r->required);
    out_bool(g, "complete", "Complete", 1);
  } else {
    out_str(g, has_nonce ? "nonce" : NULL, has_nonce ? "Nonce" : NULL, S(r->nonce));
    out_bool(g, "started", "Started", r->started);
    out_u64(g, "progress", NULL, r->progress);
    out_u64(g, "required", NULL, r->required);
    if (r->started) {
      out_row_fmt(g, "Progress", "%u/%u", r->progress, r->required);
      out_row_fmt(g, "Required", "%u", r->required);
    }
    out_bool(g, "complete", NULL, r->complete);
  }
  out_u64(g, "otp_length", NULL, r->otp_length);
  if (!r->complete && r->started && r->otp_length)
    out_row_fmt(g, "OTP Length", "%u", r->otp_length);
  out_str(g, "recipient", NULL, S(r->recipient));
  if (!r->complete && r->started && r->recipient && r->recipient[0])
    out_row_fmt(g, "Recipient", "%s", r->recipient);
  if (r->started)
    out_str(g, "expires", NULL, when);
  if (!r->complete && r->started)
    out_row_fmt(g, "Expires", "%s (unless a share comes first)", when);
  if (otp != NULL)
    out_str(g, "otp", r->complete ? NULL : "OTP", otp);
  if (has_enc)
    out_str(g, "encoded_token", r->complete ? "Encoded Token" : NULL, r->encoded_token);
  if (age[0] != '\0' && output == NULL)
    out_str(g, "encoded_token_age", NULL, age);
  if (age[0] != '\0' && output != NULL && rc == CLI_OK)
    out_str(g, "encoded_token_file", NULL, output);
  if (r->complete) {
    if (has_enc)
      out_text(g, "\nThe new root token is encoded with the OTP given at --init. Decode it with\n"
                  "  custos operator generate-root --decode %s --otp OTP\n", r->encoded_token);
    if (age[0] != '\0' && output != NULL && rc == CLI_OK)
      out_text(g, "\nThe new root token, encrypted to %s, is in %s.\n"
                  "Decrypt it with: age -d -i KEY_FILE %s\n", S(r->recipient), output, output);
    else if (age[0] != '\0')
      out_text(g, "\nRoot Token (age, for %s):\n%s", S(r->recipient), age);
    return rc;
  }
  if (otp != NULL)
    out_text(g, "\nKeep the OTP: the last key holder's response carries the new root token\n"
                "encoded with it, and only the OTP decodes it.\n");
  if (has_nonce && r->progress == 0)
    out_text(g, "\nGive each key holder the nonce; each runs\n"
                "  custos operator generate-root --nonce %s\n"
                "and enters a key share. The status does not show the nonce.\n", r->nonce);
  return rc;
}

/* base64url (with or without padding) to bytes; -1 when malformed. */
static int b64url_decode(const char *s, uint8_t *out, size_t cap, size_t *len) {
  size_t n = strlen(s);
  if (n == 0 || n > 4 * cap)
    return -1;
  char *t = malloc(n + 4);
  if (t == NULL)
    return -1;
  size_t j = 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '+' || c == '/')
      goto bad; /* base64url only */
    t[j++] = c == '-' ? '+' : c == '_' ? '/' : c;
  }
  while (j % 4 != 0)
    t[j++] = '=';
  t[j] = '\0';
  int rc = mbedtls_base64_decode(out, cap, len, (const unsigned char *)t, j);
  mbedtls_platform_zeroize(t, n + 4);
  free(t);
  return rc == 0 ? 0 : -1;
bad:
  mbedtls_platform_zeroize(t, n + 4);
  free(t);
  return -1;
}

static int is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

/* --decode: token = base64url-decode(ENCODED) XOR OTP. */
static int decode_token(cli_ctx *g, const char *encoded, const char *otp) {
  uint8_t raw[64];
  char token[OTP_LEN + 1];
  size_t n = 0;
  int rc = CLI_OK;
  if (strlen(otp) != OTP_LEN)
    return cli_fail(g, "the OTP must be %d characters, got %zu", OTP_LEN, strlen(otp));
  if (b64url_decode(encoded, raw, sizeof raw, &n) != 0 || n != OTP_LEN) {
    mbedtls_platform_zeroize(raw, sizeof raw);
    return cli_fail(g, "the encoded token is not %d bytes of base64url", OTP_LEN);
  }
  for (size_t i = 0; i < OTP_LEN; i++)
    token[i] = (char)(raw[i] ^ (uint8_t)otp[i]);
  token[OTP_LEN] = '\0';
  int ok = memcmp(token, "cs.", 3) == 0;
  for (size_t i = 3; i < OTP_LEN && ok; i++)
    ok = is_b64url(token[i]);
  if (!ok) {
    rc = cli_fail(g, "the encoded token does not decode to a token with this OTP (wrong OTP?)");
  } else {
    out_str(g, "token", NULL, token);
    out_text(g, "Root Token: %s\n", token);
  }
  mbedtls_platform_zeroize(raw, sizeof raw);
  mbedtls_platform_zeroize(token, sizeof token);
  return rc;
}

int cli_generate_root(cli_ctx *g, int argc, char **argv) {
  int init = 0, status = 0, cancel = 0, server_otp = 0, gen_otp = 0, rc;
  const char *nonce = NULL, *otp = NULL, *recipient = NULL, *decode = NULL, *identity = NULL;
  const char *output = NULL;
  /* `--otp` alone (at the end, or before another option) means "make one
   * here"; `--otp VALUE` / `--otp=VALUE` gives it. */
  char **av = calloc((size_t)argc + 1, sizeof *av);
  if (av == NULL)
    return cli_fail(g, "out of memory");
  static char gen_flag[] = "--generate-otp";
  for (int i = 0; i < argc; i++)
    av[i] = strcmp(argv[i], "--otp") == 0 && (i + 1 == argc || strncmp(argv[i + 1], "--", 2) == 0)
                ? gen_flag
                : argv[i];
  const cli_opt opts[] = {
    { .name = "init", .arg = 0, .flag = &init },
    { .name = "status", .arg = 0, .flag = &status },
    { .name = "cancel", .arg = 0, .flag = &cancel },
    { .name = "nonce", .arg = 1, .val = &nonce },
    { .name = "otp", .arg = 1, .val = &otp },
    { .name = "generate-otp", .arg = 0, .flag = &gen_otp },
    { .name = "server-otp", .arg = 0, .flag = &server_otp },
    { .name = "recipient", .arg = 1, .val = &recipient },
    { .name = "decode", .arg = 1, .val = &decode },
    { .name = "identity", .arg = 1, .val = &identity },
    { .name = "output", .arg = 1, .val = &output },
    { 0 },
  };
  char *pos[1];
  size_t npos = 0;
  rc = cli_parse(g, argc, av, opts, pos, 1, &npos);
  free(av);
  if (rc != 0)
    return rc;
  int modes = init + status + cancel + (decode != NULL) + (nonce != NULL && !cancel);
  if (modes != 1)
    return cli_usage(g, "use one of --init, --status, --cancel --nonce N, --nonce N, "
                           "--decode ENCODED");
  if (!init && (gen_otp || server_otp || recipient != NULL))
    return cli_usage(g, "--otp (alone), --server-otp and --recipient go with --init");
  if (decode == NULL && !init && otp != NULL)
    return cli_usage(g, "--otp OTP goes with --init or --decode");
  if ((init || status || cancel || decode != NULL) && npos > 0)
    return cli_usage(g, "unexpected argument \"%.64s\"", pos[0]);
  if (identity != NULL && (init || status || cancel || decode != NULL))
    return cli_usage(g, "--identity goes with --nonce N and an age FILE");
  if (output != NULL && !(nonce != NULL && !cancel))
    return cli_usage(g, "--output goes with --nonce N (the completing share)");
  if (cancel && nonce == NULL)
    return cli_usage(g, "--cancel needs --nonce N (the attempt's nonce)");

  if (decode != NULL) {
    if (otp == NULL)
      return cli_usage(g, "--decode needs --otp OTP");
    return decode_token(g, decode, otp);
  }

  Custos__Request req = CUSTOS__REQUEST__INIT;
  Custos__GenerateRootInitReq o_init = CUSTOS__GENERATE_ROOT_INIT_REQ__INIT;
  Custos__GenerateRootUpdateReq o_upd = CUSTOS__GENERATE_ROOT_UPDATE_REQ__INIT;
  Custos__GenerateRootStatusReq o_st = CUSTOS__GENERATE_ROOT_STATUS_REQ__INIT;
  Custos__GenerateRootCancelReq o_cancel = CUSTOS__GENERATE_ROOT_CANCEL_REQ__INIT;
  Custos__Response *res;
  char made[OTP_LEN + 1] = "";
  uint8_t *key = NULL;
  size_t keylen = 0;
  const char *show_otp = NULL;

  if (init) {
    int n = gen_otp + server_otp + (otp != NULL) + (recipient != NULL);
    if (n != 1)
      return cli_usage(g, "--init needs one of --otp, --otp OTP, --server-otp, "
                             "--recipient age1...");
    if (recipient != NULL && (rc = cli_age_check_recipient(g, "--recipient", recipient)) != 0)
      return rc;
    if (otp != NULL && strlen(otp) != OTP_LEN)
      return cli_usage(g, "the OTP must be %d characters, got %zu", OTP_LEN, strlen(otp));
    if (gen_otp && (rc = make_otp(g, made)) != 0)
      return rc;
    o_init.otp = (char *)(gen_otp ? made : otp != NULL ? otp : "");
    o_init.generate_otp = server_otp;
    o_init.recipient = (char *)(recipient != NULL ? recipient : "");
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_INIT;
    req.generate_root_init = &o_init;
    if (gen_otp)
      show_otp = made;
  } else if (status) {
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_STATUS;
    req.generate_root_status = &o_st;
  } else if (cancel) {
    o_cancel.nonce = (char *)nonce;
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_CANCEL;
    req.generate_root_cancel = &o_cancel;
    rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_EMPTY, &res);
    if (rc != 0)
      return rc;
    cs_wire_response_free(res);
    out_bool(g, "cancelled", NULL, 1);
    out_text(g, "Success! The generate-root attempt was cancelled.\n");
    return CLI_OK;
  } else {
    if ((rc = get_share(g, npos ? pos[0] : NULL, identity, "Unseal Key (will be hidden): ", &key,
                        &keylen)) != 0)
      return rc;
    o_upd.nonce = (char *)nonce;
    o_upd.key.data = key;
    o_upd.key.len = keylen;
    req.op_case = CUSTOS__REQUEST__OP_GENERATE_ROOT_UPDATE;
    req.generate_root_update = &o_upd;
  }
  rc = cli_call(g, &req, CUSTOS__RESPONSE__RESULT_GENERATE_ROOT, &res);
  cli_free_secret(key, keylen);
  if (rc != 0) {
    mbedtls_platform_zeroize(made, sizeof made);
    return rc;
  }
  const Custos__GenerateRootStatusRes *r = res->generate_root;
  if (init && server_otp)
    show_otp = r->otp;
  rc = print_genroot(g, r, show_otp, output);
  cs_wire_response_free(res);
  mbedtls_platform_zeroize(made, sizeof made);
  return rc;
}
