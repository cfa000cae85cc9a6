/*
** peek.c — pprof_peek_types: a profile's sample types from a scan of its
** top-level fields only, for the ingest doors whose profile type follows
** from them (Pyroscope's /ingest in pprof format).  Samples, locations and
** functions are skipped by their length, not decoded, so the peek costs the
** inflation and a walk over the fields; the full check (wire.c,
** validate.c) still runs in store_ingest afterwards.
*/
#include <assert.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Reads a varint at *p (< end) into *v; 0, or -1 when malformed. */
static int rd_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (int i = 0; i < 10 && *p < end; i++) {
    uint8_t c = *(*p)++;
    x |= (uint64_t)(c & 0x7f) << (7 * i);
    if (c < 0x80) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* Skips one field of wire type wt at *p; 0, or -1 when malformed. */
static int skip(const uint8_t **p, const uint8_t *end, unsigned wt) {
  uint64_t n;
  switch (wt) {
  case 0: return rd_varint(p, end, &n);
  case 1: n = 8; break;
  case 5: n = 4; break;
  case 2:
    if (rd_varint(p, end, &n) != 0) return -1;
    break;
  default: return -1;
  }
  if (n > (uint64_t)(end - *p)) return -1;
  *p += n;
  return 0;
}

/* The type and unit string indices of a ValueType message. */
static int value_type(const uint8_t *p, const uint8_t *end, uint64_t vt[2]) {
  uint64_t key;
  vt[0] = vt[1] = 0;
  while (p < end) {
    if (rd_varint(&p, end, &key) != 0) return -1;
    if ((key == (1 << 3 | 0) || key == (2 << 3 | 0))) {
      if (rd_varint(&p, end, &vt[(key >> 3) - 1]) != 0) return -1;
    } else if (skip(&p, end, key & 7) != 0) {
      return -1;
    }
  }
  return 0;
}

/* Scans the Profile message in buf into types. */
static pprof_rc scan(const uint8_t *p, size_t len, char types[PPROF_TYPES_MAX],
                     char *err) {
  const uint8_t *end = p + len;
  uint64_t key, n, (*st)[2] = NULL;
  pprof_vstr *str = NULL;
  size_t nst = 0, capst = 0, nstr = 0, capstr = 0, o = 0, i;
  pprof_rc rc = PPROF_OK;

  while (p < end) {
    if (rd_varint(&p, end, &key) != 0) goto bad;
    if (key == (1 << 3 | 2) || key == (6 << 3 | 2)) {
      if (rd_varint(&p, end, &n) != 0 || n > (uint64_t)(end - p)) goto bad;
      if (key >> 3 == 1) {
        if (PPROF_ROOM(st, nst, capst, 1)) goto nomem;
        if (value_type(p, p + n, st[nst++]) != 0) goto bad;
      } else {
        if (PPROF_ROOM(str, nstr, capstr, 1)) goto nomem;
        str[nstr].p = (const char *)p;
        str[nstr++].len = n;
      }
      p += n;
    } else if (skip(&p, end, key & 7) != 0) {
      goto bad;
    }
  }
  if (nst == 0) {
    rc = pprof_fail(PPROF_EINVALID, err, "no sample types");
    goto out;
  }
  types[0] = '\0';
  for (i = 0; i < nst; i++) {
    if (st[i][0] >= nstr || st[i][1] >= nstr) {
      rc = pprof_fail(PPROF_EINVALID, err, "sample type %zu: string index "
                      "out of range", i);
      goto out;
    }
    int w = snprintf(types + o, PPROF_TYPES_MAX - o, "%s%.*s/%.*s",
                     i ? "," : "", (int)str[st[i][0]].len, str[st[i][0]].p,
                     (int)str[st[i][1]].len, str[st[i][1]].p);
    if (w < 0 || (size_t)w >= PPROF_TYPES_MAX - o) {
      strcpy(types + PPROF_TYPES_MAX - 4, "...");
      break;
    }
    o += (size_t)w;
  }
  goto out;
bad:
  rc = pprof_fail(PPROF_EDECODE, err, "not a protobuf Profile message");
  goto out;
nomem:
  rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
out:
  free(st);
  free(str);
  return rc;
}

pprof_rc pprof_peek_types(const void *buf, size_t len, size_t max_inflate,
                          budget *b, char types[PPROF_TYPES_MAX],
                          char err[PPROF_ERRMAX]) {
  struct libdeflate_decompressor *d;
  uint8_t *ibuf = NULL;
  size_t icap = 0, ilen = len, held = 0;
  char t[PPROF_TYPES_MAX];
  pprof_rc rc;

  assert((buf != NULL || len == 0) && types != NULL);
  if (len == 0)
    return pprof_fail(PPROF_EDECODE, err, "empty");
  if (!pprof_is_gzip(buf, len)) {
    rc = scan(buf, len, t, err);
  } else {
    if ((d = libdeflate_alloc_decompressor()) == NULL)
      return pprof_fail(PPROF_ENOMEM, err, "out of memory");
    rc = pprof_gunzip(d, buf, len, max_inflate ? max_inflate
                                               : PPROF_DEFAULT_INFLATE,
                      &ibuf, &icap, &ilen, b, &held, err);
    libdeflate_free_decompressor(d);
    if (rc == PPROF_OK)
      rc = scan(ibuf, ilen, t, err);
    free(ibuf);
    budget_release(b, held);
  }
  if (rc == PPROF_OK)
    memcpy(types, t, PPROF_TYPES_MAX);
  return rc;
}
