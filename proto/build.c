/*
** build.c — pprof_builder: a real pprof profile made from call stacks given
** as frame names (the folded and lines formats of Pyroscope's /ingest, and
** any other door whose input is stacks rather than a pprof).
**
** Every distinct (name, file) is one Function, every distinct (function,
** line) one Location with one Line, every distinct stack one Sample whose
** values are the sums of what was added for it.  Ids are 1 + the index, in
** first-seen order, so the same input gives the same bytes.
**
** Invariants:
**   - string 0 is "", strings are unique (str_idx indexes every one);
**   - fn.idx, loc.idx and smp_idx index every function, location and
**     sample by their key; a sample's key is its location sequence;
**   - val holds nstype values per sample, in sample order;
**   - held is what is taken from the budget: the capacity of every array
**     and hash table, in bytes, rounded up by charge() after each growth.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "pbwire.h"

#define MAX_STYPES 8

typedef struct bstr {
  size_t off, len;
} bstr;

/* A function (a = name, b = file) or a location (a = function, b =
** line), indexed by the pair. */
typedef struct bpair {
  uint32_t a;
  int64_t b;
} bpair;

typedef struct bpairs {
  bpair *v;
  size_t n, cap;
  pprof_htab idx;
  uint64_t seed; /* tells the two tables' hashes apart */
} bpairs;

typedef struct bsample {
  size_t loc0;
  uint32_t nloc;
} bsample;

struct pprof_builder {
  budget *bud;
  size_t held;
  char *chars;
  size_t nchars, capchars;
  bstr *str;
  size_t nstr, capstr;
  pprof_htab str_idx;
  bpairs fn, loc;
  bsample *smp;
  size_t nsmp, capsmp;
  pprof_htab smp_idx;
  uint32_t *locs; /* each sample's locations, leaf first */
  size_t nlocs, caplocs;
  int64_t *val;
  size_t nval, capval;
  uint32_t stype[MAX_STYPES][2];
  size_t nstype;
  uint32_t ptype[2];
  int64_t period, time_nanos, duration_nanos;
};

/* Takes from the budget what the arrays and tables now occupy (called
** after any may have grown; the sum is cheap next to a reservation). */
static pprof_rc charge(pprof_builder *b) {
  size_t now = b->capchars + b->capstr * sizeof(bstr) +
               (b->fn.cap + b->loc.cap) * sizeof(bpair) +
               b->capsmp * sizeof(bsample) + b->caplocs * sizeof(uint32_t) +
               b->capval * sizeof(int64_t);
  const pprof_htab *t[] = {&b->str_idx, &b->fn.idx, &b->loc.idx, &b->smp_idx};
  for (size_t i = 0; i < 4; i++)
    if (t[i]->slot != NULL)
      now += (t[i]->mask + 1) * sizeof(pprof_htab_slot);
  if (now <= b->held)
    return PPROF_OK;
  if (budget_reserve(b->bud, now - b->held) != 0)
    return PPROF_EBUSY;
  b->held = now;
  return PPROF_OK;
}

pprof_builder *pprof_builder_new(budget *bud) {
  pprof_builder *b = calloc(1, sizeof *b);
  if (b == NULL)
    return NULL;
  b->bud = bud;
  b->loc.seed = 1;
  /* string 0 is "" (pprof's rule); room for it cannot be short */
  if (PPROF_ROOM(b->str, b->nstr, b->capstr, 1) ||
      pprof_htab_reserve(&b->str_idx, 1) || charge(b) != PPROF_OK) {
    pprof_builder_free(b);
    return NULL;
  }
  b->str[0].off = 0;
  b->str[0].len = 0;
  b->nstr = 1;
  pprof_htab_insert(&b->str_idx, pprof_htab_start(&b->str_idx,
                                                  pprof_hash_bytes("", 0)),
                    pprof_hash_bytes("", 0), 0);
  return b;
}

void pprof_builder_free(pprof_builder *b) {
  if (b == NULL)
    return;
  free(b->chars);
  free(b->str);
  free(b->fn.v);
  free(b->loc.v);
  free(b->smp);
  free(b->locs);
  free(b->val);
  pprof_htab_free(&b->str_idx);
  pprof_htab_free(&b->fn.idx);
  pprof_htab_free(&b->loc.idx);
  pprof_htab_free(&b->smp_idx);
  budget_release(b->bud, b->held);
  free(b);
}

