/*
** otlp.c — OTLP profiles (v1development) to pprof; see otlp.h for the
** mapping of the tables.
**
** A request is decoded whole by protobuf-c into an arena (bump allocation
** in chunks taken from the budget, at most max_mem), and each profile is
** converted in a second arena, emptied after it (also at most max_mem).
** Each profile is then converted in two passes over its samples:
**   1. check every index against its table and number, in order of first
**      use, the strings, mappings, functions and locations the profile
**      reaches (the marks), counting what pass 2 will fill;
**   2. allocate the pprof message's arrays at their exact sizes and fill
**      them, then pack.
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
#include "pprof.h"
#include "profile.pb-c.h"

typedef Perftools__Profiles__Profile PProfile;
typedef Perftools__Profiles__Sample PSample;
typedef Perftools__Profiles__Location PLocation;
typedef Perftools__Profiles__Function PFunction;
typedef Perftools__Profiles__Mapping PMapping;
typedef Perftools__Profiles__Line PLine;
typedef Perftools__Profiles__Label PLabel;
typedef Perftools__Profiles__ValueType PValueType;

/* ---- arenas: bump allocation, bounded and budgeted -------------------------
**
** protobuf-c makes one allocation per message and array of a request (a
** few hundred for one CPU profile); malloc and free of each were a third
** of the door's CPU.  An arena hands out slices of chunks it takes from
** the budget and frees nothing until arena_reset. */

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

