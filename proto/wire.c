/*
** wire.c — a small protobuf wire-format reader for the Profile message,
** filling a pprof_view (internal.h).
**
** Why not protobuf-c's unpack: it allocates every sub-message and string
** separately, which dominates the cost of merging thousands of profiles.
** This reader allocates nothing once the view has warmed up and points
** strings into the input.  It accepts what protobuf accepts: fields in any
** order, packed or unpacked repeated scalars, unknown fields (skipped),
** repeated occurrences of a message field (merged).  It rejects groups,
** wrong wire types for known fields, varints over 10 bytes or 64 bits,
** lengths past the end, and a second time_nanos (concatenated profiles,
** like pprof does).
**
** Speed: each message is parsed by its own function that walks a local
** pointer p up to end and dispatches on the raw tag (field and wire type
** in one compare).  The messages that make up most of a profile (Sample,
** Location, Line, Function) test the tags in the order Go writes them,
** which the branch predictor learns (about 30% faster than a switch's
** indirect jump here); the rest use a switch.  A varint decode returns the
** new position and the value together (two registers) and only multi-byte
** varints leave the inline path.  Errors are rare and re-examine the bytes
** to say what was wrong (bad_varint).
*/
#include <assert.h>
#include <stdlib.h>

#include "internal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

#define TAG(field, wt) ((uint64_t)(field) << 3 | (wt))
#define COLD static __attribute__((noinline, cold))

typedef struct ctx {
  pprof_view *v;
  const uint8_t *base; /* start of the input, for offsets in messages */
  char *err;
} ctx;

/* A decoded varint: p is the byte after it, or NULL when malformed. */
typedef struct vr {
  const uint8_t *p;
  uint64_t v;
} vr;

static __attribute__((noinline)) vr varint_long(const uint8_t *p,
                                                const uint8_t *end) {
  vr r = {NULL, 0};
  uint64_t v = 0;
  int i;

  for (i = 0; i < 10 && p + i < end; i++) {
    v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (p[i] < 0x80) {
      if (i == 9 && p[i] > 1)
        return r; /* over 64 bits */
      r.p = p + i + 1;
      r.v = v;
      return r;
    }
  }
  return r; /* truncated, or over 10 bytes */
}

static inline __attribute__((always_inline)) vr varint(const uint8_t *p,
                                                        const uint8_t *end) {
  vr r;

  if (p < end && *p < 0x80) {
    r.p = p + 1;
    r.v = *p;
    return r;
  }
  return varint_long(p, end);
}

static size_t off(const ctx *c, const uint8_t *p) {
  return (size_t)(p - c->base);
}

COLD pprof_rc nomem(const ctx *c) {
  return pprof_fail(PPROF_ENOMEM, c->err, "out of memory");
}

/* Says why the varint at p did not decode. */
COLD pprof_rc bad_varint(const ctx *c, const uint8_t *p, const uint8_t *end) {
  size_t i;

  for (i = 0; i < 10 && p + i < end && p[i] >= 0x80; i++)
    ;
  if (i == 10)
    return pprof_fail(PPROF_EDECODE, c->err,
                      "varint longer than 10 bytes at offset %zu", off(c, p));
  if (p + i >= end)
    return pprof_fail(PPROF_EDECODE, c->err, "truncated varint at offset %zu",
                      off(c, p));
  return pprof_fail(PPROF_EDECODE, c->err, "varint over 64 bits at offset %zu",
                    off(c, p));
}

COLD pprof_rc bad_len(const ctx *c, const char *msg, const uint8_t *at,
                      uint64_t n, const uint8_t *p, const uint8_t *end) {
  return pprof_fail(PPROF_EDECODE, c->err,
                    "%s field at offset %zu: length %llu runs past the end "
                    "(%zu bytes left)",
                    msg, off(c, at), (unsigned long long)n, (size_t)(end - p));
}

/* Reads the next varint of the message being parsed (p..end) into x, or
** returns the error from the calling parser. */
#define GET(x)                                  \
  do {                                          \
    vr g_ = varint(p, end);                     \
    if (g_.p == NULL)                           \
      return bad_varint(c, p, end);             \
    p = g_.p;                                   \
    (x) = g_.v;                                 \
  } while (0)

