/* age_keys: age-encrypted shares on the CLI side (see age_keys.h). */
#include "age_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "age.h"
#include "cli.h"
#include "cs_error.h"
#include "fdio.h"

#define MAX_RECIPIENTS 255 /* one per share */

void cli_age_recipients_free(char **v, size_t n) {
  for (size_t i = 0; v != NULL && i < n; i++)
    free(v[i]);
  free(v);
}

int cli_age_check_recipient(cli_ctx *g, const char *flag, const char *s) {
  cs_age_recipient r;
  if (cs_age_recipient_parse(&r, s, strlen(s)) != 0)
    return cli_usage(g, "%s '%.100s' is not an age recipient (age1...)", flag, s);
  return 0;
}

static int push(cli_ctx *g, char **v, size_t *n, const cs_age_recipient *r) {
  char s[CS_AGE_RECIPIENT_STRLEN + 1];
  cs_age_recipient_format(r, s);
  if ((v[*n] = strdup(s)) == NULL)
    return cli_fail(g, "out of memory");
  (*n)++;
  return 0;
}

int cli_age_recipients(cli_ctx *g, const char *const *list, size_t nlist, const char *file,
                       char ***out, size_t *n) {
  static cs_age_recipient rs[MAX_RECIPIENTS];
  char **v = calloc(MAX_RECIPIENTS, sizeof *v);
  size_t got = 0, nfile = 0;
  int rc = 0;
  if (v == NULL)
    return cli_fail(g, "out of memory");
  for (size_t i = 0; rc == 0 && i < nlist; i++) {
    if ((rc = cli_age_check_recipient(g, "--recipient", list[i])) == 0 &&
        cs_age_recipient_parse(&rs[0], list[i], strlen(list[i])) == 0)
      rc = push(g, v, &got, &rs[0]);
  }
  if (rc == 0 && file != NULL) {
    uint8_t *text;
    size_t len;
    if ((rc = cli_read_file(g, file, &text, &len)) != 0)
      goto out;
    int arc = cs_age_recipients_parse_text(rs, MAX_RECIPIENTS - got, &nfile, (char *)text, len);
    free(text);
    if (arc != 0) {
      rc = cli_usage(g, "--recipients-file %s: %s", file, cs_error_message(arc));
      goto out;
    }
    for (size_t i = 0; rc == 0 && i < nfile; i++)
      rc = push(g, v, &got, &rs[i]);
  }
out:
  if (rc != 0) {
    cli_age_recipients_free(v, got);
    return rc;
  }
  *out = v;
  *n = got;
  return 0;
}

void cli_age_print_keys(cli_ctx *g, const Custos__InitRes *r, char *const *recipients,
                        const char *root_recipient) {
  if (r->n_keys_age > 0) {
    out_list_begin(g, "unseal_keys_age", NULL);
    for (size_t i = 0; i < r->n_keys_age; i++) {
      out_item(g, r->keys_age[i]);
      out_text(g, "Unseal Key %zu (age, for %s):\n%s\n", i + 1, recipients ? recipients[i] : "?",
               r->keys_age[i]);
    }
    out_list_end(g);
  }
  if (r->root_token_age != NULL && r->root_token_age[0] != '\0') {
    out_str(g, "root_token_age", NULL, r->root_token_age);
    out_text(g, "Initial Root Token (age, for %s):\n%s", root_recipient ? root_recipient : "?",
             r->root_token_age);
  }
}

/* Writes text to a new file dir/name; 0 or CLI_FAIL (printed). */
static int write_new(cli_ctx *g, const char *dir, const char *name, const char *text, char *path, size_t cap) {
  snprintf(path, cap, "%s/%s", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0)
    return cli_fail(g, "cannot create %s: %s", path, strerror(errno));
  int err = cs_write_all(fd, text, strlen(text), NULL);
  if (close(fd) != 0 && err == 0)
    err = errno;
  if (err != 0)
    return cli_fail(g, "cannot write %s: %s", path, strerror(err));
  return 0;
}