/* protobuf-c's free: the memory goes back with arena_reset. */
static void arena_free(void *data, void *ptr) {
  (void)data;
  (void)ptr;
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

/* ---- conversion state ------------------------------------------------------ */

typedef struct table {
  size_t n;            /* entries in the dictionary's table */
  uint64_t *mark;      /* per entry: generation << 32 | id */
  uint32_t *order;     /* id - 1 -> entry, for the ids given this profile */
  uint32_t used;       /* ids given this profile */
} table;

typedef struct conv {
  arena *a;            /* the request's: its decoded form, the marks */
  arena *p;            /* one profile's conversion, reset after each */
  const Otlp__ProfilesDictionary *d;
  table str, map, fn, loc, attr;
  uint32_t gen;
  uint32_t nextra;     /* strings that are not the dictionary's (attributes) */
  size_t nlines, nlocids, nlabels;
  char *err;           /* OTLP_ERRMAX, the reason a profile is refused */
} conv;

static int table_init(conv *c, table *t, size_t n) {
  t->n = n;
  t->mark = arena_calloc(c->a, n, sizeof *t->mark);
  t->order = arena_calloc(c->a, n, sizeof *t->order);
  return t->mark != NULL && t->order != NULL ? 0 : -1;
}

/* The id of entry i this profile, giving it the next one on first use. */
static uint32_t table_mark(conv *c, table *t, size_t i) {
  if ((uint32_t)(t->mark[i] >> 32) == c->gen) return (uint32_t)t->mark[i];
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

static const char *dict_str(const conv *c, int32_t i) {
  return i > 0 && (size_t)i < c->str.n ? c->d->string_table[i] : "";
}

/* ---- pass 1: check and mark ------------------------------------------------ */

static int mark_function(conv *c, int32_t i) {
  const Otlp__Function *f;
  if (check_index(c, i, c->fn.n, "function") != 0) return -1;
  if ((uint32_t)(c->fn.mark[i] >> 32) == c->gen) return 0;
  f = c->d->function_table[i];
  if (mark_str(c, f->name_strindex) || mark_str(c, f->system_name_strindex) ||
      mark_str(c, f->filename_strindex))
    return -1;
  table_mark(c, &c->fn, (size_t)i);
  return 0;
}

static int mark_location(conv *c, int32_t i) {
  const Otlp__Location *l;
  if (check_index(c, i, c->loc.n, "location") != 0) return -1;
  if ((uint32_t)(c->loc.mark[i] >> 32) == c->gen) return 0;
  l = c->d->location_table[i];
  if (l->mapping_index != 0) {
    if (check_index(c, l->mapping_index, c->map.n, "mapping") != 0 ||
        mark_str(c, c->d->mapping_table[l->mapping_index]->filename_strindex))
      return -1;
    table_mark(c, &c->map, (size_t)l->mapping_index);
  }
  for (size_t k = 0; k < l->n_lines; k++)
    if (mark_function(c, l->lines[k]->function_index) != 0) return -1;
  c->nlines += l->n_lines;
  table_mark(c, &c->loc, (size_t)i);
  return 0;
}

/* An attribute of a sample: its key and value strings, or an extra string
** for a value sent as text (the attribute's mark counts extras). */
static int mark_attr(conv *c, int32_t i) {
  const Otlp__KeyValueAndUnit *kv;
  if (check_index(c, i, c->attr.n, "attribute") != 0) return -1;
  if ((uint32_t)(c->attr.mark[i] >> 32) == c->gen) return 0;
  kv = c->d->attribute_table[i];
  if (mark_str(c, kv->key_strindex) || mark_str(c, kv->unit_strindex)) return -1;
  if (kv->value != NULL &&
      kv->value->value_case == OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX &&
      mark_str(c, kv->value->string_value_strindex) != 0)
    return -1;
  table_mark(c, &c->attr, (size_t)i);
  c->nextra++;   /* at most one extra string per attribute */
  return 0;
}

static int check_sample(conv *c, const Otlp__Sample *s, size_t k) {
  const Otlp__Stack *st;

  if (s->n_values == 0 && s->n_timestamps_unix_nano == 0)
    return bad(c, "sample %zu has neither values nor timestamps", k);
  if (s->n_values != 0 && s->n_timestamps_unix_nano != 0 &&
      s->n_values != s->n_timestamps_unix_nano)
    return bad(c, "sample %zu has %zu values for %zu timestamps", k,
               s->n_values, s->n_timestamps_unix_nano);
  if (check_index(c, s->stack_index, c->d->n_stack_table, "stack") != 0)
    return -1;
  st = c->d->stack_table[s->stack_index];
  for (size_t j = 0; j < st->n_location_indices; j++)
    if (mark_location(c, st->location_indices[j]) != 0) return -1;
  c->nlocids += st->n_location_indices;
  for (size_t j = 0; j < s->n_attribute_indices; j++)
    if (mark_attr(c, s->attribute_indices[j]) != 0) return -1;
  c->nlabels += s->n_attribute_indices;
  return 0;
}

static int check_profile(conv *c, const Otlp__Profile *p) {
  static const Otlp__ValueType none = OTLP__VALUE_TYPE__INIT;
  const Otlp__ValueType *st = p->sample_type ? p->sample_type : &none;
  const Otlp__ValueType *pt = p->period_type ? p->period_type : &none;

  if (p->n_samples == 0) return bad(c, "profile has no samples");
  if (mark_str(c, st->type_strindex) || mark_str(c, st->unit_strindex) ||
      mark_str(c, pt->type_strindex) || mark_str(c, pt->unit_strindex))
    return -1;
  for (size_t k = 0; k < p->n_samples; k++)
    if (check_sample(c, p->samples[k], k) != 0) return -1;
  return 0;
}

/* ---- pass 2: fill the pprof message ------------------------------------------ */

/* What pass 2 allocates, freed as one after packing. */
typedef struct built {
  PProfile prof;
  PValueType st, pt, *stp;
  PSample *samples, **samplep;
  PLocation *locs, **locp;
  PLine *lines, **linep;
  PFunction *fns, **fnp;
  PMapping *maps, **mapp;
  PLabel *labels, **labelp;
  uint64_t *locids;
  int64_t *values;
  ProtobufCBinaryData *strs;
  char *text;           /* extra strings of numbers formatted as text */
} built;

static int built_alloc(conv *c, built *b, size_t nsamples) {
#define ALLOC(f, n) ((b->f = arena_calloc(c->p, (n), sizeof *b->f)) != NULL)
  return ALLOC(samples, nsamples) && ALLOC(samplep, nsamples) &&
         ALLOC(locs, c->loc.used) && ALLOC(locp, c->loc.used) &&
         ALLOC(lines, c->nlines) && ALLOC(linep, c->nlines) &&
         ALLOC(fns, c->fn.used) && ALLOC(fnp, c->fn.used) &&
         ALLOC(maps, c->map.used) && ALLOC(mapp, c->map.used) &&
         ALLOC(labels, c->nlabels) && ALLOC(labelp, c->nlabels) &&
         ALLOC(locids, c->nlocids) && ALLOC(values, nsamples) &&
         ALLOC(strs, 1 + c->str.used + c->nextra) &&
         ALLOC(text, (size_t)c->nextra * 32)
      ? 0 : -1;
#undef ALLOC
}

static void set_str(ProtobufCBinaryData *s, const char *text) {
  s->data = (uint8_t *)(uintptr_t)text;
  s->len = strlen(text);
}

static void fill_tables(conv *c, built *b) {
  const Otlp__ProfilesDictionary *d = c->d;

  set_str(&b->strs[0], "");
  for (uint32_t k = 0; k < c->str.used; k++)
    set_str(&b->strs[k + 1], d->string_table[c->str.order[k]]);
  for (uint32_t k = 0; k < c->map.used; k++) {
    const Otlp__Mapping *m = d->mapping_table[c->map.order[k]];
    PMapping *o = &b->maps[k];
    perftools__profiles__mapping__init(o);
    o->id = k + 1;
    o->memory_start = m->memory_start;
    o->memory_limit = m->memory_limit;
    o->file_offset = m->file_offset;
    o->filename = str_id(c, m->filename_strindex);
    b->mapp[k] = o;
  }
  for (uint32_t k = 0; k < c->fn.used; k++) {
    const Otlp__Function *f = d->function_table[c->fn.order[k]];
    PFunction *o = &b->fns[k];
    perftools__profiles__function__init(o);
    o->id = k + 1;
    o->name = str_id(c, f->name_strindex);
    o->system_name = str_id(c, f->system_name_strindex);
    o->filename = str_id(c, f->filename_strindex);
    o->start_line = f->start_line;
    b->fnp[k] = o;
  }
  size_t nl = 0;
  for (uint32_t k = 0; k < c->loc.used; k++) {
    const Otlp__Location *l = d->location_table[c->loc.order[k]];
    PLocation *o = &b->locs[k];
    perftools__profiles__location__init(o);
    o->id = k + 1;
    o->mapping_id = l->mapping_index ? table_id(&c->map, (size_t)l->mapping_index) : 0;
    o->address = l->address;
    o->n_line = l->n_lines;
    o->line = &b->linep[nl];
    for (size_t j = 0; j < l->n_lines; j++, nl++) {
      perftools__profiles__line__init(&b->lines[nl]);
      b->lines[nl].function_id = table_id(&c->fn, (size_t)l->lines[j]->function_index);
      b->lines[nl].line = l->lines[j]->line;
      b->linep[nl] = &b->lines[nl];
    }
    b->locp[k] = o;
    /* Frames with lines are symbolized: say so, or pprof goes looking
    ** for the binary on the analysis host. */
    if (o->mapping_id != 0 && l->n_lines > 0) {
      PMapping *m = &b->maps[o->mapping_id - 1];
      m->has_functions = m->has_filenames = m->has_line_numbers = 1;
      m->has_inline_frames = m->has_inline_frames || l->n_lines > 1;
    }
  }
}

/* The label of attribute i; an extra string for a value that is text. */
static void fill_label(conv *c, built *b, int32_t i, PLabel *o) {
  const Otlp__KeyValueAndUnit *kv = c->d->attribute_table[i];
  const Otlp__AnyValue *v = kv->value;
  /* Each attribute used has one extra slot, after the dictionary's
  ** strings, in order of its id. */
  uint32_t slot = table_id(&c->attr, (size_t)i) - 1;
  int64_t sid = 1 + (int64_t)c->str.used + slot;
  char *text = b->text + (size_t)slot * 32;

  perftools__profiles__label__init(o);
  o->key = str_id(c, kv->key_strindex);
  set_str(&b->strs[sid], "");
  switch (v ? v->value_case : OTLP__ANY_VALUE__VALUE__NOT_SET) {
  case OTLP__ANY_VALUE__VALUE_INT_VALUE:
    o->num = v->int_value;
    o->num_unit = str_id(c, kv->unit_strindex);
    return;
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX:
    o->str = str_id(c, v->string_value_strindex);
    return;
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE:
    set_str(&b->strs[sid], v->string_value);
    break;
  case OTLP__ANY_VALUE__VALUE_BOOL_VALUE:
    set_str(&b->strs[sid], v->bool_value ? "true" : "false");
    break;
  case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
    snprintf(text, 32, "%.17g", v->double_value);
    set_str(&b->strs[sid], text);
    break;
  default:
    break;   /* no value: a label with an empty string */
  }
  o->str = sid;
}

static void fill_samples(conv *c, built *b, const Otlp__Profile *p) {
  size_t nid = 0, nlab = 0;

  for (size_t k = 0; k < p->n_samples; k++) {
    const Otlp__Sample *s = p->samples[k];
    const Otlp__Stack *st = c->d->stack_table[s->stack_index];
    PSample *o = &b->samples[k];
    int64_t sum = 0;

    perftools__profiles__sample__init(o);
    if (s->n_values == 0)
      sum = (int64_t)s->n_timestamps_unix_nano;
    for (size_t j = 0; j < s->n_values; j++)
      sum += s->values[j];   /* checked for overflow in pass 1 */
    b->values[k] = sum;
    o->n_value = 1;
    o->value = &b->values[k];
    o->n_location_id = st->n_location_indices;
    o->location_id = &b->locids[nid];
    for (size_t j = 0; j < st->n_location_indices; j++)
      b->locids[nid++] = table_id(&c->loc, (size_t)st->location_indices[j]);
    o->n_label = s->n_attribute_indices;
    o->label = &b->labelp[nlab];
    for (size_t j = 0; j < s->n_attribute_indices; j++, nlab++) {
      fill_label(c, b, s->attribute_indices[j], &b->labels[nlab]);
      b->labelp[nlab] = &b->labels[nlab];
    }
    b->samplep[k] = o;
  }
}

static void fill_profile(conv *c, built *b, const Otlp__Profile *p) {
  static const Otlp__ValueType none = OTLP__VALUE_TYPE__INIT;
  const Otlp__ValueType *st = p->sample_type ? p->sample_type : &none;
  const Otlp__ValueType *pt = p->period_type ? p->period_type : &none;
  PProfile *o = &b->prof;

  perftools__profiles__profile__init(o);
  perftools__profiles__value_type__init(&b->st);
  perftools__profiles__value_type__init(&b->pt);
  b->st.type = str_id(c, st->type_strindex);
  b->st.unit = str_id(c, st->unit_strindex);
  b->pt.type = str_id(c, pt->type_strindex);
  b->pt.unit = str_id(c, pt->unit_strindex);
  b->stp = &b->st;
  o->n_sample_type = 1;
  o->sample_type = &b->stp;
  if (p->period_type != NULL) o->period_type = &b->pt;
  o->period = p->period;
  o->time_nanos = (int64_t)p->time_unix_nano;
  o->duration_nanos = (int64_t)p->duration_nano;
  fill_tables(c, b);
  fill_samples(c, b, p);
  o->n_sample = p->n_samples;
  o->sample = b->samplep;
  o->n_location = c->loc.used;
  o->location = b->locp;
  o->n_function = c->fn.used;
  o->function = b->fnp;
  o->n_mapping = c->map.used;
  o->mapping = b->mapp;
  o->n_string_table = 1 + c->str.used + c->nextra;
  o->string_table = b->strs;
}

/* Pass 1 also checks that the sums of values fit. */
static int check_sums(conv *c, const Otlp__Profile *p) {
  for (size_t k = 0; k < p->n_samples; k++) {
    const Otlp__Sample *s = p->samples[k];
    int64_t sum = 0;
    for (size_t j = 0; j < s->n_values; j++)
      if (__builtin_add_overflow(sum, s->values[j], &sum))
        return bad(c, "sample %zu: the sum of its values overflows", k);
  }
  return 0;
}

/* ---- attributes as text ------------------------------------------------------ */

typedef struct attrs {
  otlp_attr *v;
  size_t n, cap;
  char *text;            /* numbers formatted, 32 bytes a slot */
  const char *service;
} attrs;

/* The text of v in buf (32 bytes) or the string it names; NULL for an
** array, a map, bytes or no value (those are not kept). */
static const char *value_text(const conv *c, const Otlp__AnyValue *v,
                              char *buf) {
  switch (v ? v->value_case : OTLP__ANY_VALUE__VALUE__NOT_SET) {
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE: return v->string_value;
  case OTLP__ANY_VALUE__VALUE_STRING_VALUE_STRINDEX:
    return dict_str(c, v->string_value_strindex);
  case OTLP__ANY_VALUE__VALUE_BOOL_VALUE: return v->bool_value ? "true" : "false";
  case OTLP__ANY_VALUE__VALUE_INT_VALUE:
    snprintf(buf, 32, "%" PRId64, v->int_value);
    return buf;
  case OTLP__ANY_VALUE__VALUE_DOUBLE_VALUE:
    snprintf(buf, 32, "%.17g", v->double_value);
    return buf;
  default: return NULL;
  }
}

static void attrs_add(attrs *a, const conv *c, const char *key,
                      const Otlp__AnyValue *v) {
  const char *text = value_text(c, v, a->text + a->n * 32);
  if (text == NULL || key[0] == '\0') return;
  if (strcmp(key, "service.name") == 0) {
    a->service = text;
    return;
  }
  a->v[a->n].key = key;
  a->v[a->n].value = text;
  a->n++;
}

/* The resource's attributes and then the profile's, as text. */
static int attrs_build(conv *c, attrs *a, const Otlp__Resource *r,
                       const Otlp__Profile *p) {
  size_t nr = r ? r->n_attributes : 0;

  a->cap = nr + p->n_attribute_indices;
  a->n = 0;
  a->service = NULL;
  a->v = arena_calloc(c->p, a->cap, sizeof *a->v);
  a->text = arena_calloc(c->p, a->cap, 32);
  if (a->v == NULL || a->text == NULL) return -1;
  for (size_t i = 0; i < nr; i++) {
    const Otlp__KeyValue *kv = r->attributes[i];
    const char *key = kv->key;
    if (key[0] == '\0' && kv->key_strindex != 0) {
      if (check_index(c, kv->key_strindex, c->str.n, "string") != 0) return 1;
      key = dict_str(c, kv->key_strindex);
    }
    attrs_add(a, c, key, kv->value);
  }
  for (size_t i = 0; i < p->n_attribute_indices; i++) {
    int32_t k = p->attribute_indices[i];
    if (check_index(c, k, c->attr.n, "attribute") != 0) return 1;
    attrs_add(a, c, dict_str(c, c->d->attribute_table[k]->key_strindex),
              c->d->attribute_table[k]->value);
  }
  return 0;
}

/* ---- one profile ---------------------------------------------------------------- */

/* Converts p and calls each.  Returns 0 when the profile was taken, 1 when
** it was rejected (reason in c->err), -1 when the arena failed. */
static int one_profile(conv *c, const Otlp__Resource *r, const Otlp__Profile *p,
                       otlp_each each, void *arg) {
  built b;
  attrs at;
  otlp_profile out;
  void *raw;
  size_t rawlen;
  int rc = -1, ar;

  memset(&b, 0, sizeof b);
  memset(&at, 0, sizeof at);
  c->gen++;
  c->str.used = c->map.used = c->fn.used = c->loc.used = c->attr.used = 0;
  c->nextra = 0;
  c->nlines = c->nlocids = c->nlabels = 0;
  if ((ar = attrs_build(c, &at, r, p)) != 0) {
    rc = ar;
    goto out;
  }
  if (check_profile(c, p) != 0 || check_sums(c, p) != 0) {
    rc = 1;
    goto out;
  }
  if (built_alloc(c, &b, p->n_samples) != 0) goto out;
  fill_profile(c, &b, p);
  rawlen = perftools__profiles__profile__get_packed_size(&b.prof);
  if ((raw = arena_alloc(c->p, rawlen ? rawlen : 1)) == NULL) goto out;
  perftools__profiles__profile__pack(&b.prof, raw);
  memset(&out, 0, sizeof out);
  out.service = at.service;
  out.attrs = at.v;
  out.nattrs = at.n;
  out.sample_type = dict_str(c, p->sample_type ? p->sample_type->type_strindex : 0);
  out.sample_unit = dict_str(c, p->sample_type ? p->sample_type->unit_strindex : 0);
  out.period_type = dict_str(c, p->period_type ? p->period_type->type_strindex : 0);
  out.time_nanos = (int64_t)p->time_unix_nano;
  out.pprof = raw;
  out.len = rawlen;
  c->err[0] = '\0';
  rc = each(&out, arg, c->err) != 0 ? 1 : 0;
  if (rc == 1 && c->err[0] == '\0') bad(c, "refused");
out:
  if (rc >= 0) arena_reset(c->p);  /* else the caller reads p->fail first */
  return rc;
}

/* ---- the request ------------------------------------------------------------------ */

static int conv_init(conv *c, arena *a, arena *p,
                     const Otlp__ProfilesDictionary *d, char *err) {
  memset(c, 0, sizeof *c);
  c->a = a;
  c->p = p;
  c->d = d;
  c->err = err;
  return table_init(c, &c->str, d->n_string_table) ||
         table_init(c, &c->map, d->n_mapping_table) ||
         table_init(c, &c->fn, d->n_function_table) ||
         table_init(c, &c->loc, d->n_location_table) ||
         table_init(c, &c->attr, d->n_attribute_table) ? -1 : 0;
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

otlp_rc otlp_read(const void *buf, size_t len, size_t max_mem, budget *b,
                  otlp_each each, void *arg, otlp_result *res,
                  char err[OTLP_ERRMAX]) {
  static const Otlp__ProfilesDictionary empty = OTLP__PROFILES_DICTIONARY__INIT;
  arena a = { .b = b, .max = max_mem, .fail = OTLP_OK };
  arena p = { .b = b, .max = max_mem, .fail = OTLP_OK };
  ProtobufCAllocator alloc = { arena_alloc, arena_free, &a };
  Otlp__ExportProfilesServiceRequest *req;
  char scratch[OTLP_ERRMAX], perr[OTLP_ERRMAX] = "";
  otlp_rc rc = OTLP_OK;
  conv c;

  assert(each != NULL && res != NULL);
  memset(res, 0, sizeof *res);
  if (err == NULL) err = scratch;
  /* Never freed message by message: arena_reset frees it whole. */
  req = otlp__export_profiles_service_request__unpack(&alloc, len, buf);
  if (req == NULL) {
    /* protobuf-c says nothing of why: a failed allocation set a.fail,
    ** anything else is the bytes. */
    if (a.fail != OTLP_OK) {
      rc = arena_error(&a, err);
    } else {
      snprintf(err, OTLP_ERRMAX, "malformed request: not an "
               "ExportProfilesServiceRequest in protobuf");
      rc = OTLP_EDECODE;
    }
    goto out;
  }
  if (conv_init(&c, &a, &p, req->dictionary ? req->dictionary : &empty,
                perr) != 0) {
    rc = arena_error(&a, err);
    goto out;
  }
  for (size_t i = 0; i < req->n_resource_profiles && rc == OTLP_OK; i++) {
    const Otlp__ResourceProfiles *rp = req->resource_profiles[i];
    for (size_t j = 0; j < rp->n_scope_profiles && rc == OTLP_OK; j++) {
      const Otlp__ScopeProfiles *sp = rp->scope_profiles[j];
      for (size_t k = 0; k < sp->n_profiles && rc == OTLP_OK; k++) {
        int one = one_profile(&c, rp->resource, sp->profiles[k], each, arg);
        res->profiles++;
        if (one < 0) {
          rc = arena_error(p.fail != OTLP_OK ? &p : &a, err);
        } else if (one > 0) {
          if (res->rejected++ == 0)
            snprintf(res->first_error, OTLP_ERRMAX, "profile %zu: %.200s",
                     res->profiles - 1, perr);
        }
      }
    }
  }
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