/* Reads a length prefix and sets s..e to the payload, or returns. */
#define GET_LEN(s, e, msg)                           \
  do {                                               \
    uint64_t n_;                                     \
    GET(n_);                                         \
    if (n_ > (uint64_t)(end - p))                    \
      return bad_len(c, msg, at, n_, p, end);        \
    (s) = p;                                         \
    (e) = p + n_;                                    \
    p = (e);                                         \
  } while (0)

/* A field none of the switch cases took: a known field number (bit set in
** known) with the wrong wire type is an error, anything else is skipped. */
COLD pprof_rc bad_type(const ctx *c, const char *msg, const uint8_t *at,
                       uint64_t tag) {
  return pprof_fail(PPROF_EDECODE, c->err,
                    "%s field %llu at offset %zu: unexpected wire type %d",
                    msg, (unsigned long long)(tag >> 3), off(c, at),
                    (int)(tag & 7));
}

static pprof_rc other(const ctx *c, const char *msg, uint32_t known,
                      const uint8_t *at, uint64_t tag, const uint8_t **pp,
                      const uint8_t *end) {
  const uint8_t *p = *pp, *s, *e;
  uint64_t field = tag >> 3, x;

  if (field == 0 || field > 0x1fffffff)
    return pprof_fail(PPROF_EDECODE, c->err,
                      "invalid field number %llu at offset %zu",
                      (unsigned long long)field, off(c, at));
  if (field < 32 && (known >> field & 1))
    return bad_type(c, msg, at, tag);
  switch (tag & 7) {
  case WT_VARINT:
    GET(x);
    (void)x;
    break;
  case WT_LEN:
    GET_LEN(s, e, msg);
    (void)s;
    (void)e;
    break;
  case WT_I64:
  case WT_I32:
    if ((size_t)(end - p) < ((tag & 7) == WT_I64 ? 8u : 4u))
      return pprof_fail(PPROF_EDECODE, c->err,
                        "truncated fixed-size field at offset %zu", off(c, at));
    p += (tag & 7) == WT_I64 ? 8 : 4;
    break;
  default:
    return pprof_fail(PPROF_EDECODE, c->err,
                      "unsupported wire type %d at offset %zu", (int)(tag & 7),
                      off(c, at));
  }
  *pp = p;
  return PPROF_OK;
}

#define OTHER(msg, known)                                             \
  do {                                                                \
    pprof_rc rc_ = other(c, msg, known, at, t, &p, end);              \
    if (rc_ != PPROF_OK)                                              \
      return rc_;                                                     \
  } while (0)

/* Packed varints p..end appended to *a (int64 fields are kept as read,
** see pprof_view). */
static pprof_rc packed(const ctx *c, const uint8_t *p, const uint8_t *end,
                       uint64_t **a, size_t *n, size_t *cap) {
  const uint8_t *q;
  uint64_t *out;
  size_t k = 0;

  /* Each varint ends with exactly one byte < 0x80: count them to reserve
  ** exactly (an unterminated last varint is caught below). */
  for (q = p; q < end; q++)
    k += *q < 0x80;
  if (PPROF_ROOM(*a, *n, *cap, k + 1))
    return nomem(c);
  out = *a;
  k = *n;
  while (p < end) {
    if (*p < 0x80) {
      out[k++] = *p++;
    } else {
      vr r = varint_long(p, end);
      if (r.p == NULL)
        return bad_varint(c, p, end);
      out[k++] = r.v;
      p = r.p;
    }
  }
  *n = k;
  return PPROF_OK;
}

static pprof_rc one(const ctx *c, uint64_t x, uint64_t **a, size_t *n,
                    size_t *cap) {
  if (PPROF_ROOM(*a, *n, *cap, 1))
    return nomem(c);
  (*a)[(*n)++] = x;
  return PPROF_OK;
}

/* ---- messages ----------------------------------------------------------- */

