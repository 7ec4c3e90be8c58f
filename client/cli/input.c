/*
 * input: what the CLI reads besides its arguments: key shares (typed with
 * no echo on a terminal), whole files and stdin (kv values, policies).
 *
 * Reads use read(2) into buffers we own, so a secret line is never copied
 * into stdio's buffer or left behind by realloc; every such buffer is wiped
 * before it is freed.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <mbedtls/platform_util.h>

#define SECRET_LINE_MAX CLI_SECRET_LINE_MAX

/* Reads fd to EOF into a growing buffer, wiping each buffer it outgrows. */
static int read_fd(cli_ctx *g, int fd, const char *what, uint8_t **out, size_t *len) {
  size_t cap = 4096, n = 0;
  uint8_t *buf = malloc(cap);
  if (buf == NULL)
    return cli_fail(g, "out of memory reading %s", what);
  for (;;) {
    if (n + 1 == cap) {
      if (cap >= CS_CLIENT_MAX_FRAME) {
        cli_free_secret(buf, cap);
        return cli_fail(g, "%s is larger than %u bytes", what, CS_CLIENT_MAX_FRAME);
      }
      uint8_t *nb = malloc(cap * 2);
      if (nb == NULL) {
        cli_free_secret(buf, cap);
        return cli_fail(g, "out of memory reading %s", what);
      }
      memcpy(nb, buf, n);
      cli_free_secret(buf, cap);
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + n, cap - 1 - n);
    if (r == 0)
      break;
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int e = errno;
      cli_free_secret(buf, cap);
      return cli_fail(g, "cannot read %s: %s", what, strerror(e));
    }
    n += (size_t)r;
  }
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

int cli_read_stdin(cli_ctx *g, uint8_t **out, size_t *len) { return read_fd(g, 0, "stdin", out, len); }

int cli_read_file(cli_ctx *g, const char *path, uint8_t **out, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return cli_fail(g, "cannot open %s: %s", path, strerror(errno));
  char what[300];
  snprintf(what, sizeof what, "%s", path);
  int rc = read_fd(g, fd, what, out, len);
  close(fd);
  return rc;
}

static struct termios saved_tio;
static volatile sig_atomic_t tio_saved;

/* Ctrl-C at the prompt must not leave the terminal without echo. */
static void restore_and_exit(int sig) {
  if (tio_saved)
    tcsetattr(0, TCSAFLUSH, &saved_tio);
  (void)!write(2, "\n", 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

int cli_read_secret_line(cli_ctx *g, const char *prompt, char **out) {
  char *buf = malloc(SECRET_LINE_MAX);
  size_t n = 0;
  int tty = isatty(0), rc = 0;
  struct sigaction sa, old_int, old_term;
  if (buf == NULL)
    return cli_fail(g, "out of memory");
  if (tty) {
    if (tcgetattr(0, &saved_tio) == 0) {
      struct termios t = saved_tio;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = restore_and_exit;
      sigaction(SIGINT, &sa, &old_int);
      sigaction(SIGTERM, &sa, &old_term);
      tio_saved = 1;
      t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
      t.c_lflag |= ICANON;
      tcsetattr(0, TCSAFLUSH, &t);
    }
    fprintf(stderr, "%s", prompt);
    fflush(stderr);
  }
  for (;;) {
    char ch;
    ssize_t r = read(0, &ch, 1);
    if (r < 0 && errno == EINTR)
      continue;
    if (r < 0) {
      rc = cli_fail(g, "cannot read stdin: %s", strerror(errno));
      break;
    }
    if (r == 0 || ch == '\n')
      break;
    if (n + 1 >= SECRET_LINE_MAX) {
      rc = cli_fail(g, "input line too long");
      break;
    }
    buf[n++] = ch;
  }
  if (tty && tio_saved) {
    tcsetattr(0, TCSAFLUSH, &saved_tio);
    tio_saved = 0;
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    fputc('\n', stderr);
  }
  while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
    n--;
  buf[n] = '\0';
  if (rc != 0) {
    cli_free_secret(buf, SECRET_LINE_MAX);
    return rc;
  }
  *out = buf;
  return 0;
}

int cli_get_key(cli_ctx *g, const char *arg, const char *prompt, uint8_t **key, size_t *len) {
  char *line = NULL;
  const char *text = arg;
  int rc;
  if (arg == NULL || strcmp(arg, "-") == 0) {
    if ((rc = cli_read_secret_line(g, prompt, &line)) != 0)
      return rc;
    text = line;
    /* Leading blanks from a pasted line. */
    while (*text == ' ' || *text == '\t')
      text++;
  }
  rc = 0;
  if (*text == '\0')
    rc = cli_fail(g, "no key given");
  else if (cli_decode_key(text, key, len) != 0)
    rc = cli_fail(g, "the key is neither hex nor base64");
  /* A share typed on the command line shows in `ps` until the process
   * wipes its argv copy: do it now that it was read. */
  if (line == NULL && arg != NULL)
    mbedtls_platform_zeroize((char *)arg, strlen(arg));
  if (line != NULL)
    cli_free_secret(line, SECRET_LINE_MAX);
  return rc;
}