pprof_rc pprof_builder_reserve(pprof_builder *b, size_t stacks,
                               size_t frames, size_t distinct, size_t bytes) {
  size_t nt = b->nstype ? b->nstype : 2;
  assert(b != NULL);
  if (PPROF_ROOM(b->chars, b->nchars, b->capchars, bytes) ||
      PPROF_ROOM(b->str, b->nstr, b->capstr, distinct) ||
      PPROF_ROOM(b->fn.v, b->fn.n, b->fn.cap, distinct) ||
      PPROF_ROOM(b->loc.v, b->loc.n, b->loc.cap, distinct) ||
      PPROF_ROOM(b->locs, b->nlocs, b->caplocs, frames) ||
      PPROF_ROOM(b->smp, b->nsmp, b->capsmp, stacks) ||
      PPROF_ROOM(b->val, b->nval, b->capval, stacks * nt) ||
      pprof_htab_reserve(&b->str_idx, b->nstr + distinct) ||
      pprof_htab_reserve(&b->fn.idx, b->fn.n + distinct) ||
      pprof_htab_reserve(&b->loc.idx, b->loc.n + distinct) ||
      pprof_htab_reserve(&b->smp_idx, b->nsmp + stacks))
    return PPROF_ENOMEM;
  return charge(b);
}

/* The index of string p[0..len) in *ix, interned if new. */
static pprof_rc intern(pprof_builder *b, const char *p, size_t len,
                       uint32_t *ix) {
  uint32_t h, i;
  size_t pos;

  if (len == 0) {
    *ix = 0;
    return PPROF_OK;
  }
  h = pprof_hash_bytes(p, len);
  pos = pprof_htab_start(&b->str_idx, h);
  while ((i = pprof_htab_next(&b->str_idx, h, &pos)) != PPROF_NONE)
    if (b->str[i].len == len && memcmp(b->chars + b->str[i].off, p, len) == 0) {
      *ix = i;
      return PPROF_OK;
    }
  size_t c0 = b->capstr + b->capchars + b->str_idx.mask;
  if (b->nstr >= UINT32_MAX - 1 ||
      PPROF_ROOM(b->str, b->nstr, b->capstr, 1) ||
      PPROF_ROOM(b->chars, b->nchars, b->capchars, len) ||
      pprof_htab_reserve(&b->str_idx, b->nstr + 1))
    return PPROF_ENOMEM;
  if (b->capstr + b->capchars + b->str_idx.mask != c0 && charge(b) != PPROF_OK)
    return PPROF_EBUSY;
  pos = pprof_htab_start(&b->str_idx, h);
  while (pprof_htab_next(&b->str_idx, h, &pos) != PPROF_NONE) {
  }
  memcpy(b->chars + b->nchars, p, len);
  b->str[b->nstr].off = b->nchars;
  b->str[b->nstr].len = len;
  b->nchars += len;
  pprof_htab_insert(&b->str_idx, pos, h, (uint32_t)b->nstr);
  *ix = (uint32_t)b->nstr++;
  return PPROF_OK;
}

static pprof_rc intern_pair(pprof_builder *b, const char *type,
                            const char *unit, uint32_t out[2]) {
  pprof_rc rc = intern(b, type, strlen(type), &out[0]);
  return rc != PPROF_OK ? rc : intern(b, unit, strlen(unit), &out[1]);
}

pprof_rc pprof_builder_sample_type(pprof_builder *b, const char *type,
                                   const char *unit) {
  assert(b != NULL && type != NULL && unit != NULL && b->nsmp == 0);
  if (b->nstype >= MAX_STYPES)
    return PPROF_EINVALID;
  pprof_rc rc = intern_pair(b, type, unit, b->stype[b->nstype]);
  if (rc == PPROF_OK)
    b->nstype++;
  return rc;
}

pprof_rc pprof_builder_period(pprof_builder *b, const char *type,
                              const char *unit, int64_t period) {
  assert(b != NULL && type != NULL && unit != NULL);
  pprof_rc rc = intern_pair(b, type, unit, b->ptype);
  if (rc == PPROF_OK)
    b->period = period;
  return rc;
}

