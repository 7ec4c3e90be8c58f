/*
 * Unit tests for the store's directory lock (<dir>/custos.lock).  flock is
 * wrapped (-Wl,--wrap=flock, see CMakeLists.txt) to play a filesystem whose
 * locks fail or do not exclude, which no test machine can be made to have.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cs_error.h"
#include "store.h"

enum { REAL, FAILS, GRANTS_ALL };
static int flock_mode = REAL;

int __real_flock(int fd, int op);
int __wrap_flock(int fd, int op);
int __wrap_flock(int fd, int op) {
  if (flock_mode == FAILS) {
    errno = ENOLCK;
    return -1;
  }
  if (flock_mode == GRANTS_ALL)
    return 0;
  return __real_flock(fd, op);
}

static char dir[64];

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/custos-lock-XXXXXX");
  assert_non_null(mkdtemp(dir));
  flock_mode = REAL;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  assert_int_equal(system(cmd), 0);
  return 0;
}

/* A second open of a directory in use is refused, naming the holder. */
static void test_second_open_refused(void **state) {
  (void)state;
  cs_store *a, *b = NULL;
  assert_int_equal(cs_store_open(&a, dir, NULL), 0);
  int rc = cs_store_open(&b, dir, NULL);
  assert_int_equal(rc, CS_EDATADIRBUSY);
  assert_null(b);
  char want[64];
  snprintf(want, sizeof want, "(pid %ld holds", (long)getpid());
  assert_non_null(strstr(cs_error_message(rc), want));
  cs_store_close(a);
  /* Closed: the lock is free again. */
  assert_int_equal(cs_store_open(&b, dir, NULL), 0);
  cs_store_close(b);
}

/* flock failing (ENOLCK, as on some network filesystems): refused. */
static void test_lock_fails_refused(void **state) {
  (void)state;
  cs_store *s = NULL;
  flock_mode = FAILS;
  int rc = cs_store_open(&s, dir, NULL);
  flock_mode = REAL;
  assert_int_equal(rc, CS_EIO);
  assert_null(s);
  assert_non_null(strstr(cs_error_message(rc), "file locks do not work"));
}

/* flock "succeeding" for everybody (a lock that does not exclude): refused. */
static void test_lock_not_exclusive_refused(void **state) {
  (void)state;
  cs_store *s = NULL;
  flock_mode = GRANTS_ALL;
  int rc = cs_store_open(&s, dir, NULL);
  flock_mode = REAL;
  assert_int_equal(rc, CS_EIO);
  assert_null(s);
  assert_non_null(strstr(cs_error_message(rc), "a second lock on custos.lock was granted"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_second_open_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_fails_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_lock_not_exclusive_refused, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