static pprof_rc value_type(const ctx *c, const uint8_t *p, const uint8_t *end,
                           pprof_vtype *vt) {
  const uint8_t *at;
  uint64_t t, x;

  while (p < end) {
    at = p;
    GET(t);
    switch (t) {
    case TAG(1, WT_VARINT): GET(x); vt->type = (int64_t)x; break;
    case TAG(2, WT_VARINT): GET(x); vt->unit = (int64_t)x; break;
    default: OTHER("ValueType", 0x6);
    }
  }
  return PPROF_OK;
}

static pprof_rc label(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vlabel l = {0, 0, 0, 0};
  const uint8_t *at;
  uint64_t t, x;

  while (p < end) {
    at = p;
    GET(t);
    switch (t) {
    case TAG(1, WT_VARINT): GET(x); l.key = (int64_t)x; break;
    case TAG(2, WT_VARINT): GET(x); l.str = (int64_t)x; break;
    case TAG(3, WT_VARINT): GET(x); l.num = (int64_t)x; break;
    case TAG(4, WT_VARINT): GET(x); l.unit = (int64_t)x; break;
    default: OTHER("Label", 0x1e);
    }
  }
  if (PPROF_ROOM(v->label, v->nlabel, v->caplabel, 1))
    return nomem(c);
  v->label[v->nlabel++] = l;
  return PPROF_OK;
}

static pprof_rc sample(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vsample s;
  const uint8_t *at, *ss, *se;
  uint64_t t, x;
  pprof_rc rc;

  s.loc0 = (uint32_t)v->nlocid;
  s.val0 = (uint32_t)v->nvalue;
  s.lab0 = (uint32_t)v->nlabel;
  while (p < end) {
    at = p;
    GET(t);
    if (t == TAG(1, WT_LEN)) {
      GET_LEN(ss, se, "Sample");
      rc = packed(c, ss, se, &v->locid, &v->nlocid, &v->caplocid);
    } else if (t == TAG(2, WT_LEN)) {
      GET_LEN(ss, se, "Sample");
      rc = packed(c, ss, se, &v->value, &v->nvalue, &v->capvalue);
    } else if (t == TAG(3, WT_LEN)) {
      GET_LEN(ss, se, "Sample");
      rc = label(c, ss, se);
    } else if (t == TAG(1, WT_VARINT)) {
      GET(x);
      rc = one(c, x, &v->locid, &v->nlocid, &v->caplocid);
    } else if (t == TAG(2, WT_VARINT)) {
      GET(x);
      rc = one(c, x, &v->value, &v->nvalue, &v->capvalue);
    } else {
      OTHER("Sample", 0xe);
      rc = PPROF_OK;
    }
    if (rc != PPROF_OK)
      return rc;
  }
  s.nloc = (uint32_t)v->nlocid - s.loc0;
  s.nval = (uint32_t)v->nvalue - s.val0;
  s.nlab = (uint32_t)v->nlabel - s.lab0;
  if (PPROF_ROOM(v->sample, v->nsample, v->capsample, 1))
    return nomem(c);
  v->sample[v->nsample++] = s;
  return PPROF_OK;
}

static pprof_rc mapping(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vmapping m;
  const uint8_t *at;
  uint64_t t, x;

  memset(&m, 0, sizeof m);
  while (p < end) {
    at = p;
    GET(t);
    switch (t) {
    case TAG(1, WT_VARINT): GET(m.id); break;
    case TAG(2, WT_VARINT): GET(m.start); break;
    case TAG(3, WT_VARINT): GET(m.limit); break;
    case TAG(4, WT_VARINT): GET(m.offset); break;
    case TAG(5, WT_VARINT): GET(x); m.file = (int64_t)x; break;
    case TAG(6, WT_VARINT): GET(x); m.build_id = (int64_t)x; break;
    case TAG(7, WT_VARINT): case TAG(8, WT_VARINT):
    case TAG(9, WT_VARINT): case TAG(10, WT_VARINT):
      /* has_functions .. has_inline_frames, in PPROF_HAS_* bit order */
      GET(x);
      if (x)
        m.flags |= 1u << ((t >> 3) - 7);
      else
        m.flags &= ~(1u << ((t >> 3) - 7));
      break;
    default: OTHER("Mapping", 0x7fe);
    }
  }
  if (PPROF_ROOM(v->map, v->nmap, v->capmap, 1))
    return nomem(c);
  v->map[v->nmap++] = m;
  return PPROF_OK;
}

