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
*/
#include <assert.h>
#include <stdlib.h>

#include "internal.h"

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct rd {
  const uint8_t *p, *end;
} rd;

typedef struct ctx {
  pprof_view *v;
  const uint8_t *base; /* start of the input, for offsets in messages */
  char *err;
} ctx;

static size_t off(const ctx *c, const uint8_t *p) {
  return (size_t)(p - c->base);
}

static pprof_rc nomem(const ctx *c) {
  return pprof_fail(PPROF_ENOMEM, c->err, "out of memory");
}

static pprof_rc varint_slow(const ctx *c, rd *r, uint64_t *out) {
  const uint8_t *p = r->p;
  uint64_t v = 0;
  int i;

  for (i = 0; i < 10; i++, p++) {
    if (p >= r->end)
      return pprof_fail(PPROF_EDECODE, c->err, "truncated varint at offset %zu",
                        off(c, r->p));
    v |= (uint64_t)(*p & 0x7f) << (7 * i);
    if (*p < 0x80) {
      if (i == 9 && *p > 1)
        return pprof_fail(PPROF_EDECODE, c->err,
                          "varint over 64 bits at offset %zu", off(c, r->p));
      r->p = p + 1;
      *out = v;
      return PPROF_OK;
    }
  }
  return pprof_fail(PPROF_EDECODE, c->err,
                    "varint longer than 10 bytes at offset %zu", off(c, r->p));
}

static inline pprof_rc varint(const ctx *c, rd *r, uint64_t *out) {
  if (r->p < r->end && *r->p < 0x80) {
    *out = *r->p++;
    return PPROF_OK;
  }
  return varint_slow(c, r, out);
}

/* Reads a tag; *field 0 is reported as an error. */
static pprof_rc tag(const ctx *c, rd *r, uint32_t *field, int *wt) {
  const uint8_t *at = r->p;
  uint64_t t;
  pprof_rc rc = varint(c, r, &t);

  if (rc != PPROF_OK)
    return rc;
  if ((t >> 3) == 0 || (t >> 3) > 0x1fffffff)
    return pprof_fail(PPROF_EDECODE, c->err,
                      "invalid field number %llu at offset %zu",
                      (unsigned long long)(t >> 3), off(c, at));
  *field = (uint32_t)(t >> 3);
  *wt = (int)(t & 7);
  return PPROF_OK;
}

static pprof_rc bad_type(const ctx *c, const char *what, int wt,
                         const uint8_t *at) {
  return pprof_fail(PPROF_EDECODE, c->err,
                    "%s at offset %zu: unexpected wire type %d", what,
                    off(c, at), wt);
}

/* A varint field (int64, uint64 or bool). */
static pprof_rc scalar(const ctx *c, rd *r, int wt, const uint8_t *at,
                       const char *what, uint64_t *out) {
  if (wt != WT_VARINT)
    return bad_type(c, what, wt, at);
  return varint(c, r, out);
}

/* A length-delimited field: *sub spans its payload. */
static pprof_rc span(const ctx *c, rd *r, int wt, const uint8_t *at,
                     const char *what, rd *sub) {
  uint64_t n;
  pprof_rc rc;

  if (wt != WT_LEN)
    return bad_type(c, what, wt, at);
  if ((rc = varint(c, r, &n)) != PPROF_OK)
    return rc;
  if (n > (uint64_t)(r->end - r->p))
    return pprof_fail(PPROF_EDECODE, c->err,
                      "%s at offset %zu: length %llu runs past the end "
                      "(%zu bytes left)",
                      what, off(c, at), (unsigned long long)n,
                      (size_t)(r->end - r->p));
  sub->p = r->p;
  sub->end = r->p + n;
  r->p += n;
  return PPROF_OK;
}

