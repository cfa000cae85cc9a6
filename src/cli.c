/*
** cli.c — helpers shared by the subcommands: messages, sizes, files and
** signal handling.  Daemons block the termination signals in every thread
** and collect them synchronously in main with sigtimedwait(), so no code
** runs in a signal handler and shutdown happens in one ordinary place.
*/
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "meta.h"
#include "version.h"

const char cli_version[] = PROFEFS_VERSION;
const char cli_commit[] = PROFEFS_COMMIT;
const char cli_build_time[] = __DATE__ " " __TIME__;

void cli_errorf(const char *fmt, ...) {
  va_list ap;
  fputs("profefs: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

int cli_usage_error(const char *cmd, const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "profefs: %s: ", cmd);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'profefs %s --help'.\n", cmd);
  return 2;
}

int cli_option_error(const char *cmd, int c, char **argv) {
  const char *arg = optind > 0 ? argv[optind - 1] : "";

  if (c == ':') return cli_usage_error(cmd, "option '%s' needs a value", arg);
  if (optopt != 0 && strncmp(arg, "--", 2) != 0)
    return cli_usage_error(cmd, "unknown option '-%c'", optopt);
  return cli_usage_error(cmd, "unknown option '%s'", arg);
}

int cli_parse_window(const char *s, int64_t *out) {
  if (strcmp(s, "all") == 0 || strcmp(s, "0") == 0) {
    *out = 0;
    return 0;
  }
  return meta_duration_parse(s, out);
}

int cli_parse_size(const char *s, size_t *out) {
  char *end;
  unsigned long long v;
  unsigned long long mul = 1;

  if (s == NULL || *s < '0' || *s > '9') return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0) return -1;
  if (*end != '\0') {
    switch (*end) {
      case 'k': case 'K': mul = 1ULL << 10; break;
      case 'm': case 'M': mul = 1ULL << 20; break;
      case 'g': case 'G': mul = 1ULL << 30; break;
      default: return -1;
    }
    end++;
    if (*end == 'i' || *end == 'I') end++;
    if (*end == 'b' || *end == 'B') end++;
    if (*end != '\0') return -1;
  }
  if (v == 0 || v > (unsigned long long)SIZE_MAX / mul) return -1;
  *out = (size_t)(v * mul);
  return 0;
}

int cli_read_file(const char *path, void **buf, size_t *len) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
  char *data = NULL;
  size_t n = 0, cap = 0;
  int rc = -1, saved;

  if (f == NULL) return -1;
  for (;;) {
    if (n == cap) {
      size_t ncap = cap ? cap * 2 : 65536;
      char *p = realloc(data, ncap);
      if (p == NULL) { errno = ENOMEM; goto out; }
      data = p;
      cap = ncap;
    }
    size_t got = fread(data + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) { errno = errno ? errno : EIO; goto out; }
      break;
    }
  }
  *buf = data;
  *len = n;
  data = NULL;
  rc = 0;
out:
  saved = errno;
  free(data);
  if (f != stdin) fclose(f);
  errno = saved;
  return rc;
}

static void fill_set(sigset_t *set) {
  sigemptyset(set);
  sigaddset(set, SIGINT);
  sigaddset(set, SIGTERM);
  sigaddset(set, SIGHUP);
}

void cli_signals_block(void) {
  sigset_t set;
  fill_set(&set);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
}

int cli_signals_wait(long timeout_ms) {
  sigset_t set;
  struct timespec ts = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L };
  int sig;

  fill_set(&set);
  do {
    sig = sigtimedwait(&set, NULL, &ts);
  } while (sig < 0 && errno == EINTR);
  return sig < 0 ? 0 : sig;
}
