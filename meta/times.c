/*
** times.c — points in time and durations as users type them (query
** parameters, FUSE merge file names, --retention), and their formatting.
**
** All times are UTC unix seconds.  Parsing is done by hand rather than with
** strptime() so that it is strict (no silent normalisation of 2006-13-40)
** and independent of the locale and TZ; timegm() converts the checked
** fields.  Accepted times lie in years 0000..9999, which keeps every
** result, and every sum with a duration, far away from int64 overflow and
** always formattable by meta_time_format.
*/
#include "meta.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define TIME_MIN (-62167219200LL) /* 0000-01-01T00:00:00Z */
#define TIME_MAX 253402300799LL   /* 9999-12-31T23:59:59Z */
#define DURATION_MAX (TIME_MAX - TIME_MIN)

static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* Reads exactly n digits at *p into *v and advances *p. */
static int digits(const char **p, int n, int *v) {
  int x = 0;
  for (int i = 0; i < n; i++) {
    if (!is_digit((unsigned char)(*p)[i])) return -1;
    x = x * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *v = x;
  return 0;
}

/* Consumes the character c at *p. */
static int expect(const char **p, char c) {
  if (**p != c) return -1;
  (*p)++;
  return 0;
}

static int days_in_month(int y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : d[m - 1];
}

/* "2006-01-02T15:04:05" [".frac"] ["Z" | "+07:00" | "-07:00"]. */
static int parse_date(const char *s, int64_t *out) {
  int Y, M, D, h, m, sec, oh = 0, om = 0, sign = 0;
  const char *p = s;
  if (digits(&p, 4, &Y) || expect(&p, '-') || digits(&p, 2, &M) ||
      expect(&p, '-') || digits(&p, 2, &D))
    return -1;
  if (*p != 'T' && *p != 't') return -1;
  p++;
  if (digits(&p, 2, &h) || expect(&p, ':') || digits(&p, 2, &m) ||
      expect(&p, ':') || digits(&p, 2, &sec))
    return -1;
  if (*p == '.') { /* fractional seconds: at least one digit, ignored */
    p++;
    if (!is_digit((unsigned char)*p)) return -1;
    while (is_digit((unsigned char)*p)) p++;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '+' ? 1 : -1;
    if (digits(&p, 2, &oh) || expect(&p, ':') || digits(&p, 2, &om))
      return -1;
  }
  if (*p != '\0') return -1;
  if (M < 1 || M > 12 || D < 1 || D > days_in_month(Y, M) || h > 23 ||
      m > 59 || sec > 59 || oh > 23 || om > 59)
    return -1;

  struct tm tm = {
    .tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
    .tm_hour = h, .tm_min = m, .tm_sec = sec,
  };
  int64_t t = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
  if (t < TIME_MIN || t > TIME_MAX) return -1;
  *out = t;
  return 0;
}

/* Unix seconds: digits only. */
static int parse_unix(const char *s, int64_t *out) {
  int64_t t = 0;
  if (*s == '\0') return -1;
  for (const char *p = s; *p; p++) {
    if (!is_digit((unsigned char)*p)) return -1;
    t = t * 10 + (*p - '0');
    if (t > TIME_MAX) return -1;
  }
  *out = t;
  return 0;
}

int meta_time_parse(const char *s, int64_t now_sec, int64_t *out) {
  assert(out != NULL);
  int64_t t, d;
  if (s == NULL) return -1;
  if (strncmp(s, "now", 3) == 0) {
    if (s[3] == '\0') {
      t = now_sec;
    } else if ((s[3] == '-' || s[3] == '+') &&
               meta_duration_parse(s + 4, &d) == 0) {
      if (now_sec < TIME_MIN || now_sec > TIME_MAX) return -1;
      t = s[3] == '-' ? now_sec - d : now_sec + d;
    } else {
      return -1;
    }
  } else if (parse_unix(s, &t) != 0 && parse_date(s, &t) != 0) {
    return -1;
  }
  if (t < TIME_MIN || t > TIME_MAX) return -1;
  *out = t;
  return 0;
}

/* Seconds per unit letter, 0 for an unknown unit. */
static int64_t unit_seconds(char u) {
  switch (u) {
  case 's': return 1;
  case 'm': return 60;
  case 'h': return 3600;
  case 'd': return 86400;
  case 'w': return 7 * 86400;
  default: return 0;
  }
}

int meta_duration_parse(const char *s, int64_t *out_sec) {
  assert(out_sec != NULL);
  if (s == NULL || *s == '\0') return -1;
  int64_t total = 0;
  const char *p = s;
  while (*p) {
    /* <int>[.<frac>]<unit>; fractions must come to whole seconds. */
    int64_t whole = 0, frac = 0, scale = 1;
    int ndigits = 0;
    for (; is_digit((unsigned char)*p); p++, ndigits++) {
      whole = whole * 10 + (*p - '0');
      if (whole > DURATION_MAX) return -1;
    }
    if (*p == '.') {
      for (p++; is_digit((unsigned char)*p); p++, ndigits++) {
        if (scale >= 1000000000) return -1; /* at most 9 fraction digits */
        frac = frac * 10 + (*p - '0');
        scale *= 10;
      }
    }
    if (ndigits == 0) return -1;
    int64_t unit = unit_seconds(*p);
    if (unit == 0) return -1;
    p++;
    if ((frac * unit) % scale != 0) return -1; /* not whole seconds */
    int64_t part;
    if (__builtin_mul_overflow(whole, unit, &part)) return -1;
    part += frac * unit / scale;
    total += part;
    if (total > DURATION_MAX) return -1;
  }
  if (total <= 0) return -1;
  *out_sec = total;
  return 0;
}

/* UTC fields of t, each bounded so that the formats below cannot
** overflow; t is clamped to years 0000..9999 (only reachable with times
** that meta_time_parse never returns). */
typedef struct fields {
  unsigned Y, M, D, h, m, s;
} fields;

static fields utc(int64_t t) {
  time_t tt = (time_t)(t < TIME_MIN ? TIME_MIN : t > TIME_MAX ? TIME_MAX : t);
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL) memset(&tm, 0, sizeof tm);
  return (fields){(unsigned)(tm.tm_year + 1900) % 10000u,
                  (unsigned)(tm.tm_mon + 1) % 100u, (unsigned)tm.tm_mday % 100u,
                  (unsigned)tm.tm_hour % 100u, (unsigned)tm.tm_min % 100u,
                  (unsigned)tm.tm_sec % 100u};
}

void meta_time_format(int64_t t, char out[META_TIME_MAX]) {
  fields f = utc(t);
  snprintf(out, META_TIME_MAX, "%04u-%02u-%02uT%02u:%02u:%02uZ", f.Y, f.M,
           f.D, f.h, f.m, f.s);
}

void meta_time_stamp(int64_t t, char out[META_TIME_MAX]) {
  fields f = utc(t);
  snprintf(out, META_TIME_MAX, "%04u%02u%02uT%02u%02u%02uZ", f.Y, f.M, f.D,
           f.h, f.m, f.s);
}
