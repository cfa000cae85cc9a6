/*
** validate.c — checks a parsed pprof_view the way pprof's CheckValid and
** postDecode do, and resolves its ids to array indices (the invariants
** listed in internal.h).  Every rejection names what is wrong and where.
**
** Id lookups go through pprof_idmap: Go writes ids 1..n in order, which is
** recognised and costs nothing; other id schemes fall back to a dense array
** (ids not much larger than the count) or a hash.
*/
#include <assert.h>
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

enum { IDMAP_IDENTITY, IDMAP_DENSE, IDMAP_HASH };

/* ---- id maps ------------------------------------------------------------ */

static uint64_t hash_id(uint64_t id) {
  return pprof_hmix(0, id);
}

void pprof_idmap_free(pprof_idmap *m) {
  if (m == NULL)
    return;
  free(m->dense);
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

uint32_t pprof_idmap_get(const pprof_idmap *m, uint64_t id) {
  size_t pos;

  if (id == 0)
    return PPROF_NONE;
  switch (m->mode) {
  case IDMAP_IDENTITY:
    return id <= m->n ? (uint32_t)(id - 1) : PPROF_NONE;
  case IDMAP_DENSE:
    /* Not dense_cap: the array is reused, and only [0, dense_max] was
    ** cleared for this profile. */
    return id <= m->dense_max && m->dense[id] ? m->dense[id] - 1 : PPROF_NONE;
  default:
    for (pos = hash_id(id) & (m->hcap - 1); m->keys[pos];
         pos = (pos + 1) & (m->hcap - 1))
      if (m->keys[pos] == id)
        return m->vals[pos];
    return PPROF_NONE;
  }
}

/* Prepares m for the n ids read through ids[k * stride] (byte stride, the
** id being a uint64_t at that place).  On a zero or duplicate id returns
** PPROF_EINVALID with *bad set to it. */
static pprof_rc idmap_build(pprof_idmap *m, const void *base, size_t stride,
                            size_t n, uint64_t *bad) {
  const char *b = base;
  uint64_t id, max = 0;
  size_t i, pos, cap;
  int identity = 1;

  m->n = n;
  for (i = 0; i < n; i++) {
    memcpy(&id, b + i * stride, sizeof id);
    if (id == 0) {
      *bad = 0;
      return PPROF_EINVALID;
    }
    if (id != i + 1)
      identity = 0;
    if (id > max)
      max = id;
  }
  if (identity) {
    m->mode = IDMAP_IDENTITY;
    return PPROF_OK;
  }
  if (max <= 4 * (uint64_t)n + 64) {
    if (pprof_grow(&m->dense, &m->dense_cap, (size_t)max + 1, sizeof *m->dense))
      return PPROF_ENOMEM;
    memset(m->dense, 0, ((size_t)max + 1) * sizeof *m->dense);
    m->mode = IDMAP_DENSE;
    m->dense_max = max;
    for (i = 0; i < n; i++) {
      memcpy(&id, b + i * stride, sizeof id);
      if (m->dense[id]) {
        *bad = id;
        return PPROF_EINVALID;
      }
      m->dense[id] = (uint32_t)i + 1;
    }
    return PPROF_OK;
  }
  m->mode = IDMAP_HASH;
  for (cap = 64; cap < 2 * n; cap *= 2)
    ;
  if (cap > m->hcap) {
    free(m->keys);
    free(m->vals);
    m->keys = malloc(cap * sizeof *m->keys);
    m->vals = malloc(cap * sizeof *m->vals);
    if (m->keys == NULL || m->vals == NULL) {
      m->hcap = 0; /* both freed by pprof_idmap_free */
      return PPROF_ENOMEM;
    }
  }
  m->hcap = cap;
  memset(m->keys, 0, cap * sizeof *m->keys);
  for (i = 0; i < n; i++) {
    memcpy(&id, b + i * stride, sizeof id);
    for (pos = hash_id(id) & (cap - 1); m->keys[pos];
         pos = (pos + 1) & (cap - 1))
      if (m->keys[pos] == id) {
        *bad = id;
        return PPROF_EINVALID;
      }
    m->keys[pos] = id;
    m->vals[pos] = (uint32_t)i;
  }
  return PPROF_OK;
}

static pprof_rc build_ids(pprof_idmap *m, const void *base, size_t stride,
                          size_t n, const char *kind, char *err) {
  uint64_t bad = 0;
  pprof_rc rc = idmap_build(m, base, stride, n, &bad);

  if (rc == PPROF_ENOMEM)
    return pprof_fail(rc, err, "out of memory");
  if (rc != PPROF_OK && bad == 0)
    return pprof_fail(rc, err, "%s with id 0", kind);
  if (rc != PPROF_OK)
    return pprof_fail(rc, err, "duplicate %s id %" PRIu64, kind, bad);
  return PPROF_OK;
}

/* ---- string indices --------------------------------------------------- */

static int str_ok(const pprof_view *v, int64_t ix) {
  return ix >= 0 && (uint64_t)ix < v->nstr;
}

static pprof_rc bad_str(const pprof_view *v, int64_t ix, const char *field,
                        char *err) {
  return pprof_fail(PPROF_EINVALID, err,
                    "string index %" PRId64 " out of range in %s "
                    "(table has %zu strings)",
                    ix, field, v->nstr);
}

#define CHECK_STR(v, ix, field, err)        \
  do {                                      \
    if (!str_ok((v), (ix)))                 \
      return bad_str((v), (ix), field, err); \
  } while (0)

static pprof_rc check_strings(const pprof_view *v, char *err) {
  size_t i;

  for (i = 0; i < v->nstype; i++) {
    CHECK_STR(v, v->stype[i].type, "sample_type.type", err);
    CHECK_STR(v, v->stype[i].unit, "sample_type.unit", err);
  }
  CHECK_STR(v, v->period_type.type, "period_type.type", err);
  CHECK_STR(v, v->period_type.unit, "period_type.unit", err);
  CHECK_STR(v, v->drop_frames, "drop_frames", err);
  CHECK_STR(v, v->keep_frames, "keep_frames", err);
  CHECK_STR(v, v->default_sample_type, "default_sample_type", err);
  for (i = 0; i < v->ncomment; i++)
    CHECK_STR(v, (int64_t)v->comment[i], "comment", err);
  for (i = 0; i < v->nlabel; i++) {
    CHECK_STR(v, v->label[i].key, "sample.label.key", err);
    CHECK_STR(v, v->label[i].str, "sample.label.str", err);
    CHECK_STR(v, v->label[i].unit, "sample.label.num_unit", err);
  }
  for (i = 0; i < v->nmap; i++) {
    CHECK_STR(v, v->map[i].file, "mapping.filename", err);
    CHECK_STR(v, v->map[i].build_id, "mapping.build_id", err);
  }
  for (i = 0; i < v->nfn; i++) {
    CHECK_STR(v, v->fn[i].name, "function.name", err);
    CHECK_STR(v, v->fn[i].system_name, "function.system_name", err);
    CHECK_STR(v, v->fn[i].filename, "function.filename", err);
  }
  return PPROF_OK;
}

/* ---- references -------------------------------------------------------- */

static pprof_rc check_locations(pprof_view *v, char *err) {
  pprof_vlocation *l;
  pprof_vline *ln;
  size_t i, j;
  uint32_t ix;

  for (i = 0; i < v->nloc; i++) {
    l = &v->loc[i];
    l->map = 0;
    if (l->mapping_id != 0) {
      ix = pprof_idmap_get(&v->map_ids, l->mapping_id);
      if (ix == PPROF_NONE)
        return pprof_fail(PPROF_EINVALID, err,
                          "location id %" PRIu64
                          ": unknown mapping id %" PRIu64,
                          l->id, l->mapping_id);
      l->map = ix + 1;
    }
    for (j = 0; j < l->nline; j++) {
      ln = &v->line[l->line0 + j];
      ix = pprof_idmap_get(&v->fn_ids, ln->function_id);
      if (ix == PPROF_NONE)
        return pprof_fail(PPROF_EINVALID, err,
                          "location id %" PRIu64 ": line %zu: unknown "
                          "function id %" PRIu64,
                          l->id, j, ln->function_id);
      ln->fn = ix;
    }
  }
  return PPROF_OK;
}

static pprof_rc check_samples(pprof_view *v, char *err) {
  const pprof_vsample *s;
  size_t i, k;
  uint32_t ix;

  if (v->nsample > 0 && v->nstype == 0)
    return pprof_fail(PPROF_EINVALID, err,
                      "profile has samples but no sample types");
  if (pprof_grow(&v->locix, &v->caplocix, v->nlocid, sizeof *v->locix))
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  for (i = 0; i < v->nsample; i++) {
    s = &v->sample[i];
    if (s->nval != v->nstype)
      return pprof_fail(PPROF_EINVALID, err,
                        "sample %zu has %" PRIu32 " values, expected %zu "
                        "(one per sample type)",
                        i, s->nval, v->nstype);
    for (k = s->loc0; k < (size_t)s->loc0 + s->nloc; k++) {
      if (v->locid[k] == 0)
        return pprof_fail(PPROF_EINVALID, err, "sample %zu: location id 0",
                          i);
      ix = pprof_idmap_get(&v->loc_ids, v->locid[k]);
      if (ix == PPROF_NONE)
        return pprof_fail(PPROF_EINVALID, err,
                          "sample %zu: unknown location id %" PRIu64, i,
                          v->locid[k]);
      v->locix[k] = ix;
    }
  }
  return PPROF_OK;
}

pprof_rc pprof_view_validate(pprof_view *v, char *err) {
  pprof_rc rc;

  assert(v != NULL);
  if (v->nstr == 0)
    return pprof_fail(PPROF_EDECODE, err,
                      "not a pprof profile (no string table)");
  if (v->str[0].len != 0)
    return pprof_fail(PPROF_EINVALID, err, "string_table[0] is not empty");
  if ((rc = check_strings(v, err)) != PPROF_OK)
    return rc;
  if ((rc = build_ids(&v->map_ids, v->map, sizeof *v->map, v->nmap,
                      "mapping", err)) != PPROF_OK ||
      (rc = build_ids(&v->fn_ids, v->fn, sizeof *v->fn, v->nfn, "function",
                      err)) != PPROF_OK ||
      (rc = build_ids(&v->loc_ids, v->loc, sizeof *v->loc, v->nloc,
                      "location", err)) != PPROF_OK)
    return rc;
  if ((rc = check_locations(v, err)) != PPROF_OK)
    return rc;
  return check_samples(v, err);
}