static pprof_rc skip(const ctx *c, rd *r, int wt, const uint8_t *at) {
  uint64_t v;
  rd sub;

  switch (wt) {
  case WT_VARINT:
    return varint(c, r, &v);
  case WT_LEN:
    return span(c, r, wt, at, "unknown field", &sub);
  case WT_I64:
  case WT_I32:
    if ((size_t)(r->end - r->p) < (wt == WT_I64 ? 8u : 4u))
      return pprof_fail(PPROF_EDECODE, c->err,
                        "truncated fixed-size field at offset %zu", off(c, at));
    r->p += wt == WT_I64 ? 8 : 4;
    return PPROF_OK;
  default:
    return pprof_fail(PPROF_EDECODE, c->err,
                      "unsupported wire type %d at offset %zu", wt, off(c, at));
  }
}

/* A repeated varint field, packed (WT_LEN) or not: appends to *a. */
static pprof_rc repeated(const ctx *c, rd *r, int wt, const uint8_t *at,
                         const char *what, uint64_t **a, size_t *n,
                         size_t *cap) {
  rd sub;
  uint64_t x;
  pprof_rc rc;

  if (wt == WT_VARINT) {
    if ((rc = varint(c, r, &x)) != PPROF_OK)
      return rc;
    if (PPROF_ROOM(*a, *n, *cap, 1))
      return nomem(c);
    (*a)[(*n)++] = x;
    return PPROF_OK;
  }
  if ((rc = span(c, r, wt, at, what, &sub)) != PPROF_OK)
    return rc;
  /* Each element takes at least one byte: reserve for the worst case once. */
  if (PPROF_ROOM(*a, *n, *cap, (size_t)(sub.end - sub.p)))
    return nomem(c);
  while (sub.p < sub.end) {
    if ((rc = varint(c, &sub, &x)) != PPROF_OK)
      return rc;
    (*a)[(*n)++] = x;
  }
  return PPROF_OK;
}

/* Same for the signed fields; int64 travels as its two's complement. */
static pprof_rc repeated_i64(const ctx *c, rd *r, int wt, const uint8_t *at,
                             const char *what, int64_t **a, size_t *n,
                             size_t *cap) {
  rd sub;
  uint64_t x;
  pprof_rc rc;

  if (wt == WT_VARINT) {
    if ((rc = varint(c, r, &x)) != PPROF_OK)
      return rc;
    if (PPROF_ROOM(*a, *n, *cap, 1))
      return nomem(c);
    (*a)[(*n)++] = (int64_t)x;
    return PPROF_OK;
  }
  if ((rc = span(c, r, wt, at, what, &sub)) != PPROF_OK)
    return rc;
  if (PPROF_ROOM(*a, *n, *cap, (size_t)(sub.end - sub.p)))
    return nomem(c);
  while (sub.p < sub.end) {
    if ((rc = varint(c, &sub, &x)) != PPROF_OK)
      return rc;
    (*a)[(*n)++] = (int64_t)x;
  }
  return PPROF_OK;
}

static pprof_rc value_type(const ctx *c, rd r, pprof_vtype *vt) {
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;

  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f == 1 || f == 2) {
      if ((rc = scalar(c, &r, wt, at, "ValueType field", &x)) != PPROF_OK)
        return rc;
      if (f == 1)
        vt->type = (int64_t)x;
      else
        vt->unit = (int64_t)x;
    } else if ((rc = skip(c, &r, wt, at)) != PPROF_OK) {
      return rc;
    }
  }
  return PPROF_OK;
}

static pprof_rc label(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vlabel *l;
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;

  if (PPROF_ROOM(v->label, v->nlabel, v->caplabel, 1))
    return nomem(c);
  l = &v->label[v->nlabel];
  memset(l, 0, sizeof *l);
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f >= 1 && f <= 4) {
      if ((rc = scalar(c, &r, wt, at, "Label field", &x)) != PPROF_OK)
        return rc;
      if (f == 1)
        l->key = (int64_t)x;
      else if (f == 2)
        l->str = (int64_t)x;
      else if (f == 3)
        l->num = (int64_t)x;
      else
        l->unit = (int64_t)x;
    } else if ((rc = skip(c, &r, wt, at)) != PPROF_OK) {
      return rc;
    }
  }
  v->nlabel++;
  return PPROF_OK;
}

