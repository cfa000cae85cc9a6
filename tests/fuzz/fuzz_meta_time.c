/*
** fuzz_meta_time.c — libFuzzer target for meta_time_parse and
** meta_duration_parse (meta/meta.h): the strings of ?from=, ?to=,
** ?created_at=, --retention and the FUSE merge file names.
**
** Checks: a failed parse leaves the OUT value unchanged; a duration is
** > 0; a parsed time of years 0001..9999 formats (meta_time_format) to a
** string that parses back to the same second; "now-<d>" is now minus
** the duration d.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "meta.h"

#define NOW 1700000000LL                 /* 2023-11-14T22:13:20Z */
#define MIN_ROUNDTRIP (-62135596800LL)  /* 0001-01-01T00:00:00Z */
#define MAX_ROUNDTRIP 253402300799LL     /* 9999-12-31T23:59:59Z */


static void check_time(const char *s) {
  int64_t t = 42, back = 43;
  char txt[META_TIME_MAX], stamp[META_TIME_MAX];

  if (meta_time_parse(s, NOW, &t) != 0) {
    FUZZ_CHECK(t == 42);
    return;
  }
  if (t < MIN_ROUNDTRIP || t > MAX_ROUNDTRIP) return;
  meta_time_format(t, txt);
  FUZZ_CHECK(memchr(txt, '\0', sizeof txt) != NULL);
  meta_time_stamp(t, stamp);
  FUZZ_CHECK(memchr(stamp, '\0', sizeof stamp) != NULL);
  if (t < 0) return;  /* negative years are not RFC 3339 */
  FUZZ_CHECK(meta_time_parse(txt, NOW, &back) == 0);
  FUZZ_CHECK(back == t);
}

static void check_duration(const char *s) {
  int64_t d = -7, t = 42;
  char rel[600];

  if (meta_duration_parse(s, &d) != 0) {
    FUZZ_CHECK(d == -7);
    return;
  }
  FUZZ_CHECK(d > 0);
  if (strlen(s) < 500) {
    snprintf(rel, sizeof rel, "now-%s", s);
    if (meta_time_parse(rel, NOW, &t) == 0) FUZZ_CHECK(t == NOW - d);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);

  if (s == NULL) return 0;
  memcpy(s, data, size);
  s[size] = '\0';
  check_time(s);
  check_duration(s);
  free(s);
  return 0;
}