void pprof_builder_time(pprof_builder *b, int64_t time_nanos,
                        int64_t duration_nanos) {
  assert(b != NULL);
  b->time_nanos = time_nanos;
  b->duration_nanos = duration_nanos;
}

/* The index of the pair (a, b) in t in *ix, added if new. */
static pprof_rc pair_of(pprof_builder *pb, bpairs *t, uint32_t a, int64_t b,
                        uint32_t *ix) {
  uint32_t h = pprof_hfinal(pprof_hmix(pprof_hmix(t->seed, a), (uint64_t)b)),
           i;
  size_t pos = pprof_htab_start(&t->idx, h);

  if (t->idx.slot != NULL)
    while ((i = pprof_htab_next(&t->idx, h, &pos)) != PPROF_NONE)
      if (t->v[i].a == a && t->v[i].b == b) {
        *ix = i;
        return PPROF_OK;
      }
  size_t c0 = t->cap + t->idx.mask;
  if (t->n >= UINT32_MAX - 1 || PPROF_ROOM(t->v, t->n, t->cap, 1) ||
      pprof_htab_reserve(&t->idx, t->n + 1))
    return PPROF_ENOMEM;
  if (t->cap + t->idx.mask != c0 && charge(pb) != PPROF_OK)
    return PPROF_EBUSY;
  pos = pprof_htab_start(&t->idx, h);
  while (pprof_htab_next(&t->idx, h, &pos) != PPROF_NONE) {
  }
  t->v[t->n].a = a;
  t->v[t->n].b = b;
  pprof_htab_insert(&t->idx, pos, h, (uint32_t)t->n);
  *ix = (uint32_t)t->n++;
  return PPROF_OK;
}

pprof_rc pprof_builder_add(pprof_builder *b, const pprof_frame *frames,
                           size_t n, const int64_t *values,
                           char err[PPROF_ERRMAX]) {
  uint32_t name, file, fn, lx, h, i;
  size_t k, base, pos, c0;
  pprof_rc rc;
  uint64_t hh = 2;

  assert(b != NULL && (frames != NULL || n == 0) && values != NULL);
  if (b->nstype == 0)
    return pprof_fail(PPROF_EINVALID, err, "no sample type");
  if (n == 0)
    return pprof_fail(PPROF_EINVALID, err, "empty stack");
  if (n > UINT32_MAX / 2 || b->nlocs > SIZE_MAX / 2 - n)
    return pprof_fail(PPROF_ETOOBIG, err, "stack too deep");
  /* the stack goes at the end of locs, leaf first; it stays only if it
  ** is a new sample */
  c0 = b->caplocs;
  if (PPROF_ROOM(b->locs, b->nlocs, b->caplocs, n))
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  if (b->caplocs != c0 && (rc = charge(b)) != PPROF_OK)
    return pprof_fail(rc, err, "memory budget exhausted");
  base = b->nlocs;
  for (k = 0; k < n; k++) {
    const pprof_frame *f = &frames[n - 1 - k];
    if (f->name_len == 0)
      return pprof_fail(PPROF_EINVALID, err, "empty frame name");
    if ((rc = intern(b, f->name, f->name_len, &name)) != PPROF_OK ||
        (rc = intern(b, f->file, f->file_len, &file)) != PPROF_OK ||
        (rc = pair_of(b, &b->fn, name, file, &fn)) != PPROF_OK ||
        (rc = pair_of(b, &b->loc, fn, f->line, &lx)) != PPROF_OK)
      return pprof_fail(rc, err, "%s", pprof_strerror(rc));
    b->locs[base + k] = lx;
    hh = pprof_hmix(hh, lx);
  }
  h = pprof_hfinal(hh);
  pos = pprof_htab_start(&b->smp_idx, h);
  if (b->smp_idx.slot != NULL)
    while ((i = pprof_htab_next(&b->smp_idx, h, &pos)) != PPROF_NONE)
      if (b->smp[i].nloc == n &&
          memcmp(b->locs + b->smp[i].loc0, b->locs + base,
                 n * sizeof *b->locs) == 0) {
        for (k = 0; k < b->nstype; k++) /* wraps like Go's int64 */
          b->val[i * b->nstype + k] = (int64_t)(
              (uint64_t)b->val[i * b->nstype + k] + (uint64_t)values[k]);
        return PPROF_OK;
      }
  c0 = b->capsmp + b->capval + b->smp_idx.mask;
  if (b->nsmp >= UINT32_MAX - 1 ||
      PPROF_ROOM(b->smp, b->nsmp, b->capsmp, 1) ||
      PPROF_ROOM(b->val, b->nval, b->capval, b->nstype) ||
      pprof_htab_reserve(&b->smp_idx, b->nsmp + 1))
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  if (b->capsmp + b->capval + b->smp_idx.mask != c0 &&
      (rc = charge(b)) != PPROF_OK)
    return pprof_fail(rc, err, "memory budget exhausted");
  pos = pprof_htab_start(&b->smp_idx, h);
  while (pprof_htab_next(&b->smp_idx, h, &pos) != PPROF_NONE) {
  }
  b->smp[b->nsmp].loc0 = base;
  b->smp[b->nsmp].nloc = (uint32_t)n;
  memcpy(b->val + b->nval, values, b->nstype * sizeof *values);
  b->nval += b->nstype;
  b->nlocs += n;
  pprof_htab_insert(&b->smp_idx, pos, h, (uint32_t)b->nsmp++);
  return PPROF_OK;
}