static pprof_rc sample(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vsample s;
  const uint8_t *at;
  uint32_t f = 0;
  int wt = 0;
  pprof_rc rc;

  s.loc0 = (uint32_t)v->nlocid;
  s.val0 = (uint32_t)v->nvalue;
  s.lab0 = (uint32_t)v->nlabel;
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f == 1)
      rc = repeated(c, &r, wt, at, "Sample.location_id", &v->locid,
                    &v->nlocid, &v->caplocid);
    else if (f == 2)
      rc = repeated_i64(c, &r, wt, at, "Sample.value", &v->value, &v->nvalue,
                        &v->capvalue);
    else if (f == 3) {
      rd sub;
      rc = span(c, &r, wt, at, "Sample.label", &sub);
      if (rc == PPROF_OK)
        rc = label(c, sub);
    } else
      rc = skip(c, &r, wt, at);
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

static pprof_rc mapping(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vmapping m;
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;

  memset(&m, 0, sizeof m);
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f < 1 || f > 10) {
      if ((rc = skip(c, &r, wt, at)) != PPROF_OK)
        return rc;
      continue;
    }
    if ((rc = scalar(c, &r, wt, at, "Mapping field", &x)) != PPROF_OK)
      return rc;
    switch (f) {
    case 1: m.id = x; break;
    case 2: m.start = x; break;
    case 3: m.limit = x; break;
    case 4: m.offset = x; break;
    case 5: m.file = (int64_t)x; break;
    case 6: m.build_id = (int64_t)x; break;
    default: /* 7..10: the has_* booleans, in PPROF_HAS_* bit order */
      if (x)
        m.flags |= 1u << (f - 7);
      else
        m.flags &= ~(1u << (f - 7));
      break;
    }
  }
  if (PPROF_ROOM(v->map, v->nmap, v->capmap, 1))
    return nomem(c);
  v->map[v->nmap++] = m;
  return PPROF_OK;
}

static pprof_rc line(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vline *l;
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;

  if (PPROF_ROOM(v->line, v->nline, v->capline, 1))
    return nomem(c);
  l = &v->line[v->nline];
  memset(l, 0, sizeof *l);
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f >= 1 && f <= 3) {
      if ((rc = scalar(c, &r, wt, at, "Line field", &x)) != PPROF_OK)
        return rc;
      if (f == 1)
        l->function_id = x;
      else if (f == 2)
        l->line = (int64_t)x;
      else
        l->column = (int64_t)x;
    } else if ((rc = skip(c, &r, wt, at)) != PPROF_OK) {
      return rc;
    }
  }
  v->nline++;
  return PPROF_OK;
}

static pprof_rc location(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vlocation l;
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;
  rd sub;

  memset(&l, 0, sizeof l);
  l.line0 = (uint32_t)v->nline;
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f == 4) {
      if ((rc = span(c, &r, wt, at, "Location.line", &sub)) != PPROF_OK ||
          (rc = line(c, sub)) != PPROF_OK)
        return rc;
    } else if (f == 1 || f == 2 || f == 3 || f == 5) {
      if ((rc = scalar(c, &r, wt, at, "Location field", &x)) != PPROF_OK)
        return rc;
      if (f == 1)
        l.id = x;
      else if (f == 2)
        l.mapping_id = x;
      else if (f == 3)
        l.address = x;
      else
        l.is_folded = x != 0;
    } else if ((rc = skip(c, &r, wt, at)) != PPROF_OK) {
      return rc;
    }
  }
  l.nline = (uint32_t)v->nline - l.line0;
  if (PPROF_ROOM(v->loc, v->nloc, v->caploc, 1))
    return nomem(c);
  v->loc[v->nloc++] = l;
  return PPROF_OK;
}