static pprof_rc line(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vline l = {0, 0, 0, 0};
  const uint8_t *at;
  uint64_t t, x;

  while (p < end) {
    at = p;
    GET(t);
    if (t == TAG(1, WT_VARINT)) {
      GET(l.function_id);
    } else if (t == TAG(2, WT_VARINT)) {
      GET(x);
      l.line = (int64_t)x;
    } else if (t == TAG(3, WT_VARINT)) {
      GET(x);
      l.column = (int64_t)x;
    } else {
      OTHER("Line", 0xe);
    }
  }
  if (PPROF_ROOM(v->line, v->nline, v->capline, 1))
    return nomem(c);
  v->line[v->nline++] = l;
  return PPROF_OK;
}

static pprof_rc location(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vlocation l;
  const uint8_t *at, *ss, *se;
  uint64_t t, x;
  pprof_rc rc;

  memset(&l, 0, sizeof l);
  l.line0 = (uint32_t)v->nline;
  while (p < end) {
    at = p;
    GET(t);
    if (t == TAG(1, WT_VARINT)) {
      GET(l.id);
    } else if (t == TAG(2, WT_VARINT)) {
      GET(l.mapping_id);
    } else if (t == TAG(3, WT_VARINT)) {
      GET(l.address);
    } else if (t == TAG(4, WT_LEN)) {
      GET_LEN(ss, se, "Location");
      if ((rc = line(c, ss, se)) != PPROF_OK)
        return rc;
    } else if (t == TAG(5, WT_VARINT)) {
      GET(x);
      l.is_folded = x != 0;
    } else {
      OTHER("Location", 0x3e);
    }
  }
  l.nline = (uint32_t)v->nline - l.line0;
  if (PPROF_ROOM(v->loc, v->nloc, v->caploc, 1))
    return nomem(c);
  v->loc[v->nloc++] = l;
  return PPROF_OK;
}

static pprof_rc function(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  pprof_vfunction fn = {0, 0, 0, 0, 0};
  const uint8_t *at;
  uint64_t t, x;

  while (p < end) {
    at = p;
    GET(t);
    if (t == TAG(1, WT_VARINT)) {
      GET(fn.id);
    } else if (t == TAG(2, WT_VARINT)) {
      GET(x);
      fn.name = (int64_t)x;
    } else if (t == TAG(3, WT_VARINT)) {
      GET(x);
      fn.system_name = (int64_t)x;
    } else if (t == TAG(4, WT_VARINT)) {
      GET(x);
      fn.filename = (int64_t)x;
    } else if (t == TAG(5, WT_VARINT)) {
      GET(x);
      fn.start_line = (int64_t)x;
    } else {
      OTHER("Function", 0x3e);
    }
  }
  if (PPROF_ROOM(v->fn, v->nfn, v->capfn, 1))
    return nomem(c);
  v->fn[v->nfn++] = fn;
  return PPROF_OK;
}

/* One varint field of Profile. */
static pprof_rc profile_scalar(const ctx *c, uint64_t t, uint64_t x) {
  pprof_view *v = c->v;

  switch (t >> 3) {
  case 7: v->drop_frames = (int64_t)x; break;
  case 8: v->keep_frames = (int64_t)x; break;
  case 9:
    if (v->time_seen++)
      return pprof_fail(PPROF_EDECODE, c->err,
                        "concatenated profiles (time_nanos set twice)");
    v->time_nanos = (int64_t)x;
    break;
  case 10: v->duration_nanos = (int64_t)x; break;
  case 12: v->period = (int64_t)x; break;
  default: v->default_sample_type = (int64_t)x; break;
  }
  return PPROF_OK;
}

