/*
 * age_tool: common/age behind a command line, so the black-box tests can
 * check it against the real `age` in both directions.
 *
 *   age_tool encrypt [-a] (-r RECIPIENT | -R FILE)... [-o OUT] [IN]
 *   age_tool decrypt -i IDENTITY_FILE [-o OUT] [IN]
 *   age_tool keygen                  prints a new identity
 *   age_tool recipient IDENTITY_FILE prints its recipient
 *
 * IN defaults to stdin, OUT to stdout.  Exit 0 on success, 1 with the
 * error's name and message on stderr (so tests can match the code).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "age.h"
#include "cs_error.h"

static uint8_t *read_file(const char *path, size_t *len) {
  FILE *f = path ? fopen(path, "rb") : stdin;
  if (f == NULL) {
    perror(path);
    return NULL;
  }
  uint8_t *buf = NULL;
  size_t n = 0, cap = 0, r;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if (nb == NULL) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    r = fread(buf + n, 1, cap - n, f);
    n += r;
  } while (r > 0);
  if (path)
    fclose(f);
  *len = n;
  return buf;
}

static int write_out(const char *path, const uint8_t *p, size_t n) {
  FILE *f = path ? fopen(path, "wb") : stdout;
  if (f == NULL) {
    perror(path);
    return 1;
  }
  int bad = fwrite(p, 1, n, f) != n;
  bad |= path ? fclose(f) != 0 : fflush(f) != 0;
  return bad;
}

static int fail(int rc) {
  fprintf(stderr, "age_tool: %s: %s\n", cs_errname(rc), cs_error_message(rc));
  return 1;
}

static int usage(void) {
  fprintf(stderr, "usage: age_tool encrypt [-a] (-r RECIPIENT | -R FILE)... [-o OUT] [IN]\n"
                  "       age_tool decrypt -i IDENTITY_FILE [-o OUT] [IN]\n"
                  "       age_tool keygen | recipient IDENTITY_FILE\n");
  return 2;
}

static int cmd_encrypt(int argc, char **argv) {
  cs_age_recipient rs[CS_AGE_MAX_KEYS];
  size_t nr = 0, got, len;
  int armor = 0, c, rc;
  const char *out = NULL;
  while ((c = getopt(argc, argv, "ar:R:o:")) != -1) {
    if (c == 'a') {
      armor = 1;
    } else if (c == 'r') {
      if (nr == CS_AGE_MAX_KEYS)
        return fail(CS_ELIMIT);
      if ((rc = cs_age_recipient_parse(&rs[nr], optarg, strlen(optarg))) != 0)
        return fail(rc);
      nr++;
    } else if (c == 'R') {
      uint8_t *text = read_file(optarg, &len);
      if (text == NULL)
        return 1;
      rc = cs_age_recipients_parse_text(rs + nr, CS_AGE_MAX_KEYS - nr, &got, (char *)text, len);
      free(text);
      if (rc != 0)
        return fail(rc);
      nr += got;
    } else if (c == 'o') {
      out = optarg;
    } else {
      return usage();
    }
  }
  uint8_t *pt = read_file(optind < argc ? argv[optind] : NULL, &len), *ct;
  size_t ctlen;
  if (pt == NULL)
    return 1;
  rc = cs_age_encrypt(rs, nr, pt, len, armor, &ct, &ctlen);
  cs_age_free(pt, len);
  if (rc != 0)
    return fail(rc);
  rc = write_out(out, ct, ctlen);
  free(ct);
  return rc;
}

static int load_identities(const char *path, cs_age_identity *ids, size_t *nid) {
  size_t len;
  uint8_t *text = read_file(path, &len);
  if (text == NULL)
    return 1;
  int rc = cs_age_identity_parse_text(ids, CS_AGE_MAX_KEYS, nid, (char *)text, len);
  cs_age_free(text, len);
  return rc == 0 ? 0 : fail(rc);
}

static int cmd_decrypt(int argc, char **argv) {
  static cs_age_identity ids[CS_AGE_MAX_KEYS];
  size_t nid = 0, len, ptlen;
  const char *idfile = NULL, *out = NULL;
  int c, rc;
  while ((c = getopt(argc, argv, "i:o:")) != -1) {
    if (c == 'i')
      idfile = optarg;
    else if (c == 'o')
      out = optarg;
    else
      return usage();
  }
  if (idfile == NULL)
    return usage();
  if (load_identities(idfile, ids, &nid) != 0)
    return 1;
  uint8_t *ct = read_file(optind < argc ? argv[optind] : NULL, &len), *pt;
  if (ct == NULL)
    return 1;
  rc = cs_age_decrypt(ids, nid, ct, len, &pt, &ptlen);
  free(ct);
  for (size_t i = 0; i < nid; i++)
    cs_age_identity_wipe(&ids[i]);
  if (rc != 0)
    return fail(rc);
  rc = write_out(out, pt, ptlen);
  cs_age_free(pt, ptlen);
  return rc;
}

int main(int argc, char **argv) {
  if (argc < 2)
    return usage();
  const char *cmd = argv[1];
  argc--;
  argv++;
  if (strcmp(cmd, "encrypt") == 0)
    return cmd_encrypt(argc, argv);
  if (strcmp(cmd, "decrypt") == 0)
    return cmd_decrypt(argc, argv);
  if (strcmp(cmd, "keygen") == 0) {
    cs_age_identity id;
    char s[CS_AGE_IDENTITY_STRLEN + 1];
    int rc = cs_age_identity_generate(&id);
    if (rc != 0)
      return fail(rc);
    cs_age_identity_format(&id, s);
    printf("%s\n", s);
    cs_age_identity_wipe(&id);
    return 0;
  }
  if (strcmp(cmd, "recipient") == 0 && argc == 2) {
    cs_age_identity ids[CS_AGE_MAX_KEYS];
    cs_age_recipient r;
    char s[CS_AGE_RECIPIENT_STRLEN + 1];
    size_t nid;
    if (load_identities(argv[1], ids, &nid) != 0)
      return 1;
    for (size_t i = 0; i < nid; i++) {
      cs_age_identity_to_recipient(&ids[i], &r);
      cs_age_recipient_format(&r, s);
      printf("%s\n", s);
      cs_age_identity_wipe(&ids[i]);
    }
    return 0;
  }
  return usage();
}