size_t pprof_builder_count(const pprof_builder *b) {
  assert(b != NULL);
  return b->nsmp;
}

/* ---- encoding ------------------------------------------------------------
**
** The Profile message is written directly in the wire format (profile.proto
** field numbers): the builder's tables are flat and small, and protobuf-c's
** generic packing of a message tree made for it cost more than the rest of
** a text ingest's conversion.  Each nested message's length is computed
** before it is written (vsize, the size of a varint). */

/* Field numbers of profile.proto. */
enum {
  P_SAMPLE_TYPE = 1, P_SAMPLE = 2, P_LOCATION = 4, P_FUNCTION = 5,
  P_STRING_TABLE = 6, P_TIME_NANOS = 9, P_DURATION_NANOS = 10,
  P_PERIOD_TYPE = 11, P_PERIOD = 12
};

static size_t value_type_len(const uint32_t vt[2]) {
  return pbwire_field_size(1, vt[0]) + pbwire_field_size(2, vt[1]);
}

static uint8_t *put_value_type(uint8_t *p, unsigned field,
                               const uint32_t vt[2]) {
  p = pbwire_put_len(p, field, value_type_len(vt));
  return pbwire_put_field(pbwire_put_field(p, 1, vt[0]), 2, vt[1]);
}

/* Payload sizes of sample i's packed location ids and values. */
static void sample_lens(const pprof_builder *b, size_t i, size_t *locs,
                        size_t *vals) {
  size_t k;
  *locs = *vals = 0;
  for (k = 0; k < b->smp[i].nloc; k++)
    *locs += pbwire_vsize((uint64_t)b->locs[b->smp[i].loc0 + k] + 1);
  for (k = 0; k < b->nstype; k++)
    *vals += pbwire_vsize((uint64_t)b->val[i * b->nstype + k]);
}

static size_t sample_len(const pprof_builder *b, size_t i) {
  size_t locs, vals;
  sample_lens(b, i, &locs, &vals);
  return pbwire_msg_size(1, locs) + pbwire_msg_size(2, vals);
}

static size_t line_len(const bpair *l) {
  return pbwire_field_size(1, (uint64_t)l->a + 1) +
         pbwire_field_size(2, (uint64_t)l->b);
}

static size_t location_len(const bpair *l, size_t i) {
  return pbwire_field_size(1, i + 1) + pbwire_msg_size(4, line_len(l));
}

static size_t function_len(const bpair *f, size_t i) {
  return pbwire_field_size(1, i + 1) + 2 * pbwire_field_size(2, f->a) +
         pbwire_field_size(4, (uint64_t)f->b);
}