static pprof_rc profile(const ctx *c, const uint8_t *p, const uint8_t *end) {
  pprof_view *v = c->v;
  const uint8_t *at, *ss, *se;
  uint64_t t, x;
  pprof_rc rc;

  while (p < end) {
    at = p;
    GET(t);
    switch (t) {
    case TAG(1, WT_LEN):
      GET_LEN(ss, se, "Profile");
      if (PPROF_ROOM(v->stype, v->nstype, v->capstype, 1))
        return nomem(c);
      memset(&v->stype[v->nstype], 0, sizeof *v->stype);
      rc = value_type(c, ss, se, &v->stype[v->nstype]);
      v->nstype++;
      break;
    case TAG(2, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = sample(c, ss, se);
      break;
    case TAG(3, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = mapping(c, ss, se);
      break;
    case TAG(4, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = location(c, ss, se);
      break;
    case TAG(5, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = function(c, ss, se);
      break;
    case TAG(6, WT_LEN):
      GET_LEN(ss, se, "Profile");
      if (PPROF_ROOM(v->str, v->nstr, v->capstr, 1))
        return nomem(c);
      v->str[v->nstr].p = (const char *)ss;
      v->str[v->nstr].len = (size_t)(se - ss);
      v->str_bytes += (size_t)(se - ss);
      v->nstr++;
      rc = PPROF_OK;
      break;
    case TAG(7, WT_VARINT): case TAG(8, WT_VARINT): case TAG(9, WT_VARINT):
    case TAG(10, WT_VARINT): case TAG(12, WT_VARINT): case TAG(14, WT_VARINT):
      GET(x);
      rc = profile_scalar(c, t, x);
      break;
    case TAG(11, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = value_type(c, ss, se, &v->period_type);
      break;
    case TAG(13, WT_LEN):
      GET_LEN(ss, se, "Profile");
      rc = packed(c, ss, se, &v->comment, &v->ncomment,
                  &v->capcomment);
      break;
    case TAG(13, WT_VARINT):
      GET(x);
      rc = one(c, x, &v->comment, &v->ncomment, &v->capcomment);
      break;
    default:
      OTHER("Profile", 0x7ffe);
      rc = PPROF_OK;
    }
    if (rc != PPROF_OK)
      return rc;
  }
  return PPROF_OK;
}

static void reset(pprof_view *v) {
  v->nstype = v->ncomment = v->nstr = v->nsample = v->nlocid = 0;
  v->nvalue = v->nlabel = v->nmap = v->nloc = v->nline = v->nfn = 0;
  v->str_bytes = 0;
  memset(&v->period_type, 0, sizeof v->period_type);
  v->drop_frames = v->keep_frames = v->time_nanos = v->duration_nanos = 0;
  v->period = v->default_sample_type = 0;
  v->time_seen = 0;
}

pprof_rc pprof_view_parse(pprof_view *v, const uint8_t *buf, size_t len,
                          char *err) {
  ctx c = {v, buf, err};

  assert(v != NULL && (buf != NULL || len == 0));
  reset(v);
  if (len == 0)
    return pprof_fail(PPROF_EDECODE, err, "empty input");
  /* Every element takes at least one byte, so counts fit in uint32_t. */
  if (len >= UINT32_MAX)
    return pprof_fail(PPROF_EDECODE, err, "protobuf data over 4 GiB");
  return profile(&c, buf, buf + len);
}

pprof_view *pprof_view_new(void) {
  return calloc(1, sizeof(pprof_view));
}

void pprof_view_free(pprof_view *v) {
  if (v == NULL)
    return;
  free(v->stype);
  free(v->comment);
  free(v->str);
  free(v->sample);
  free(v->locid);
  free(v->locix);
  free(v->value);
  free(v->label);
  free(v->map);
  free(v->loc);
  free(v->line);
  free(v->fn);
  pprof_idmap_free(&v->map_ids);
  pprof_idmap_free(&v->fn_ids);
  pprof_idmap_free(&v->loc_ids);
  free(v);
}
