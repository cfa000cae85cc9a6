/*
** check.h — the assertions and the summary line of the unit tests in
** tests/unit/.  Each test program includes it once and:
**
**     CHECK(x != NULL);                  a condition holds
**     CHECK_I64(count(st), 3);           two integers are equal
**     CHECK_STR(err, "bad label");       two C strings are equal
**     ...
**     return check_done("test_store");   prints the summary, exit status
**
** A failed check does not stop the test: it is counted and reported on
** stderr as "FILE:LINE: what failed", and the program goes on so that one
** run shows every failure.  The summary "NAME: N checks, M failed" on
** stdout is read by scripts; keep its format.
**
** The counters are static here, so each program (one translation unit
** including this header) has its own.  They are not thread-safe: checks run
** on the main thread only.
*/
#ifndef PROFEFS_TESTS_CHECK_H
#define PROFEFS_TESTS_CHECK_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Checks made and failed so far.  Read them freely (e.g. a test run in a
** child process exits with the failures it added); change them only
** through check_result(). */
static int check_count, check_fails;

/* Counts one check.  When ok is 0, also counts a failure and prints
** "FILE:LINE: " and the printf-style message on stderr.  Returns ok.  The
** CHECK macros are built on it; a test may build its own (e.g. store's
** CHECK_RC, which names store_rc values). */
static inline int check_result(int ok, const char *file, int line,
                               const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static inline int check_result(int ok, const char *file, int line,
                               const char *fmt, ...) {
  va_list ap;

  check_count++;
  if (ok) return 1;
  check_fails++;
  fprintf(stderr, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  return 0;
}

/* CHECK(cond): cond is true. */
#define CHECK(cond)                                                          \
  check_result((cond) ? 1 : 0, __FILE__, __LINE__, "CHECK failed: %s", #cond)

/* CHECK_I64(got, want): equal as long long (both are cast, so any integer
** or enum type goes); each is evaluated once. */
#define CHECK_I64(got, want)                                                 \
  check_i64((long long)(got), (long long)(want), __FILE__, __LINE__, #got)

static inline void check_i64(long long got, long long want, const char *file,
                             int line, const char *expr) {
  check_result(got == want, file, line, "%s: got %lld, want %lld", expr, got,
               want);
}

/* CHECK_STR(got, want): got is a string equal to want (want is never NULL;
** a NULL got fails and shows as "(null)"); each is evaluated once. */
#define CHECK_STR(got, want) check_str((got), (want), __FILE__, __LINE__, #got)

static inline void check_str(const char *got, const char *want,
                             const char *file, int line, const char *expr) {
  check_result(got != NULL && strcmp(got, want) == 0, file, line,
               "%s: got \"%s\", want \"%s\"", expr, got ? got : "(null)",
               want);
}

/* Prints "NAME: N checks, M failed" on stdout; returns the program's exit
** status: 0 when no check failed, else 1. */
static inline int check_done(const char *name) {
  printf("%s: %d checks, %d failed\n", name, check_count, check_fails);
  return check_fails != 0;
}

#endif /* PROFEFS_TESTS_CHECK_H */