pprof_rc pprof_builder_encode(const pprof_builder *b, int gzip, void **out,
                              size_t *len, char err[PPROF_ERRMAX]) {
  size_t n = 0, i, k, locs, vals;
  uint8_t *raw, *p;
  pprof_rc rc = PPROF_OK;

  assert(b != NULL && out != NULL && len != NULL);
  if (b->nsmp == 0)
    return pprof_fail(PPROF_EEMPTY, err, "no samples");
  for (i = 0; i < b->nstype; i++)
    n += pbwire_msg_size(P_SAMPLE_TYPE, value_type_len(b->stype[i]));
  for (i = 0; i < b->nsmp; i++)
    n += pbwire_msg_size(P_SAMPLE, sample_len(b, i));
  for (i = 0; i < b->loc.n; i++)
    n += pbwire_msg_size(P_LOCATION, location_len(&b->loc.v[i], i));
  for (i = 0; i < b->fn.n; i++)
    n += pbwire_msg_size(P_FUNCTION, function_len(&b->fn.v[i], i));
  for (i = 0; i < b->nstr; i++)
    n += pbwire_msg_size(P_STRING_TABLE, b->str[i].len);
  n += pbwire_field_size(P_TIME_NANOS, (uint64_t)b->time_nanos) +
       pbwire_field_size(P_DURATION_NANOS, (uint64_t)b->duration_nanos) +
       pbwire_field_size(P_PERIOD, (uint64_t)b->period);
  if (b->ptype[0] != 0 || b->ptype[1] != 0)
    n += pbwire_msg_size(P_PERIOD_TYPE, value_type_len(b->ptype));
  if ((raw = malloc(n)) == NULL)
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  p = raw;
  for (i = 0; i < b->nstype; i++)
    p = put_value_type(p, P_SAMPLE_TYPE, b->stype[i]);
  for (i = 0; i < b->nsmp; i++) {
    sample_lens(b, i, &locs, &vals);
    p = pbwire_put_len(p, P_SAMPLE,
                       pbwire_msg_size(1, locs) + pbwire_msg_size(2, vals));
    p = pbwire_put_len(p, 1, locs);
    for (k = 0; k < b->smp[i].nloc; k++)
      p = pbwire_put_varint(p, (uint64_t)b->locs[b->smp[i].loc0 + k] + 1);
    p = pbwire_put_len(p, 2, vals);
    for (k = 0; k < b->nstype; k++)
      p = pbwire_put_varint(p, (uint64_t)b->val[i * b->nstype + k]);
  }
  for (i = 0; i < b->loc.n; i++) {
    const bpair *l = &b->loc.v[i];
    p = pbwire_put_len(p, P_LOCATION, location_len(l, i));
    p = pbwire_put_field(p, 1, i + 1);
    p = pbwire_put_len(p, 4, line_len(l));
    p = pbwire_put_field(pbwire_put_field(p, 1, (uint64_t)l->a + 1), 2,
                         (uint64_t)l->b);
  }
  for (i = 0; i < b->fn.n; i++) {
    const bpair *f = &b->fn.v[i];
    p = pbwire_put_len(p, P_FUNCTION, function_len(f, i));
    p = pbwire_put_field(p, 1, i + 1);
    p = pbwire_put_field(p, 2, f->a); /* name */
    p = pbwire_put_field(p, 3, f->a); /* system_name */
    p = pbwire_put_field(p, 4, (uint64_t)f->b);
  }
  for (i = 0; i < b->nstr; i++) {
    p = pbwire_put_len(p, P_STRING_TABLE, b->str[i].len);
    if (b->str[i].len > 0)
      memcpy(p, b->chars + b->str[i].off, b->str[i].len);
    p += b->str[i].len;
  }
  p = pbwire_put_field(p, P_TIME_NANOS, (uint64_t)b->time_nanos);
  p = pbwire_put_field(p, P_DURATION_NANOS, (uint64_t)b->duration_nanos);
  if (b->ptype[0] != 0 || b->ptype[1] != 0)
    p = put_value_type(p, P_PERIOD_TYPE, b->ptype);
  p = pbwire_put_field(p, P_PERIOD, (uint64_t)b->period);
  assert((size_t)(p - raw) == n);
  if (!gzip) {
    *out = raw;
    *len = n;
    return PPROF_OK;
  }
  /* a converted profile, compressed once on the ingest path */
  rc = pprof_gzip(raw, n, PPROF_GZIP_FAST, out, len);
  free(raw);
  if (rc != PPROF_OK)
    pprof_fail(rc, err, "%s", pprof_strerror(rc));
  return rc;
}