static pprof_rc function(const ctx *c, rd r) {
  pprof_view *v = c->v;
  pprof_vfunction fn;
  const uint8_t *at;
  uint32_t f = 0;
  uint64_t x;
  int wt = 0;
  pprof_rc rc;

  memset(&fn, 0, sizeof fn);
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(c, &r, &f, &wt)) != PPROF_OK)
      return rc;
    if (f < 1 || f > 5) {
      if ((rc = skip(c, &r, wt, at)) != PPROF_OK)
        return rc;
      continue;
    }
    if ((rc = scalar(c, &r, wt, at, "Function field", &x)) != PPROF_OK)
      return rc;
    switch (f) {
    case 1: fn.id = x; break;
    case 2: fn.name = (int64_t)x; break;
    case 3: fn.system_name = (int64_t)x; break;
    case 4: fn.filename = (int64_t)x; break;
    default: fn.start_line = (int64_t)x; break;
    }
  }
  if (PPROF_ROOM(v->fn, v->nfn, v->capfn, 1))
    return nomem(c);
  v->fn[v->nfn++] = fn;
  return PPROF_OK;
}

/* One top-level field of Profile whose tag has been read. */
static pprof_rc profile_field(const ctx *c, rd *r, uint32_t f, int wt,
                              const uint8_t *at) {
  pprof_view *v = c->v;
  pprof_rc rc;
  uint64_t x;
  rd sub;

  switch (f) {
  case 1:
    if ((rc = span(c, r, wt, at, "Profile.sample_type", &sub)) != PPROF_OK)
      return rc;
    if (PPROF_ROOM(v->stype, v->nstype, v->capstype, 1))
      return nomem(c);
    memset(&v->stype[v->nstype], 0, sizeof *v->stype);
    if ((rc = value_type(c, sub, &v->stype[v->nstype])) != PPROF_OK)
      return rc;
    v->nstype++;
    return PPROF_OK;
  case 2:
    if ((rc = span(c, r, wt, at, "Profile.sample", &sub)) != PPROF_OK)
      return rc;
    return sample(c, sub);
  case 3:
    if ((rc = span(c, r, wt, at, "Profile.mapping", &sub)) != PPROF_OK)
      return rc;
    return mapping(c, sub);
  case 4:
    if ((rc = span(c, r, wt, at, "Profile.location", &sub)) != PPROF_OK)
      return rc;
    return location(c, sub);
  case 5:
    if ((rc = span(c, r, wt, at, "Profile.function", &sub)) != PPROF_OK)
      return rc;
    return function(c, sub);
  case 6:
    if ((rc = span(c, r, wt, at, "Profile.string_table", &sub)) != PPROF_OK)
      return rc;
    if (PPROF_ROOM(v->str, v->nstr, v->capstr, 1))
      return nomem(c);
    v->str[v->nstr].p = (const char *)sub.p;
    v->str[v->nstr].len = (size_t)(sub.end - sub.p);
    v->str_bytes += v->str[v->nstr].len;
    v->nstr++;
    return PPROF_OK;
  case 11:
    if ((rc = span(c, r, wt, at, "Profile.period_type", &sub)) != PPROF_OK)
      return rc;
    return value_type(c, sub, &v->period_type);
  case 13:
    return repeated_i64(c, r, wt, at, "Profile.comment", &v->comment,
                        &v->ncomment, &v->capcomment);
  case 7: case 8: case 9: case 10: case 12: case 14:
    if ((rc = scalar(c, r, wt, at, "Profile field", &x)) != PPROF_OK)
      return rc;
    switch (f) {
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
  default:
    return skip(c, r, wt, at);
  }
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
  rd r = {buf, buf + len};
  const uint8_t *at;
  uint32_t f = 0;
  int wt = 0;
  pprof_rc rc;

  assert(v != NULL && (buf != NULL || len == 0));
  reset(v);
  if (len == 0)
    return pprof_fail(PPROF_EDECODE, err, "empty input");
  /* Every element takes at least one byte, so counts fit in uint32_t. */
  if (len >= UINT32_MAX)
    return pprof_fail(PPROF_EDECODE, err, "protobuf data over 4 GiB");
  while (r.p < r.end) {
    at = r.p;
    if ((rc = tag(&c, &r, &f, &wt)) != PPROF_OK ||
        (rc = profile_field(&c, &r, f, wt, at)) != PPROF_OK)
      return rc;
  }
  return PPROF_OK;
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
