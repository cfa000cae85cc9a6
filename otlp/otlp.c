/*
** otlp.c — OTLP profiles (v1development) to pprof; see otlp.h for the
** mapping of the tables.
**
** The request is read in place by the wire reader below, not unpacked by
** protobuf-c (whose allocation per message and pointer array made the
** door cost twice the CPU of profefe's API for the same profile):
**   1. the dictionary: one walk counts each table's entries, a second
**      records where each one is (a span of the input), then each entry
**      is decoded into an array of small structs (the lines and stack
**      indices in shared arrays); strings stay in the input;
**   2. validate_request checks every other message (resources, scopes,
**      profiles, samples), so a malformed request is refused before any
**      profile is handed over;
**   3. each profile: its samples decoded into an array, then two passes:
**      a. check every index against its table and number, in order of
**         first use, the strings, mappings, functions and locations the
**         profile reaches (the marks);
**      b. write pprof's wire format directly into one buffer of its exact
**         size (every message's size computed first).
** Memory: all of it in arenas (bump allocation in chunks taken from the
** budget, at most max_mem each): the request's (the tables, the marks)
** and one profile's, emptied after it.
** Invariants: a mark holds (generation << 32 | id); a mark of another
** generation is unset, so the marks need no clearing between profiles.
** Ids are 1-based in order of first use; string 0 is always "".
*/
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "otlp.h"
#include "otlp.pb-c.h"
#include "pbwire.h"
#include "pprof.h"

/* ---- arenas: bump allocation, bounded and budgeted -------------------------
**
** An arena hands out slices of chunks it takes from the budget and frees
** nothing until arena_reset: a request's tables and a profile's pprof are
** a few hundred allocations, each freed at once. */

#define ARENA_ALIGN 16
#define ARENA_MIN ((size_t)16 << 10)   /* first chunk; doubling to ARENA_MAX */
#define ARENA_MAX ((size_t)1 << 20)

typedef struct chunk {
  struct chunk *next;
  size_t size, used;                  /* bytes of data[] */
  _Alignas(ARENA_ALIGN) unsigned char data[];
} chunk;

typedef struct arena {
  budget *b;
  size_t held, max;             /* bytes of chunks (taken from b); bound */
  chunk *head;                  /* the chunk being filled, then older ones */
  otlp_rc fail;                 /* why an allocation failed; OTLP_OK: none did */
} arena;