int cli_age_write_keys(cli_ctx *g, const char *dir, const Custos__InitRes *r,
                       char *const *recipients, const char *root_recipient) {
  char name[64], path[4096];
  int rc = 0;
  out_list_begin(g, "unseal_keys_age_files", NULL);
  for (size_t i = 0; rc == 0 && i < r->n_keys_age; i++) {
    snprintf(name, sizeof name, "unseal-key-%zu.age", i + 1);
    if ((rc = write_new(g, dir, name, r->keys_age[i], path, sizeof path)) != 0)
      break;
    out_item(g, path);
    out_text(g, "Unseal Key %zu (age, for %s): %s\n", i + 1, recipients ? recipients[i] : "?", path);
  }
  out_list_end(g);
  if (rc == 0 && r->root_token_age != NULL && r->root_token_age[0] != '\0' &&
      (rc = write_new(g, dir, "root-token.age", r->root_token_age, path, sizeof path)) == 0) {
    out_str(g, "root_token_age_file", NULL, path);
    out_text(g, "Initial Root Token (age, for %s): %s\n", root_recipient ? root_recipient : "?", path);
  }
  /* The server has been initialized: these files are the only copy, so a
   * failed write prints them all rather than lose one. */
  if (rc != 0)
    cli_age_print_keys(g, r, recipients, root_recipient);
  return rc;
}

int cli_age_check_output_dir(cli_ctx *g, const char *dir, size_t n, int root) {
  struct stat st;
  char path[4096];
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) != 0)
    return cli_usage(g, "--output-dir %s is not a writable directory", dir);
  for (size_t i = 0; i <= n; i++) {
    if (i == n && !root)
      break;
    if (i < n)
      snprintf(path, sizeof path, "%s/unseal-key-%zu.age", dir, i + 1);
    else
      snprintf(path, sizeof path, "%s/root-token.age", dir);
    if (lstat(path, &st) == 0)
      return cli_usage(g, "%s exists (nothing is overwritten)", path);
  }
  return 0;
}

/* The identities of an identity file; 0 or CLI_FAIL (printed). */
static int load_identities(cli_ctx *g, const char *file, cs_age_identity *ids, size_t cap, size_t *nid) {
  uint8_t *text;
  size_t len;
  int rc = cli_read_file(g, file, &text, &len);
  if (rc != 0)
    return rc;
  int arc = cs_age_identity_parse_text(ids, cap, nid, (char *)text, len);
  cli_free_secret(text, len);
  if (arc != 0)
    return cli_fail(g, "--identity %s: %s", file, cs_error_message(arc));
  return 0;
}

int cli_age_unseal_key(cli_ctx *g, const char *path, const char *identity_file, uint8_t **key, size_t *len) {
  static cs_age_identity ids[CS_AGE_MAX_KEYS];
  const int from_stdin = path == NULL || strcmp(path, "-") == 0;
  const char *name = from_stdin ? "stdin" : path;
  uint8_t *file = NULL, *pt = NULL;
  size_t nid = 0, flen = 0, ptlen = 0;
  int rc = load_identities(g, identity_file, ids, CS_AGE_MAX_KEYS, &nid);
  if (rc == 0)
    rc = from_stdin ? cli_read_stdin(g, &file, &flen) : cli_read_file(g, path, &file, &flen);
  if (rc == 0) {
    int arc = cs_age_decrypt(ids, nid, file, flen, &pt, &ptlen);
    if (arc != 0)
      rc = cli_fail(g, "%s: %s", name, cs_error_message(arc));
  }
  if (rc == 0) {
    /* The share's text, without the newline and spaces around it. */
    size_t a = 0, b = ptlen;
    while (a < b && (pt[a] == ' ' || pt[a] == '\t' || pt[a] == '\r' || pt[a] == '\n'))
      a++;
    while (b > a && (pt[b - 1] == ' ' || pt[b - 1] == '\t' || pt[b - 1] == '\r' || pt[b - 1] == '\n'))
      b--;
    char *text = malloc(b - a + 1);
    if (text == NULL) {
      rc = cli_fail(g, "out of memory");
    } else {
      memcpy(text, pt + a, b - a);
      text[b - a] = '\0';
      if (b == a || memchr(text, '\n', b - a) != NULL || cli_decode_key(text, key, len) != 0)
        rc = cli_fail(g, "%s: the decrypted file does not hold a key share (hex or base64)", name);
      cli_free_secret(text, b - a + 1);
    }
  }
  cs_age_free(pt, ptlen);
  free(file);
  for (size_t i = 0; i < nid; i++)
    cs_age_identity_wipe(&ids[i]);
  return rc;
}
