/*
** gzip.c — gzip inflate with a hard output limit, and gzip deflate, on
** libdeflate: 11 us against zlib's 28 us per CPU profile (9 KB inflated),
** measured with `proto/bench_merge -z`.
**
** libdeflate inflates whole buffers, so it needs the output size up front.
** The gzip trailer's ISIZE (size mod 2^32 of the last member) is only a
** hint, and garbage in a truncated stream: we start with it and on
** "insufficient space" double the buffer.  Two bounds apply: the caller's
** limit (reaching it is PPROF_ETOOBIG) and what deflate can possibly
** produce from the input, at most 1032 bytes per input byte (needing more
** means the stream is corrupt, whatever ISIZE says).  libdeflate stops
** writing when the buffer is full, so a zip bomb costs at most about twice
** `limit` bytes of inflating and `limit` bytes of memory, never its full
** size, and a short corrupt stream never gets a big buffer.
*/
#include <assert.h>
#include <libdeflate.h>
#include <stdlib.h>

#include "internal.h"

#define GZIP_MIN 18 /* 10-byte header + empty deflate block + 8-byte trailer */
#define DEFLATE_MAX_RATIO 1032

int pprof_is_gzip(const void *buf, size_t len) {
  const unsigned char *b = buf;

  return len >= 2 && b[0] == 0x1f && b[1] == 0x8b;
}

int pprof_may_begin(const void *buf, size_t len) {
  const unsigned char *b = buf;
  /* The tags of profile.proto's fields 1-15 with their wire types: a
  ** profile's first byte is one of them (or gzip's 0x1f) whatever its
  ** producer, as encoders write fields in order and field 1 or 2 is always
  ** there.  Text ('x', '{', '<', a '#' of a script) is none of them. */
  static const unsigned char tags[] = {
    0x0a, 0x12, 0x1a, 0x22, 0x2a, 0x32, 0x38, 0x40, 0x48, 0x50,
    0x5a, 0x60, 0x68, 0x6a, 0x70, 0x7a,
  };

  assert(buf != NULL || len == 0);
  if (len == 0) return 1;
  if (b[0] == 0x1f) return len == 1 || b[1] == 0x8b;
  for (size_t i = 0; i < sizeof tags; i++)
    if (b[0] == tags[i]) return 1;
  return 0;
}

static size_t isize_hint(const unsigned char *in, size_t len) {
  const unsigned char *t = in + len - 4;

  return (size_t)t[0] | (size_t)t[1] << 8 | (size_t)t[2] << 16 |
         (size_t)t[3] << 24;
}

/* Makes *buf hold at least want bytes (content up to used preserved),
** taking the growth from b (see pprof_gunzip). */
static pprof_rc reserve(uint8_t **buf, size_t *cap, size_t want, budget *b,
                        size_t *held) {
  uint8_t *p;

  if (want <= *cap)
    return PPROF_OK;
  if (budget_reserve(b, want - *cap) != 0)
    return PPROF_EBUSY;
  p = realloc(*buf, want);
  if (p == NULL) {
    budget_release(b, want - *cap);
    return PPROF_ENOMEM;
  }
  if (b != NULL)
    *held += want - *cap;
  *buf = p;
  *cap = want;
  return PPROF_OK;
}

static pprof_rc grow_failed(pprof_rc rc, char *err) {
  return rc == PPROF_EBUSY
             ? pprof_fail(rc, err, "memory budget exhausted while inflating")
             : pprof_fail(rc, err, "out of memory");
}

pprof_rc pprof_gunzip(struct libdeflate_decompressor *d, const void *in,
                      size_t len, size_t limit, uint8_t **buf, size_t *cap,
                      size_t *outlen, budget *b, size_t *held, char *err) {
  const unsigned char *p = in;
  size_t used = 0, want, in_used, out_used, room, bound;
  enum libdeflate_result r;
  pprof_rc rc;

  assert(d != NULL && buf != NULL && cap != NULL && outlen != NULL);
  assert(b == NULL || held != NULL);
  if (len < GZIP_MIN)
    return pprof_fail(PPROF_EGZIP, err, "gzip: stream too short (%zu bytes)",
                      len);
  bound = len <= (SIZE_MAX - 4096) / DEFLATE_MAX_RATIO
              ? len * DEFLATE_MAX_RATIO + 4096
              : SIZE_MAX;
  if (bound > limit)
    bound = limit;
  want = isize_hint(p, len);
  if (want < 4096)
    want = 4096;
  if ((rc = reserve(buf, cap, want < bound ? want : bound, b, held)) !=
      PPROF_OK)
    return grow_failed(rc, err);
  while (len > 0) {
    if (!pprof_is_gzip(p, len))
      return pprof_fail(PPROF_EGZIP, err,
                        "gzip: garbage after the compressed data");
    room = (*cap < bound ? *cap : bound) - used;
    r = libdeflate_gzip_decompress_ex(d, p, len, *buf + used, room, &in_used,
                                      &out_used);
    if (r == LIBDEFLATE_INSUFFICIENT_SPACE) {
      if (used + room >= limit)
        return pprof_fail(PPROF_ETOOBIG, err,
                          "inflated size over the limit of %zu bytes", limit);
      if (used + room >= bound)
        break; /* more than deflate can make of this input: corrupt */
      want = *cap > bound / 2 ? bound : *cap * 2;
      if ((rc = reserve(buf, cap, want, b, held)) != PPROF_OK)
        return grow_failed(rc, err);
      continue; /* inflate this member again into the bigger buffer */
    }
    if (r != LIBDEFLATE_SUCCESS)
      break;
    used += out_used;
    p += in_used;
    len -= in_used;
  }
  if (len > 0)
    return pprof_fail(PPROF_EGZIP, err, "gzip: corrupt or truncated stream");
  *outlen = used;
  return PPROF_OK;
}

pprof_rc pprof_gzip(const void *in, size_t len, int level, void **out,
                    size_t *outlen) {
  struct libdeflate_compressor *c;
  size_t bound, n;
  void *buf;

  assert(out != NULL && outlen != NULL);
  c = libdeflate_alloc_compressor(level);
  if (c == NULL)
    return PPROF_ENOMEM;
  bound = libdeflate_gzip_compress_bound(c, len);
  buf = malloc(bound);
  if (buf == NULL) {
    libdeflate_free_compressor(c);
    return PPROF_ENOMEM;
  }
  n = libdeflate_gzip_compress(c, in, len, buf, bound);
  libdeflate_free_compressor(c);
  if (n == 0) { /* cannot happen with a bound-sized buffer */
    free(buf);
    return PPROF_ENOMEM;
  }
  *out = buf;
  *outlen = n;
  return PPROF_OK;
}