static void *arena_alloc(void *data, size_t n) {
  arena *a = data;
  chunk *c = a->head;
  size_t size;

  n = (n + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
  if (c == NULL || c->size - c->used < n) {
    size = c == NULL ? ARENA_MIN : c->size * 2;
    if (size > ARENA_MAX) size = ARENA_MAX;
    if (size < n) size = n;
    if (n > a->max || a->held + size > a->max) {
      a->fail = OTLP_ETOOBIG;
      return NULL;
    }
    if (budget_reserve(a->b, size) != 0) {
      a->fail = OTLP_EBUSY;
      return NULL;
    }
    if ((c = malloc(sizeof *c + size)) == NULL) {
      budget_release(a->b, size);
      a->fail = OTLP_ENOMEM;
      return NULL;
    }
    a->held += size;
    c->size = size;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  c->used += n;
  return c->data + c->used - n;
}

/* Frees every chunk and gives the memory back to the budget. */
static void arena_reset(arena *a) {
  chunk *c, *next;
  for (c = a->head; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
  a->head = NULL;
  budget_release(a->b, a->held);
  a->held = 0;
}

/* calloc through the arena (arrays of n elements of size sz). */
static void *arena_calloc(arena *a, size_t n, size_t sz) {
  void *p;
  if (n == 0) n = 1;
  if (sz != 0 && n > SIZE_MAX / sz / 2) {
    a->fail = OTLP_ETOOBIG;
    return NULL;
  }
  if ((p = arena_alloc(a, n * sz)) != NULL) memset(p, 0, n * sz);
  return p;
}

/* ---- the wire reader -----------------------------------------------------
**
** The request is read in place: a message is a span of the input, parsed
** field by field when it is needed (a dictionary entry when a profile
** first reaches it, a sample in each pass).  It accepts what protobuf
** accepts: fields in any order, unknown fields (skipped), packed or
** unpacked repeated scalars (even mixed), repeated occurrences of a
** singular message (merged, field by field).  It rejects groups, unknown
** wire types, field number 0, wrong wire types for the fields otlp.proto
** declares, varints over 10 bytes or 64 bits, and lengths or fixed values
** past the end.  validate_request walks the whole request once before any
** profile is converted, so a malformed request stores nothing; the
** parsers called later cannot fail on it (they still say so if they do). */

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

typedef struct span {
  const uint8_t *s, *e;
} span;

/* s up to its first NUL byte (as text it ends there).  An empty span may
** be (NULL, NULL), which memchr must not be given. */
static span span_text(span s) {
  const uint8_t *z;
  if (s.s != s.e && (z = memchr(s.s, 0, (size_t)(s.e - s.s))) != NULL)
    s.e = z;
  return s;
}

/* A reader: the rest of a message. */
typedef struct rd {
  const uint8_t *p, *end;
} rd;

/* One field: its number, wire type, and value (a varint, or a fixed one
** in host order) or payload. */
typedef struct fld {
  uint32_t num, wt;
  uint64_t v;
  span b;
} fld;

static rd rd_of(span m) {
  rd r = { m.s, m.e };
  return r;
}

static __attribute__((noinline)) int varint_long(rd *r, uint64_t *v) {
  const uint8_t *p = r->p;
  uint64_t x = 0;
  for (int i = 0; i < 10 && p + i < r->end; i++) {
    x |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (p[i] < 0x80) {
      if (i == 9 && p[i] > 1) return -1;   /* over 64 bits */
      *v = x;
      r->p = p + i + 1;
      return 0;
    }
  }
  return -1;   /* truncated, or over 10 bytes */
}

static inline int get_varint(rd *r, uint64_t *v) {
  if (r->p < r->end && *r->p < 0x80) {
    *v = *r->p++;
    return 0;
  }
  return varint_long(r, v);
}

static uint64_t le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

/* The next field of r: 1 with f filled, 0 at the end, -1 malformed. */
static inline __attribute__((always_inline)) int next_field(rd *r,
                                                          fld *f) {
  uint64_t tag, n;

  if (r->p >= r->end) return 0;
  if (get_varint(r, &tag) != 0 || tag >> 3 == 0 || tag >> 3 > 0x1fffffff)
    return -1;
  f->num = (uint32_t)(tag >> 3);
  f->wt = (uint32_t)(tag & 7);
  switch (f->wt) {
  case WT_VARINT:
    return get_varint(r, &f->v) == 0 ? 1 : -1;
  case WT_I64:
    if (r->end - r->p < 8) return -1;
    f->v = le64(r->p);
    r->p += 8;
    return 1;
  case WT_I32:
    if (r->end - r->p < 4) return -1;
    f->v = 0;
    r->p += 4;
    return 1;
  case WT_LEN:
    if (get_varint(r, &n) != 0 || n > (uint64_t)(r->end - r->p)) return -1;
    f->b.s = r->p;
    f->b.e = r->p + n;
    r->p += n;
    return 1;
  default:
    return -1;   /* groups, wire types 6 and 7 */
  }
}

/* The values of a repeated scalar field of a message, packed runs and
** single values alike, in order; fixed: fixed64 rather than varints. */
typedef struct vals {
  rd m, run;
  uint64_t one;
  int has_one, fixed;
  uint32_t num;
} vals;

static void vals_init(vals *it, span m, uint32_t num, int fixed) {
  it->m = rd_of(m);
  it->run.p = it->run.end = NULL;
  it->has_one = 0;
  it->fixed = fixed;
  it->num = num;
}

/* 1 with *v the next value, 0 at the end, -1 malformed. */
static int vals_next(vals *it, uint64_t *v) {
  fld f;
  int rc;

  for (;;) {
    if (it->has_one) {
      it->has_one = 0;
      *v = it->one;
      return 1;
    }
    if (it->run.p < it->run.end) {
      if (!it->fixed) return get_varint(&it->run, v) == 0 ? 1 : -1;
      if (it->run.end - it->run.p < 8) return -1;
      *v = le64(it->run.p);
      it->run.p += 8;
      return 1;
    }
    if ((rc = next_field(&it->m, &f)) <= 0) return rc;
    if (f.num != it->num) continue;
    if (f.wt == WT_LEN) {
      it->run = rd_of(f.b);
    } else if (f.wt == (it->fixed ? WT_I64 : WT_VARINT)) {
      it->one = f.v;
      it->has_one = 1;
    } else {
      return -1;
    }
  }
}

/* The number of varints of packed run m, or -1 when one is malformed. */
static ptrdiff_t varint_count(span m) {
  rd r = rd_of(m);
  uint64_t x;
  ptrdiff_t n;
  for (n = 0; r.p < r.end; n++)
    if (get_varint(&r, &x) != 0) return -1;
  return n;
}

/* The next occurrence of message field num in r: 1 with *m its payload, 0
** at the end, -1 malformed (or of another wire type). */
static int next_msg(rd *r, uint32_t num, span *m) {
  fld f;
  int rc;

  while ((rc = next_field(r, &f)) == 1) {
    if (f.num != num) continue;
    if (f.wt != WT_LEN) return -1;
    *m = f.b;
    return 1;
  }
  return rc;
}

/* The wire type a declared field must have, or fail. */
#define WANT(w) \
  do { if (f.wt != (w)) return -1; } while (0)

/* Walks the fields of m into local f, failing on a malformed one. */
#define FIELDS(m)                                                     \
  for (rd r_ = rd_of(m); (rc_ = next_field(&r_, &f)) != 0;)           \
    if (rc_ < 0) return -1; else

/* ---- the messages ---------------------------------------------------------- */

enum { AV_NONE = 0, AV_STRING = 1, AV_BOOL = 2, AV_INT = 3, AV_DOUBLE = 4,
       AV_STRINDEX = 8 };

typedef struct anyv {
  int kind;              /* the oneof's case (its field number), or AV_NONE */
  int64_t i;             /* AV_BOOL, AV_INT */
  double d;
  int32_t strx;
  span s;
} anyv;

/* Merges AnyValue m into a (the last case sent wins, as in protobuf). */
static int parse_any(span m, anyv *a) {
  fld f;
  int rc_;
  FIELDS(m) switch (f.num) {
  case 1: WANT(WT_LEN); a->kind = AV_STRING; a->s = f.b; break;
  case 2: WANT(WT_VARINT); a->kind = AV_BOOL; a->i = f.v != 0; break;
  case 3: WANT(WT_VARINT); a->kind = AV_INT; a->i = (int64_t)f.v; break;
  case 4:
    WANT(WT_I64);
    a->kind = AV_DOUBLE;
    memcpy(&a->d, &f.v, sizeof a->d);
    break;
  case 8: WANT(WT_VARINT); a->kind = AV_STRINDEX; a->strx = (int32_t)f.v; break;
  default: break;
  }
  return 0;
}

/* KeyValueAndUnit (the dictionary's attributes) and KeyValue (the
** resource's): key as an index or as text. */
typedef struct kv {
  int32_t key, unit;
  span keytext;
  anyv v;
} kv;

/* dict: a KeyValueAndUnit (key_strindex 1, unit_strindex 3), else a
** KeyValue (key 1 as text, key_strindex 3). */
static int parse_kv(span m, kv *k, int dict) {
  fld f;
  int rc_;
  memset(k, 0, sizeof *k);
  FIELDS(m) switch (f.num) {
  case 1:
    WANT(dict ? WT_VARINT : WT_LEN);
    if (dict) k->key = (int32_t)f.v;
    else k->keytext = f.b;
    break;
  case 2: WANT(WT_LEN); if (parse_any(f.b, &k->v) != 0) return -1; break;
  case 3:
    WANT(WT_VARINT);
    if (dict) k->unit = (int32_t)f.v;
    else k->key = (int32_t)f.v;
    break;
  default: break;
  }
  return 0;
}

/* Reads message m whose fields 1..n are all varints (the others unknown,
** skipped) into v[0..n-1], the last occurrence winning; v keeps what it
** held for a field not sent (protobuf's merge). */
static int parse_varints(span m, uint64_t *v, uint32_t n) {
  fld f;
  int rc_;
  FIELDS(m) if (f.num <= n) {
    WANT(WT_VARINT);
    v[f.num - 1] = f.v;
  }
  return 0;
}

typedef struct mapping {
  uint64_t start, limit, offset;
  int32_t filename;
} mapping;

static int parse_mapping(span m, mapping *o) {
  uint64_t v[4] = { 0 };
  if (parse_varints(m, v, 4) != 0) return -1;
  o->start = v[0];
  o->limit = v[1];
  o->offset = v[2];
  o->filename = (int32_t)v[3];
  return 0;
}

typedef struct function {
  int32_t name, system_name, filename;
  int64_t start_line;
} function;

static int parse_function(span m, function *o) {
  uint64_t v[4] = { 0 };
  if (parse_varints(m, v, 4) != 0) return -1;
  o->name = (int32_t)v[0];
  o->system_name = (int32_t)v[1];
  o->filename = (int32_t)v[2];
  o->start_line = (int64_t)v[3];
  return 0;
}

typedef struct line {
  int32_t function;
  int64_t line;
} line;

/* Its column (field 3) is checked, not kept: pprof has none here. */
static int parse_line(span m, line *o) {
  uint64_t v[3] = { 0 };
  if (parse_varints(m, v, 3) != 0) return -1;
  o->function = (int32_t)v[0];
  o->line = (int64_t)v[1];
  return 0;
}

typedef struct location {
  span m;                /* for its lines (field 3) */
  int32_t mapping;
  uint64_t address;
  size_t nlines;
  size_t line0;          /* its first line in conv's lines */
} location;

/* Counts its lines (decoded by the caller). */
static int parse_location(span m, location *o) {
  fld f;
  int rc_;
  memset(o, 0, sizeof *o);
  o->m = m;
  FIELDS(m) switch (f.num) {
  case 1: WANT(WT_VARINT); o->mapping = (int32_t)f.v; break;
  case 2: WANT(WT_VARINT); o->address = f.v; break;
  case 3: WANT(WT_LEN); o->nlines++; break;
  default: break;
  }
  return 0;
}

/* Merges ValueType m into type and unit. */
static int parse_value_type(span m, int32_t vt[2]) {
  uint64_t v[2] = { (uint32_t)vt[0], (uint32_t)vt[1] };
  if (parse_varints(m, v, 2) != 0) return -1;
  vt[0] = (int32_t)v[0];
  vt[1] = (int32_t)v[1];
  return 0;
}

typedef struct sample {
  span m;                /* for its attribute_indices (field 2) */
  size_t attr0;          /* its first attribute index in conv's sattr */
  int32_t stack;
  size_t nvalues, nts, nattrs;
  int64_t sum;           /* of the values, when !overflow */
  int overflow;
} sample;

static int parse_sample(span m, sample *o) {
  fld f;
  int rc_;
  memset(o, 0, sizeof *o);
  o->m = m;
  FIELDS(m) switch (f.num) {
  case 1: WANT(WT_VARINT); o->stack = (int32_t)f.v; break;
  case 2:
    if (f.wt == WT_VARINT) {
      o->nattrs++;
    } else {
      ptrdiff_t n;
      WANT(WT_LEN);
      if ((n = varint_count(f.b)) < 0) return -1;
      o->nattrs += (size_t)n;
    }
    break;
  case 4: {
    rd run;
    uint64_t x;
    if (f.wt == WT_VARINT) {
      run.p = run.end = NULL;
      x = f.v;
      goto add;
    }
    WANT(WT_LEN);
    run = rd_of(f.b);
    while (run.p < run.end) {
      if (get_varint(&run, &x) != 0) return -1;
    add:
      o->nvalues++;
      if (__builtin_add_overflow(o->sum, (int64_t)x, &o->sum)) o->overflow = 1;
    }
    break;
  }
  case 5:
    if (f.wt == WT_I64) { o->nts++; break; }
    WANT(WT_LEN);
    if ((f.b.e - f.b.s) % 8 != 0) return -1;
    o->nts += (size_t)(f.b.e - f.b.s) / 8;
    break;
  default: break;
  }
  return 0;
}

typedef struct profile {
  span m;
  int32_t st[2], pt[2];  /* sample and period types: type, unit */
  int has_pt;
  uint64_t time, duration;
  int64_t period;
  size_t nsamples, nattrs;
} profile;

/* deep: also checks every sample. */
static int parse_profile(span m, profile *o, int deep) {
  fld f;
  sample s;
  int rc_;
  memset(o, 0, sizeof *o);
  o->m = m;
  FIELDS(m) switch (f.num) {
  case 1: WANT(WT_LEN); if (parse_value_type(f.b, o->st) != 0) return -1; break;
  case 2:
    WANT(WT_LEN);
    if (deep && parse_sample(f.b, &s) != 0) return -1;
    o->nsamples++;
    break;
  case 3: WANT(WT_I64); o->time = f.v; break;
  case 4: WANT(WT_VARINT); o->duration = f.v; break;
  case 5:
    WANT(WT_LEN);
    o->has_pt = 1;
    if (parse_value_type(f.b, o->pt) != 0) return -1;
    break;
  case 6: WANT(WT_VARINT); o->period = (int64_t)f.v; break;
  case 11:   /* attribute_indices: read with vals */
    if (f.wt == WT_VARINT) {
      o->nattrs++;
    } else {
      ptrdiff_t n;
      WANT(WT_LEN);
      if ((n = varint_count(f.b)) < 0) return -1;
      o->nattrs += (size_t)n;
    }
    break;
  default: break;
  }
  return 0;
}

/* ---- conversion state ------------------------------------------------------ */

typedef struct table {
  size_t n;            /* entries in the dictionary's table */
  span *ent;           /* each entry's bytes */
  uint64_t *mark;      /* per entry: generation << 32 | id */
  uint32_t *order;     /* id - 1 -> entry, for the ids given this profile */
  uint32_t used;       /* ids given this profile */
} table;

/* A label of pprof, one per attribute used (by its id - 1). */
typedef struct label {
  int64_t key, str, num, num_unit;
} label;

typedef struct conv {
  arena *a;            /* the request's: the tables, the marks */
  arena *p;            /* one profile's conversion, reset after each */
  table str, map, fn, loc, attr, stk;
  /* the dictionary decoded (in a), by table index */
  mapping *maps;
  function *fns;
  location *locs;
  line *lines;         /* the locations' lines, each location's in a run */
  kv *kvs;
  size_t *stk0;        /* per stack: its first location index in stkidx */
  size_t *stkn;        /* and their number */
  int32_t *stkidx;
  /* the profile being converted (in p) */
  sample *smp;
  size_t nsmp;
  int32_t *sattr;      /* the samples' attribute indices, each's in a run */
  uint8_t *mflags;     /* per mapping: MF_* of the locations using it */
  uint32_t gen;
  size_t overflow_at;  /* the first sample whose values overflow, or SIZE_MAX */
  char *err;           /* OTLP_ERRMAX, the reason a profile is refused */
} conv;

enum { MF_SYMBOLIZED = 1, MF_INLINE = 2 };

/* Makes t's arrays for its n entries (counted by the caller). */
static int table_alloc(conv *c, table *t) {
  size_t n = t->n ? t->n : 1;
  if (n > SIZE_MAX / 32) {
    c->a->fail = OTLP_ETOOBIG;
    return -1;
  }
  t->ent = arena_alloc(c->a, n * sizeof *t->ent);
  t->mark = arena_calloc(c->a, n, sizeof *t->mark);
  t->order = arena_alloc(c->a, n * sizeof *t->order);
  return t->ent != NULL && t->mark != NULL && t->order != NULL ? 0 : -1;
}

static int table_marked(const conv *c, const table *t, size_t i) {
  return (uint32_t)(t->mark[i] >> 32) == c->gen;
}

/* The id of entry i this profile, giving it the next one on first use. */
static uint32_t table_mark(conv *c, table *t, size_t i) {
  if (table_marked(c, t, i)) return (uint32_t)t->mark[i];
  t->order[t->used] = (uint32_t)i;
  t->used++;
  t->mark[i] = (uint64_t)c->gen << 32 | t->used;
  return t->used;
}

/* The id entry i was given this profile (it has one). */
static uint32_t table_id(const table *t, size_t i) {
  return (uint32_t)t->mark[i];
}

static int bad(conv *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int bad(conv *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->err, OTLP_ERRMAX, fmt, ap);
  va_end(ap);
  return -1;
}

/* A message that decoded in validate_request and not now: cannot happen,
** but if it did the profile is rejected, not misread.  Returns 1 (see
** one_profile). */
static int undecodable(conv *c, const char *what) {
  bad(c, "%s does not decode", what);
  return 1;
}

/* Checks index i of the named table (of n entries). */
static int check_index(conv *c, int32_t i, size_t n, const char *what) {
  if (i < 0 || (size_t)i >= n)
    return bad(c, "%s index %" PRId32 " outside its table (%zu entries)",
               what, i, n);
  return 0;
}

/* The pprof string id of dictionary string i (0 stays ""). */
static int mark_str(conv *c, int32_t i) {
  if (i == 0) return 0;
  if (check_index(c, i, c->str.n, "string") != 0) return -1;
  table_mark(c, &c->str, (size_t)i);
  return 0;
}

static int64_t str_id(const conv *c, int32_t i) {
  return i == 0 ? 0 : table_id(&c->str, (size_t)i);
}

/* Dictionary string i as bytes up to its first NUL (as text it ends
** there); "" for an index outside the table. */
static span dict_span(const conv *c, int32_t i) {
  span s = { (const uint8_t *)"", (const uint8_t *)"" };
  if (i > 0 && (size_t)i < c->str.n) s = span_text(c->str.ent[i]);
  return s;
}

/* s as a C string in the profile's arena, or NULL. */
static const char *span_str(conv *c, span s) {
  size_t n;
  char *t;
  s = span_text(s);
  n = (size_t)(s.e - s.s);
  if ((t = arena_alloc(c->p, n + 1)) == NULL) return NULL;
  if (n > 0) memcpy(t, s.s, n);
  t[n] = '\0';
  return t;
}

/* ---- pass 1: check and mark ------------------------------------------------ */

static int mark_function(conv *c, int32_t i) {
  const function *f;
  if (check_index(c, i, c->fn.n, "function") != 0) return -1;
  if (table_marked(c, &c->fn, (size_t)i)) return 0;
  f = &c->fns[i];
  if (mark_str(c, f->name) || mark_str(c, f->system_name) ||
      mark_str(c, f->filename))
    return -1;
  table_mark(c, &c->fn, (size_t)i);
  return 0;
}

static int mark_location(conv *c, int32_t i) {
  const location *l;
  if (check_index(c, i, c->loc.n, "location") != 0) return -1;
  if (table_marked(c, &c->loc, (size_t)i)) return 0;
  l = &c->locs[i];
  if (l->mapping != 0) {
    if (check_index(c, l->mapping, c->map.n, "mapping") != 0) return -1;
    if (mark_str(c, c->maps[l->mapping].filename) != 0) return -1;
    if (!table_marked(c, &c->map, (size_t)l->mapping))
      c->mflags[l->mapping] = 0;
    table_mark(c, &c->map, (size_t)l->mapping);
    /* Frames with lines are symbolized: say so, or pprof goes looking
    ** for the binary on the analysis host. */
    if (l->nlines > 0) c->mflags[l->mapping] |= MF_SYMBOLIZED;
    if (l->nlines > 1) c->mflags[l->mapping] |= MF_INLINE;
  }
  for (size_t j = 0; j < l->nlines; j++)
    if (mark_function(c, c->lines[l->line0 + j].function) != 0) return -1;
  table_mark(c, &c->loc, (size_t)i);
  return 0;
}

static int mark_attr(conv *c, int32_t i) {
  const kv *k;
  if (check_index(c, i, c->attr.n, "attribute") != 0) return -1;
  if (table_marked(c, &c->attr, (size_t)i)) return 0;
  k = &c->kvs[i];
  if (mark_str(c, k->key) || mark_str(c, k->unit)) return -1;
  if (k->v.kind == AV_STRINDEX && mark_str(c, k->v.strx) != 0) return -1;
  table_mark(c, &c->attr, (size_t)i);
  return 0;
}

static int check_sample(conv *c, const sample *s, size_t k) {

  if (s->nvalues == 0 && s->nts == 0)
    return bad(c, "sample %zu has neither values nor timestamps", k);
  if (s->nvalues != 0 && s->nts != 0 && s->nvalues != s->nts)
    return bad(c, "sample %zu has %zu values for %zu timestamps", k,
               s->nvalues, s->nts);
  if (check_index(c, s->stack, c->stk.n, "stack") != 0) return -1;
  for (size_t j = 0; j < c->stkn[s->stack]; j++)
    if (mark_location(c, c->stkidx[c->stk0[s->stack] + j]) != 0) return -1;
  for (size_t j = 0; j < s->nattrs; j++)
    if (mark_attr(c, c->sattr[s->attr0 + j]) != 0) return -1;
  if (s->overflow && c->overflow_at == SIZE_MAX) c->overflow_at = k;
  return 0;
}

/* Decodes the samples of p into c->smp and c->sattr (in the profile's
** arena); -1 when it failed. */
static int samples_load(conv *c, const profile *p) {
  size_t k = 0, na = 0;
  span m;
  rd r;

  c->nsmp = p->nsamples;
  if ((c->smp = arena_calloc(c->p, p->nsamples, sizeof *c->smp)) == NULL)
    return -1;
  for (r = rd_of(p->m); k < c->nsmp && next_msg(&r, 2, &m) == 1; k++) {
    parse_sample(m, &c->smp[k]);   /* decoded in validate_request */
    c->smp[k].attr0 = na;
    na += c->smp[k].nattrs;
  }
  if ((c->sattr = arena_calloc(c->p, na, sizeof *c->sattr)) == NULL)
    return -1;
  for (k = 0; k < c->nsmp; k++) {
    vals it;
    uint64_t v;
    size_t j = c->smp[k].attr0;
    if (c->smp[k].nattrs == 0) continue;
    vals_init(&it, c->smp[k].m, 2, 0);
    while (vals_next(&it, &v) == 1) c->sattr[j++] = (int32_t)v;
  }
  return 0;
}

static int check_profile(conv *c, const profile *p) {
  if (p->nsamples == 0) return bad(c, "profile has no samples");
  if (mark_str(c, p->st[0]) || mark_str(c, p->st[1]) ||
      mark_str(c, p->pt[0]) || mark_str(c, p->pt[1]))
    return -1;
  for (size_t k = 0; k < c->nsmp; k++)
    if (check_sample(c, &c->smp[k], k) != 0) return -1;
  /* checked after the indices, as the sums were */
  if (c->overflow_at != SIZE_MAX)
    return bad(c, "sample %zu: the sum of its values overflows",
               c->overflow_at);
  return 0;
}

/* ---- pass 2: write the pprof ----------------------------------------------
**
** pprof's wire format written directly: every message's size is computed
** first (the same helpers as the writing), so the profile is one buffer
** of its exact size.  Fields in number order and zero scalars omitted, as
** protobuf-c packed it. */

enum {
  P_SAMPLE_TYPE = 1, P_SAMPLE = 2, P_MAPPING = 3, P_LOCATION = 4,
  P_FUNCTION = 5, P_STRING_TABLE = 6, P_TIME_NANOS = 9,
  P_DURATION_NANOS = 10, P_PERIOD_TYPE = 11, P_PERIOD = 12
};

/* What pass 2 computes before writing. */
typedef struct wout {
  label *lab;            /* per attribute used */
  span *extra;           /* per attribute used: its value as a string */
  char *text;            /* 32 bytes per attribute used: a double's text */
  uint32_t *loclen;      /* per location used: its message's length */
  size_t *samplen;       /* per sample */
} wout;

static size_t label_len(const label *l) {
  return pbwire_field_size(1, (uint64_t)l->key) +
         pbwire_field_size(2, (uint64_t)l->str) +
         pbwire_field_size(3, (uint64_t)l->num) +
         pbwire_field_size(4, (uint64_t)l->num_unit);
}

static uint8_t *put_label(uint8_t *p, const label *l) {
  p = pbwire_put_len(p, 3, label_len(l));
  p = pbwire_put_field(p, 1, (uint64_t)l->key);
  p = pbwire_put_field(p, 2, (uint64_t)l->str);
  p = pbwire_put_field(p, 3, (uint64_t)l->num);
  return pbwire_put_field(p, 4, (uint64_t)l->num_unit);
}

/* The labels and extra strings of the attributes used. */
static int labels_build(conv *c, wout *o) {
  size_t n = c->attr.used;
  const kv *k;

  o->lab = arena_calloc(c->p, n, sizeof *o->lab);
  o->extra = arena_calloc(c->p, n, sizeof *o->extra);
  o->text = arena_calloc(c->p, n, 32);
  if (o->lab == NULL || o->extra == NULL || o->text == NULL) return -1;
  for (size_t j = 0; j < n; j++) {
    label *l = &o->lab[j];
    char *text = o->text + j * 32;
    /* each attribute used has one extra string, after the dictionary's */
    int64_t sid = 1 + (int64_t)c->str.used + (int64_t)j;
    static const char *const tf[2] = { "false", "true" };

    k = &c->kvs[c->attr.order[j]];
    l->key = str_id(c, k->key);
    o->extra[j].s = o->extra[j].e = (const uint8_t *)"";
    l->str = sid;
    switch (k->v.kind) {
    case AV_INT:
      l->num = k->v.i;
      l->num_unit = str_id(c, k->unit);
      l->str = 0;
      break;
    case AV_STRINDEX:
      l->str = str_id(c, k->v.strx);
      break;
    case AV_STRING:
      o->extra[j] = span_text(k->v.s);
      break;
    case AV_BOOL:
      o->extra[j].s = (const uint8_t *)tf[k->v.i != 0];
      o->extra[j].e = o->extra[j].s + strlen(tf[k->v.i != 0]);
      break;
    case AV_DOUBLE:
      snprintf(text, 32, "%.17g", k->v.d);
      o->extra[j].s = (const uint8_t *)text;
      o->extra[j].e = o->extra[j].s + strlen(text);
      break;
    default:
      break;   /* no value: a label with an empty string */
    }
  }
  return 0;
}

static size_t vt_len(const conv *c, const int32_t vt[2]) {
  return pbwire_field_size(1, (uint64_t)str_id(c, vt[0])) +
         pbwire_field_size(2, (uint64_t)str_id(c, vt[1]));
}

static uint8_t *put_vt(uint8_t *p, const conv *c, unsigned field,
                       const int32_t vt[2]) {
  p = pbwire_put_len(p, field, vt_len(c, vt));
  p = pbwire_put_field(p, 1, (uint64_t)str_id(c, vt[0]));
  return pbwire_put_field(p, 2, (uint64_t)str_id(c, vt[1]));
}

/* The value of a sample: the sum of its values, or its timestamps. */
static uint64_t sample_value(const sample *s) {
  return s->nvalues ? (uint64_t)s->sum : (uint64_t)s->nts;
}

static size_t sample_locs_len(const conv *c, const sample *s) {
  const int32_t *ix = c->stkidx + c->stk0[s->stack];
  size_t n = 0;
  for (size_t j = 0; j < c->stkn[s->stack]; j++)
    n += pbwire_vsize(table_id(&c->loc, (size_t)ix[j]));
  return n;
}

/* The label of the sample's attribute j. */
static const label *sample_label(const conv *c, const wout *o,
                                 const sample *s, size_t j) {
  return &o->lab[table_id(&c->attr, (size_t)c->sattr[s->attr0 + j]) - 1];
}

static size_t sample_len(const conv *c, const wout *o, const sample *s) {
  size_t n = sample_locs_len(c, s);

  n = n ? pbwire_msg_size(1, n) : 0;
  n += pbwire_msg_size(2, pbwire_vsize(sample_value(s)));
  for (size_t j = 0; j < s->nattrs; j++)
    n += pbwire_msg_size(3, label_len(sample_label(c, o, s, j)));
  return n;
}

static uint8_t *put_sample(uint8_t *p, const conv *c, const wout *o,
                           const sample *s, size_t len) {
  const int32_t *ix = c->stkidx + c->stk0[s->stack];
  size_t nl = sample_locs_len(c, s);

  p = pbwire_put_len(p, P_SAMPLE, len);
  if (nl) {
    p = pbwire_put_len(p, 1, nl);
    for (size_t j = 0; j < c->stkn[s->stack]; j++)
      p = pbwire_put_varint(p, table_id(&c->loc, (size_t)ix[j]));
  }
  p = pbwire_put_len(p, 2, pbwire_vsize(sample_value(s)));
  p = pbwire_put_varint(p, sample_value(s));
  for (size_t j = 0; j < s->nattrs; j++)
    p = put_label(p, sample_label(c, o, s, j));
  return p;
}

static size_t mapping_len(const conv *c, uint32_t k) {
  const mapping *m = &c->maps[c->map.order[k]];
  uint8_t f = c->mflags[c->map.order[k]];
  return pbwire_field_size(1, k + 1) + pbwire_field_size(2, m->start) +
         pbwire_field_size(3, m->limit) + pbwire_field_size(4, m->offset) +
         pbwire_field_size(5, (uint64_t)str_id(c, m->filename)) +
         (f & MF_SYMBOLIZED ? 6 : 0) + (f & MF_INLINE ? 2 : 0);
}

static uint8_t *put_mapping(uint8_t *p, const conv *c, uint32_t k) {
  const mapping *m = &c->maps[c->map.order[k]];
  uint8_t f = c->mflags[c->map.order[k]];

  p = pbwire_put_len(p, P_MAPPING, mapping_len(c, k));
  p = pbwire_put_field(p, 1, k + 1);
  p = pbwire_put_field(p, 2, m->start);
  p = pbwire_put_field(p, 3, m->limit);
  p = pbwire_put_field(p, 4, m->offset);
  p = pbwire_put_field(p, 5, (uint64_t)str_id(c, m->filename));
  /* has_functions, has_filenames, has_line_numbers; has_inline_frames */
  if (f & MF_SYMBOLIZED) {
    p = pbwire_put_field(p, 7, 1);
    p = pbwire_put_field(p, 8, 1);
    p = pbwire_put_field(p, 9, 1);
  }
  if (f & MF_INLINE) p = pbwire_put_field(p, 10, 1);
  return p;
}

static size_t line_len(const conv *c, const line *l) {
  return pbwire_field_size(1, table_id(&c->fn, (size_t)l->function)) +
         pbwire_field_size(2, (uint64_t)l->line);
}

/* The pprof mapping id of location l (0: none). */
static uint64_t location_mapping_id(const conv *c, const location *l) {
  return l->mapping ? table_id(&c->map, (size_t)l->mapping) : 0;
}

static size_t location_len(const conv *c, uint32_t k) {
  const location *l = &c->locs[c->loc.order[k]];
  size_t n = pbwire_field_size(1, k + 1) +
      pbwire_field_size(2, location_mapping_id(c, l)) +
      pbwire_field_size(3, l->address);
  for (size_t j = 0; j < l->nlines; j++)
    n += pbwire_msg_size(4, line_len(c, &c->lines[l->line0 + j]));
  return n;
}

static uint8_t *put_location(uint8_t *p, const conv *c, uint32_t k,
                             size_t len) {
  const location *l = &c->locs[c->loc.order[k]];

  p = pbwire_put_len(p, P_LOCATION, len);
  p = pbwire_put_field(p, 1, k + 1);
  p = pbwire_put_field(p, 2, location_mapping_id(c, l));
  p = pbwire_put_field(p, 3, l->address);
  for (size_t j = 0; j < l->nlines; j++) {
    const line *ln = &c->lines[l->line0 + j];
    p = pbwire_put_len(p, 4, line_len(c, ln));
    p = pbwire_put_field(p, 1, table_id(&c->fn, (size_t)ln->function));
    p = pbwire_put_field(p, 2, (uint64_t)ln->line);
  }
  return p;
}

static size_t function_len(const conv *c, uint32_t k) {
  const function *f = &c->fns[c->fn.order[k]];
  return pbwire_field_size(1, k + 1) +
         pbwire_field_size(2, (uint64_t)str_id(c, f->name)) +
         pbwire_field_size(3, (uint64_t)str_id(c, f->system_name)) +
         pbwire_field_size(4, (uint64_t)str_id(c, f->filename)) +
         pbwire_field_size(5, (uint64_t)f->start_line);
}

static uint8_t *put_function(uint8_t *p, const conv *c, uint32_t k) {
  const function *f = &c->fns[c->fn.order[k]];
  p = pbwire_put_len(p, P_FUNCTION, function_len(c, k));
  p = pbwire_put_field(p, 1, k + 1);
  p = pbwire_put_field(p, 2, (uint64_t)str_id(c, f->name));
  p = pbwire_put_field(p, 3, (uint64_t)str_id(c, f->system_name));
  p = pbwire_put_field(p, 4, (uint64_t)str_id(c, f->filename));
  return pbwire_put_field(p, 5, (uint64_t)f->start_line);
}

/* String id k of the pprof (0 is ""; then the dictionary's, the extras). */
static span pprof_string(const conv *c, const wout *o, size_t k) {
  span s = { (const uint8_t *)"", (const uint8_t *)"" };
  if (k == 0) return s;
  if (k <= c->str.used) return dict_span(c, (int32_t)c->str.order[k - 1]);
  return o->extra[k - 1 - c->str.used];
}

/* Writes profile p (checked and marked by pass 1) into the arena. */
static int write_pprof(conv *c, const profile *p, void **buf, size_t *len) {
  size_t total, nstr = 1 + c->str.used + c->attr.used, k;
  uint8_t *b, *q;
  wout o;

  if (labels_build(c, &o) != 0) return -1;
  o.loclen = arena_calloc(c->p, c->loc.used, sizeof *o.loclen);
  o.samplen = arena_calloc(c->p, c->nsmp, sizeof *o.samplen);
  if (o.loclen == NULL || o.samplen == NULL) return -1;

  total = pbwire_msg_size(P_SAMPLE_TYPE, vt_len(c, p->st));
  for (k = 0; k < c->nsmp; k++) {
    o.samplen[k] = sample_len(c, &o, &c->smp[k]);
    total += pbwire_msg_size(P_SAMPLE, o.samplen[k]);
  }
  for (uint32_t j = 0; j < c->map.used; j++)
    total += pbwire_msg_size(P_MAPPING, mapping_len(c, j));
  for (uint32_t j = 0; j < c->loc.used; j++) {
    size_t n = location_len(c, j);
    if (n > UINT32_MAX) return c->p->fail = OTLP_ETOOBIG, -1;
    o.loclen[j] = (uint32_t)n;
    total += pbwire_msg_size(P_LOCATION, n);
  }
  for (uint32_t j = 0; j < c->fn.used; j++)
    total += pbwire_msg_size(P_FUNCTION, function_len(c, j));
  for (k = 0; k < nstr; k++) {
    span t = pprof_string(c, &o, k);
    total += pbwire_msg_size(P_STRING_TABLE, (size_t)(t.e - t.s));
  }
  total += pbwire_field_size(P_TIME_NANOS, p->time) +
           pbwire_field_size(P_DURATION_NANOS, p->duration) +
           (p->has_pt ? pbwire_msg_size(P_PERIOD_TYPE, vt_len(c, p->pt)) : 0) +
           pbwire_field_size(P_PERIOD, (uint64_t)p->period);

  if ((b = arena_alloc(c->p, total ? total : 1)) == NULL) return -1;
  q = put_vt(b, c, P_SAMPLE_TYPE, p->st);
  for (k = 0; k < c->nsmp; k++)
    q = put_sample(q, c, &o, &c->smp[k], o.samplen[k]);
  for (uint32_t j = 0; j < c->map.used; j++) q = put_mapping(q, c, j);
  for (uint32_t j = 0; j < c->loc.used; j++)
    q = put_location(q, c, j, o.loclen[j]);
  for (uint32_t j = 0; j < c->fn.used; j++) q = put_function(q, c, j);
  for (k = 0; k < nstr; k++) {
    span t = pprof_string(c, &o, k);
    q = pbwire_put_len(q, P_STRING_TABLE, (size_t)(t.e - t.s));
    if (t.e > t.s) memcpy(q, t.s, (size_t)(t.e - t.s));
    q += t.e - t.s;
  }
  q = pbwire_put_field(q, P_TIME_NANOS, p->time);
  q = pbwire_put_field(q, P_DURATION_NANOS, p->duration);
  if (p->has_pt) q = put_vt(q, c, P_PERIOD_TYPE, p->pt);
  q = pbwire_put_field(q, P_PERIOD, (uint64_t)p->period);
  assert(q == b + total);
  *buf = b;
  *len = total;
  return 0;
}

/* ---- attributes as text ------------------------------------------------------ */

typedef struct attrs {
  otlp_attr *v;
  size_t n, cap;
  const char *service;
} attrs;

/* The text of v, or NULL for an array, a map, bytes or no value (those
** are not kept); NULL with c->p->fail set when out of memory. */
static const char *value_text(conv *c, const anyv *v) {
  char *buf;
  switch (v->kind) {
  case AV_STRING: return span_str(c, v->s);
  case AV_STRINDEX: return span_str(c, dict_span(c, v->strx));
  case AV_BOOL: return v->i ? "true" : "false";
  case AV_INT:
  case AV_DOUBLE:
    if ((buf = arena_alloc(c->p, 32)) == NULL) return NULL;
    if (v->kind == AV_INT) snprintf(buf, 32, "%" PRId64, v->i);
    else snprintf(buf, 32, "%.17g", v->d);
    return buf;
  default: return NULL;
  }
}

static int attrs_add(conv *c, attrs *a, const char *key, const anyv *v) {
  const char *text;
  if (key == NULL) return -1;
  text = value_text(c, v);
  if (text == NULL) return c->p->fail != OTLP_OK ? -1 : 0;
  if (key[0] == '\0') return 0;
  if (strcmp(key, "service.name") == 0) {
    a->service = text;
    return 0;
  }
  assert(a->n < a->cap);
  a->v[a->n].key = key;
  a->v[a->n].value = text;
  a->n++;
  return 0;
}

/* The resource's attributes (in rp's resource, field 1) and then the
** profile's, as text.  0, 1 when the profile is rejected (reason in
** c->err), -1 when the arena failed. */
static int attrs_build(conv *c, attrs *a, span rp, const profile *p) {
  span res, m;
  rd r, q;
  vals it;
  uint64_t v;
  kv k;
  size_t nr = 0;

  for (r = rd_of(rp); next_msg(&r, 1, &res) == 1;)
    for (q = rd_of(res); next_msg(&q, 1, &m) == 1;) nr++;
  a->cap = nr + p->nattrs;
  a->n = 0;
  a->service = NULL;
  if ((a->v = arena_calloc(c->p, a->cap, sizeof *a->v)) == NULL) return -1;
  for (r = rd_of(rp); next_msg(&r, 1, &res) == 1;)
    for (q = rd_of(res); next_msg(&q, 1, &m) == 1;) {
      const char *key;
      if (parse_kv(m, &k, 0) != 0) return undecodable(c, "attribute");
      if (k.keytext.s == k.keytext.e && k.key != 0) {
        if (check_index(c, k.key, c->str.n, "string") != 0) return 1;
        key = span_str(c, dict_span(c, k.key));
      } else {
        key = span_str(c, k.keytext);
      }
      if (attrs_add(c, a, key, &k.v) != 0) return -1;
    }
  vals_init(&it, p->m, 11, 0);
  while (vals_next(&it, &v) == 1) {
    int32_t i = (int32_t)v;
    if (check_index(c, i, c->attr.n, "attribute") != 0) return 1;
    if (attrs_add(c, a, span_str(c, dict_span(c, c->kvs[i].key)),
                  &c->kvs[i].v) != 0)
      return -1;
  }
  return 0;
}

/* ---- one profile ---------------------------------------------------------------- */

/* Converts profile pm of resource profiles rp and calls each.  Returns 0
** when the profile was taken, 1 when it was rejected (reason in c->err),
** -1 when the arena failed. */
static int one_profile(conv *c, span rp, span pm, otlp_each each, void *arg) {
  profile p;
  attrs at;
  otlp_profile o;
  char types[PPROF_TYPES_MAX];
  void *raw;
  size_t rawlen;
  int rc = -1, ar;

  memset(&at, 0, sizeof at);
  c->gen++;
  c->str.used = c->map.used = c->fn.used = c->loc.used = c->attr.used = 0;
  c->overflow_at = SIZE_MAX;
  if (parse_profile(pm, &p, 0) != 0) {
    rc = undecodable(c, "profile");
    goto out;
  }
  if ((ar = attrs_build(c, &at, rp, &p)) != 0) {
    rc = ar;
    goto out;
  }
  if (samples_load(c, &p) != 0) goto out;
  if (check_profile(c, &p) != 0) {
    rc = 1;
    goto out;
  }
  if (write_pprof(c, &p, &raw, &rawlen) != 0) goto out;
  memset(&o, 0, sizeof o);
  o.service = at.service;
  o.attrs = at.v;
  o.nattrs = at.n;
  o.sample_type = span_str(c, dict_span(c, p.st[0]));
  o.sample_unit = span_str(c, dict_span(c, p.st[1]));
  o.period_type = span_str(c, dict_span(c, p.pt[0]));
  if (o.sample_type == NULL || o.sample_unit == NULL || o.period_type == NULL)
    goto out;
  o.time_nanos = (int64_t)p.time;
  o.pprof = raw;
  o.len = rawlen;
  pprof_types_of(o.sample_type, o.sample_unit, types);
  o.types = types;
  c->err[0] = '\0';
  rc = each(&o, arg, c->err) != 0 ? 1 : 0;
  if (rc == 1 && c->err[0] == '\0') bad(c, "refused");
out:
  if (rc >= 0) arena_reset(c->p);  /* else the caller reads p->fail first */
  return rc;
}

/* ---- the request ------------------------------------------------------------------ */

/* The dictionary's tables by field number (4, links, is not read). */
static table *dict_table(conv *c, uint32_t num) {
  switch (num) {
  case 1: return &c->map;
  case 2: return &c->loc;
  case 3: return &c->fn;
  case 5: return &c->str;
  case 6: return &c->attr;
  case 7: return &c->stk;
  default: return NULL;
  }
}

/* Counts (record == 0) or records the entries of every dictionary of the
** request (protobuf merges repeated occurrences: the tables add up).
** -1 when malformed. */
static int dict_scan(conv *c, span req, int record) {
  rd r = rd_of(req), q;
  span d;
  fld f;
  table *t;
  int rc;

  while ((rc = next_msg(&r, 2, &d)) == 1) {
    for (q = rd_of(d); (rc = next_field(&q, &f)) == 1;) {
      if ((t = dict_table(c, f.num)) == NULL) continue;
      if (f.wt != WT_LEN) return -1;
      if (record) t->ent[t->used++] = f.b;
      else t->n++;
    }
    if (rc < 0) return -1;
  }
  return rc;
}

/* Decodes every entry of the dictionary's tables into c (in its arena a):
** 0, -1 when one is malformed, -2 when the arena failed. */
static int dict_decode(conv *c) {
  size_t nl = 0, ns = 0, cap = 0, i, k;
  span m;
  int rc;
  rd r;

#define ARRAY(x, count)                                                 \
  do {                                                                  \
    if ((c->x = arena_calloc(c->a, (count), sizeof *c->x)) == NULL)     \
      return -2;                                                        \
  } while (0)
  ARRAY(maps, c->map.n);
  ARRAY(fns, c->fn.n);
  ARRAY(locs, c->loc.n);
  ARRAY(kvs, c->attr.n);
  ARRAY(stk0, c->stk.n);
  ARRAY(stkn, c->stk.n);
  for (i = 0; i < c->map.n; i++)
    if (parse_mapping(c->map.ent[i], &c->maps[i]) != 0) return -1;
  for (i = 0; i < c->fn.n; i++)
    if (parse_function(c->fn.ent[i], &c->fns[i]) != 0) return -1;
  for (i = 0; i < c->attr.n; i++)
    if (parse_kv(c->attr.ent[i], &c->kvs[i], 1) != 0) return -1;
  for (i = 0; i < c->loc.n; i++) {
    if (parse_location(c->loc.ent[i], &c->locs[i]) != 0) return -1;
    c->locs[i].line0 = nl;
    nl += c->locs[i].nlines;
  }
  /* The stacks in one pass: no stack holds more indices than bytes. */
  for (i = 0; i < c->stk.n; i++)
    cap += (size_t)(c->stk.ent[i].e - c->stk.ent[i].s);
  ARRAY(stkidx, cap);
  for (i = 0; i < c->stk.n; i++) {
    vals it;
    uint64_t v;
    c->stk0[i] = ns;
    vals_init(&it, c->stk.ent[i], 1, 0);
    while ((rc = vals_next(&it, &v)) == 1) c->stkidx[ns++] = (int32_t)v;
    if (rc < 0) return -1;
    c->stkn[i] = ns - c->stk0[i];
  }
  ARRAY(lines, nl);
#undef ARRAY
  for (i = 0, k = 0; i < c->loc.n; i++)
    for (r = rd_of(c->locs[i].m); next_msg(&r, 3, &m) == 1;)
      if (parse_line(m, &c->lines[k++]) != 0) return -1;
  return 0;
}

/* Checks every resource, scope, profile and sample of the request: 0, or
** -1 when one does not decode. */
static int validate_request(span req) {
  rd r = rd_of(req), q, s;
  span rp, x, sp;
  profile p;
  kv k;
  int rc;

  while ((rc = next_msg(&r, 1, &rp)) == 1) {
    for (q = rd_of(rp); (rc = next_msg(&q, 1, &x)) == 1;) {
      for (s = rd_of(x); (rc = next_msg(&s, 1, &sp)) == 1;)
        if (parse_kv(sp, &k, 0) != 0) return -1;
      if (rc < 0) return -1;
    }
    if (rc < 0) return -1;
    for (q = rd_of(rp); (rc = next_msg(&q, 2, &x)) == 1;) {
      for (s = rd_of(x); (rc = next_msg(&s, 2, &sp)) == 1;)
        if (parse_profile(sp, &p, 1) != 0) return -1;
      if (rc < 0) return -1;
    }
    if (rc < 0) return -1;
  }
  return rc;
}

static otlp_rc arena_error(const arena *a, char *err) {
  switch (a->fail) {
  case OTLP_ETOOBIG:
    snprintf(err, OTLP_ERRMAX, "request too big: reading it takes more than "
             "%zu bytes", a->max);
    return OTLP_ETOOBIG;
  case OTLP_EBUSY:
    snprintf(err, OTLP_ERRMAX, "busy: memory budget exhausted, retry later");
    return OTLP_EBUSY;
  default:
    snprintf(err, OTLP_ERRMAX, "out of memory");
    return OTLP_ENOMEM;
  }
}

/* Makes the tables of the request's dictionary. */
static int conv_init(conv *c, span req) {
  table *all[] = { &c->str, &c->map, &c->fn, &c->loc, &c->attr, &c->stk };
  for (size_t i = 0; i < sizeof all / sizeof *all; i++)
    if (table_alloc(c, all[i]) != 0) return -1;
  if ((c->mflags = arena_calloc(c->a, c->map.n, 1)) == NULL) return -1;
  if (dict_scan(c, req, 1) != 0) return -1;   /* counted: cannot fail */
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) all[i]->used = 0;
  return 0;
}

otlp_rc otlp_read(const void *buf, size_t len, size_t max_mem, budget *b,
                  otlp_each each, void *arg, otlp_result *res,
                  char err[OTLP_ERRMAX]) {
  arena a = { .b = b, .max = max_mem, .fail = OTLP_OK };
  arena p = { .b = b, .max = max_mem, .fail = OTLP_OK };
  char scratch[OTLP_ERRMAX], perr[OTLP_ERRMAX] = "";
  span req = { buf, (const uint8_t *)buf + len }, rp, sp, pm;
  otlp_rc rc = OTLP_OK;
  rd r, q, s;
  conv c;

  assert(each != NULL && res != NULL && (buf != NULL || len == 0));
  memset(res, 0, sizeof *res);
  memset(&c, 0, sizeof c);
  if (err == NULL) err = scratch;
  if (len == 0) req.s = req.e = (const uint8_t *)"";
  c.a = &a;
  c.p = &p;
  c.err = perr;
  if (dict_scan(&c, req, 0) != 0) goto malformed;
  if (conv_init(&c, req) != 0) {
    rc = a.fail != OTLP_OK ? arena_error(&a, err) : OTLP_EDECODE;
    if (rc == OTLP_EDECODE) goto malformed;
    goto out;
  }
  switch (dict_decode(&c)) {
  case 0: break;
  case -1: goto malformed;
  default:
    rc = arena_error(&a, err);
    goto out;
  }
  if (validate_request(req) != 0) goto malformed;
  for (r = rd_of(req); next_msg(&r, 1, &rp) == 1 && rc == OTLP_OK;)
    for (q = rd_of(rp); next_msg(&q, 2, &sp) == 1 && rc == OTLP_OK;)
      for (s = rd_of(sp); next_msg(&s, 2, &pm) == 1 && rc == OTLP_OK;) {
        int one = one_profile(&c, rp, pm, each, arg);
        res->profiles++;
        if (one < 0) {
          rc = arena_error(p.fail != OTLP_OK ? &p : &a, err);
        } else if (one > 0) {
          if (res->rejected++ == 0)
            snprintf(res->first_error, OTLP_ERRMAX, "profile %zu: %.200s",
                     res->profiles - 1, perr);
        }
      }
  goto out;
malformed:
  snprintf(err, OTLP_ERRMAX, "malformed request: not an "
           "ExportProfilesServiceRequest in protobuf");
  rc = OTLP_EDECODE;
out:
  arena_reset(&p);
  arena_reset(&a);
  return rc;
}

/* ---- answers ------------------------------------------------------------------------ */

static int pack_out(const ProtobufCMessage *m, void **out, size_t *len) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *p = malloc(n ? n : 1);
  if (p == NULL) return -1;
  protobuf_c_message_pack(m, p);
  *out = p;
  *len = n;
  return 0;
}

int otlp_response(int64_t rejected, const char *message, void **out,
                  size_t *len) {
  Otlp__ExportProfilesServiceResponse r = OTLP__EXPORT_PROFILES_SERVICE_RESPONSE__INIT;
  Otlp__ExportProfilesPartialSuccess ps = OTLP__EXPORT_PROFILES_PARTIAL_SUCCESS__INIT;

  if (rejected > 0) {
    ps.rejected_profiles = rejected;
    ps.error_message = (char *)(uintptr_t)(message ? message : "");
    r.partial_success = &ps;
  }
  return pack_out(&r.base, out, len);
}

int otlp_status(int32_t code, const char *message, void **out, size_t *len) {
  Otlp__Status s = OTLP__STATUS__INIT;
  s.code = code;
  s.message = (char *)(uintptr_t)(message ? message : "");
  return pack_out(&s.base, out, len);
}
