/*
** ingest.c — type mapping, label sets, Pyroscope names and stacks -> pprof
** for the ingest doors of other agents (see ingest.h).
**
** Labels are collected raw and made canonical by meta_labels_from_pairs:
** one definition of the canonical form, meta's.
*/
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pprof.h"

#define LABELS_MAX (64 * 1024)
/* the most stacks and frames a text ingest makes room for at once */
#define RESERVE_MAX ((size_t)1 << 16)

int ingest_fail(char *err, const char *fmt, ...) {
  va_list ap;
  if (err != NULL) {
    va_start(ap, fmt);
    vsnprintf(err, INGEST_ERRMAX, fmt, ap);
    va_end(ap);
  }
  return -1;
}

/* ---- types ------------------------------------------------------------------- */

static const struct {
  const char *name;
  meta_type type;
} type_names[] = {
  {"cpu", META_CPU}, {"process_cpu", META_CPU}, {"itimer", META_CPU},
  {"wall", META_WALL},
  {"memory", META_HEAP}, {"heap", META_HEAP},
  {"alloc_objects", META_HEAP}, {"alloc_space", META_HEAP},
  {"inuse_objects", META_HEAP}, {"inuse_space", META_HEAP},
  {"alloc_in_new_tlab_objects", META_HEAP},
  {"alloc_in_new_tlab_bytes", META_HEAP},
  {"alloc_outside_tlab_objects", META_HEAP},
  {"alloc_outside_tlab_bytes", META_HEAP},
  {"mutex", META_MUTEX}, {"mutex_count", META_MUTEX},
  {"mutex_duration", META_MUTEX}, {"lock_count", META_MUTEX},
  {"lock_duration", META_MUTEX},
  {"block", META_BLOCK}, {"block_count", META_BLOCK},
  {"block_duration", META_BLOCK},
  {"goroutine", META_GOROUTINE}, {"goroutines", META_GOROUTINE},
  {"threadcreate", META_THREADCREATE},
};

int ingest_type_of_name(const char *name) {
  if (name == NULL) return -1;
  for (size_t i = 0; i < sizeof type_names / sizeof *type_names; i++)
    if (strcmp(name, type_names[i].name) == 0) return (int)type_names[i].type;
  return -1;
}

/* Pyroscope's rule for one sample type name (og/convert/pprof metricName). */
static int type_of_sample_name(const char *st) {
  if (strstr(st, "cpu") != NULL) return META_CPU;
  if (strstr(st, "alloc_") != NULL || strstr(st, "inuse_") != NULL ||
      strcmp(st, "space") == 0 || strcmp(st, "objects") == 0)
    return META_HEAP;
  if (strstr(st, "mutex") != NULL) return META_MUTEX;
  if (strstr(st, "block") != NULL) return META_BLOCK;
  if (strstr(st, "goroutine") != NULL) return META_GOROUTINE;
  return ingest_type_of_name(st);
}

meta_type ingest_type_of_types(const char *types, const ingest_display *disp,
                               size_t ndisp, char *other, size_t othermax) {
  char name[PPROF_TYPES_MAX];
  const char *p, *slash, *comma;
  size_t n, i;
  int t;

  assert(types != NULL && other != NULL && othermax > 0);
  for (p = types; *p; p = *comma ? comma + 1 : comma) {
    slash = strchr(p, '/');
    comma = p + strcspn(p, ",");
    n = (slash != NULL && slash < comma ? slash : comma) - p;
    if (n == 4 && memcmp(p, "wall", 4) == 0) return META_WALL;
  }
  name[0] = '\0';
  for (p = types; *p; p = *comma ? comma + 1 : comma) {
    slash = strchr(p, '/');
    comma = p + strcspn(p, ",");
    n = (size_t)((slash != NULL && slash < comma ? slash : comma) - p);
    if (n >= sizeof name) n = sizeof name - 1;
    memcpy(name, p, n);
    name[n] = '\0';
    const char *shown = name;
    for (i = 0; i < ndisp; i++)
      if (strcmp(disp[i].sample_type, name) == 0 && disp[i].display[0]) {
        shown = disp[i].display;
        break;
      }
    if ((t = type_of_sample_name(shown)) >= 0) return (meta_type)t;
  }
  snprintf(other, othermax, "%s", name);
  return META_OTHER;
}

/* ---- labels -------------------------------------------------------------------- */

/* The pairs as sent, copied; made canonical by meta_labels_from_pairs. */
struct ingest_labels {
  char **keys, **values;
  size_t n, cap, bytes;
};

ingest_labels *ingest_labels_new(void) { return calloc(1, sizeof(ingest_labels)); }

void ingest_labels_free(ingest_labels *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->n; i++) {
    free(l->keys[i]);
    free(l->values[i]);
  }
  free(l->keys);
  free(l->values);
  free(l);
}

int ingest_labels_add(ingest_labels *l, const char *key, size_t klen,
                      const char *value, size_t vlen) {
  char *k, *v;
  assert(l != NULL && (key != NULL || klen == 0) &&
         (value != NULL || vlen == 0));
  if (klen == 0 || (klen >= 2 && key[0] == '_' && key[1] == '_')) return 0;
  if (l->bytes + klen + vlen > LABELS_MAX) return -1;
  if (l->n == l->cap) {
    size_t cap = l->cap ? 2 * l->cap : 8;
    char **nk = realloc(l->keys, cap * sizeof *nk);
    if (nk == NULL) return -1;
    l->keys = nk;
    char **nv = realloc(l->values, cap * sizeof *nv);
    if (nv == NULL) return -1;
    l->values = nv;
    l->cap = cap;
  }
  k = strndup(key ? key : "", klen);
  v = strndup(value ? value : "", vlen);
  if (k == NULL || v == NULL) {
    free(k);
    free(v);
    return -1;
  }
  l->keys[l->n] = k;
  l->values[l->n++] = v;
  l->bytes += klen + vlen;
  return 0;
}

int ingest_labels_canonical(const ingest_labels *l, char **out,
                            char err[INGEST_ERRMAX]) {
  char why[META_ERRMAX] = "";
  assert(l != NULL && out != NULL);
  if (meta_labels_from_pairs((const char *const *)l->keys,
                             (const char *const *)l->values, l->n, out,
                             why) != 0)
    return ingest_fail(err, "invalid labels: %s",
                       why[0] ? why : "out of memory");
  return 0;
}

/* ---- Pyroscope application names ----------------------------------------------- */

void ingest_name_clear(ingest_name *n) {
  if (n == NULL) return;
  free(n->service);
  free(n->type_name);
  ingest_labels_free(n->labels);
  memset(n, 0, sizeof *n);
}

/* Trims spaces around s[0..*n), moving s; returns the new start. */
static const char *trim(const char *s, size_t *n) {
  while (*n > 0 && (*s == ' ' || *s == '\t')) s++, (*n)--;
  while (*n > 0 && (s[*n - 1] == ' ' || s[*n - 1] == '\t')) (*n)--;
  return s;
}

/* The pairs of "k=v,k=v" (the text between the braces) into l. */
static int parse_pairs(const char *p, size_t n, ingest_labels *l, char *err) {
  const char *end = p + n;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    if (comma == NULL) comma = end;
    const char *eq = memchr(p, '=', (size_t)(comma - p));
    size_t kl, vl;
    const char *k, *v;
    if (eq == NULL) {
      kl = (size_t)(comma - p);
      if (trim(p, &kl), kl == 0) { /* an empty item ("a=1,") */
        p = comma + (comma < end);
        continue;
      }
      return ingest_fail(err, "label without '=' in name: \"%.*s\"",
                  (int)(comma - p), p);
    }
    kl = (size_t)(eq - p);
    vl = (size_t)(comma - eq - 1);
    k = trim(p, &kl);
    v = trim(eq + 1, &vl);
    if (ingest_labels_add(l, k, kl, v, vl) != 0)
      return ingest_fail(err, "labels too long or out of memory");
    p = comma + (comma < end);
  }
  return 0;
}

int ingest_name_parse(const char *name, int typed, ingest_name *out,
                      char err[INGEST_ERRMAX]) {
  ingest_name n;
  const char *brace, *close, *app, *dot;
  size_t alen;
  int t;

  assert(out != NULL);
  memset(&n, 0, sizeof n);
  n.type = META_OTHER;
  if (name == NULL || *name == '\0') return ingest_fail(err, "missing \"name\"");
  brace = strchr(name, '{');
  alen = brace ? (size_t)(brace - name) : strlen(name);
  app = trim(name, &alen);
  if ((n.labels = ingest_labels_new()) == NULL) goto nomem;
  if (brace != NULL) {
    close = strchr(brace, '}');
    if (close == NULL || close[1] != '\0') {
      ingest_fail(err, "unclosed or trailing '{...}' in name \"%s\"", name);
      goto bad;
    }
    if (parse_pairs(brace + 1, (size_t)(close - brace - 1), n.labels, err))
      goto bad;
  }
  if (typed) {
    dot = memrchr(app, '.', alen);
    if (dot == NULL) {
      n.type = META_CPU;
      n.type_name = strdup("cpu");
    } else {
      n.type_name = strndup(dot + 1, (size_t)(app + alen - dot - 1));
      alen = (size_t)(dot - app);
      if (n.type_name == NULL) goto nomem;
      if ((t = ingest_type_of_name(n.type_name)) >= 0) {
        n.type = (meta_type)t;
      } else if (ingest_labels_add(n.labels, INGEST_OTHER_KEY,
                                   strlen(INGEST_OTHER_KEY), n.type_name,
                                   strlen(n.type_name)) != 0) {
        goto nomem;
      }
    }
    if (n.type_name == NULL) goto nomem;
  }
  if ((n.service = strndup(app, alen)) == NULL) goto nomem;
  if (!meta_service_valid(n.service)) {
    ingest_fail(err, "invalid application name \"%s\"", n.service);
    goto bad;
  }
  *out = n;
  return 0;
nomem:
  ingest_fail(err, "out of memory");
bad:
  ingest_name_clear(&n);
  return -1;
}

/* ---- folded and lines stacks -> pprof -------------------------------------------- */

/* What the type and units of a text ingest become: sample types, with the
** period type being the last sample type (Go's cpu profile: the values
** [n, n * period] of samples/count and cpu/nanoseconds). */
typedef struct stack_kind {
  const char *type, *unit;   /* the (last) sample type */
  int counted;               /* samples/count first, then type/unit = n * period */
} stack_kind;

static stack_kind kind_of(const char *tname, const char *units) {
  static const struct {
    const char *name;
    stack_kind k;
  } by_name[] = {
    {"cpu", {"cpu", "nanoseconds", 1}},
    {"process_cpu", {"cpu", "nanoseconds", 1}},
    {"itimer", {"cpu", "nanoseconds", 1}},
    {"wall", {"wall", "nanoseconds", 1}},
    {"inuse_objects", {"inuse_objects", "count", 0}},
    {"inuse_space", {"inuse_space", "bytes", 0}},
    {"alloc_objects", {"alloc_objects", "count", 0}},
    {"alloc_space", {"alloc_space", "bytes", 0}},
    {"goroutine", {"goroutine", "count", 0}},
    {"goroutines", {"goroutine", "count", 0}},
    {"mutex_count", {"contentions", "count", 0}},
    {"block_count", {"contentions", "count", 0}},
    {"lock_count", {"contentions", "count", 0}},
    {"mutex_duration", {"delay", "nanoseconds", 0}},
    {"block_duration", {"delay", "nanoseconds", 0}},
    {"lock_duration", {"delay", "nanoseconds", 0}},
  };
  static const struct {
    const char *units;
    stack_kind k;
  } by_units[] = {
    {"samples", {"samples", "count", 0}},
    {"objects", {"objects", "count", 0}},
    {"bytes", {"space", "bytes", 0}},
    {"lock_samples", {"contentions", "count", 0}},
    {"lock_nanoseconds", {"delay", "nanoseconds", 0}},
    {"goroutines", {"goroutine", "count", 0}},
  };
  size_t i;
  stack_kind k = {"samples", "count", 0};

  if (tname == NULL) tname = "cpu";
  for (i = 0; i < sizeof by_name / sizeof *by_name; i++)
    if (strcmp(tname, by_name[i].name) == 0) return by_name[i].k;
  if (units == NULL || *units == '\0') units = "samples";
  for (i = 0; i < sizeof by_units / sizeof *by_units; i++)
    if (strcmp(units, by_units[i].units) == 0) return by_units[i].k;
  k.unit = units; /* a unit of its own: samples/<units> */
  return k;
}

/* Splits one line of n bytes into frames and adds it. */
static int add_line(pprof_builder *pb, const char *line, size_t n,
                    int lines, int64_t period, int counted, size_t lineno,
                    pprof_frame **fr, size_t *frcap, int *busy, char *err) {
  const char *p = line, *end = line + n, *semi;
  int64_t vals[2], v = 1;
  size_t nf = 0;
  char perr[PPROF_ERRMAX] = "";
  pprof_rc rc;

  if (!lines) {
    const char *sp = end;
    while (sp > line && sp[-1] != ' ') sp--;
    if (sp == line)
      return ingest_fail(err, "line %zu: no value (folded lines are \"a;b;c 123\")",
                  lineno);
    char num[24];
    size_t nl = (size_t)(end - sp);
    char *e;
    if (nl == 0 || nl >= sizeof num)
      return ingest_fail(err, "line %zu: bad value \"%.*s\"", lineno, (int)nl, sp);
    memcpy(num, sp, nl);
    num[nl] = '\0';
    errno = 0;
    v = strtoll(num, &e, 10);
    if (errno != 0 || *e != '\0' || v < 0 || num[0] == '-' || num[0] == '+')
      return ingest_fail(err, "line %zu: bad value \"%s\"", lineno, num);
    end = sp - 1;
    while (end > line && end[-1] == ' ') end--;
  }
  while (p <= end) {
    semi = memchr(p, ';', (size_t)(end - p));
    if (semi == NULL) semi = end;
    if (nf == *frcap) {
      size_t cap = *frcap ? *frcap * 2 : 64;
      pprof_frame *f = realloc(*fr, cap * sizeof *f);
      if (f == NULL) return ingest_fail(err, "out of memory");
      *fr = f;
      *frcap = cap;
    }
    if (semi == p)
      return ingest_fail(err, "line %zu: empty frame name", lineno);
    memset(&(*fr)[nf], 0, sizeof **fr);
    (*fr)[nf].name = p;
    (*fr)[nf++].name_len = (size_t)(semi - p);
    p = semi + 1;
  }
  /* checked before the product: a signed overflow is undefined */
  if (counted && period > 0 && v > INT64_MAX / period)
    return ingest_fail(err, "line %zu: value too large", lineno);
  vals[0] = v;
  vals[1] = counted ? v * period : 0;
  rc = pprof_builder_add(pb, *fr, nf, vals, perr);
  if (rc != PPROF_OK) {
    if (rc == PPROF_EBUSY && busy != NULL) *busy = 1;
    return ingest_fail(err, "line %zu: %s", lineno, perr);
  }
  return 0;
}

int ingest_stacks_to_pprof(const char *text, size_t len,
                           const ingest_stacks_opts *o, budget *b,
                           void **out, size_t *outlen, int *busy,
                           char err[INGEST_ERRMAX]) {
  pprof_builder *pb = NULL;
  pprof_frame *fr = NULL;
  size_t frcap = 0, lineno = 0;
  const char *p = text, *end = text + len, *nl;
  char perr[PPROF_ERRMAX] = "";
  stack_kind k;
  int64_t period;
  pprof_rc rc;
  int ret = -1;

  assert((text != NULL || len == 0) && o != NULL && o->sample_rate > 0 &&
         out != NULL && outlen != NULL);
  k = kind_of(o->type_name, o->units);
  period = 1000000000 / o->sample_rate;
  if ((pb = pprof_builder_new(b)) == NULL) {
    if (busy != NULL) *busy = 1;
    ingest_fail(err, "out of memory or memory budget exhausted");
    goto out;
  }
  if (k.counted) {
    if (pprof_builder_sample_type(pb, "samples", "count") != PPROF_OK ||
        pprof_builder_sample_type(pb, k.type, k.unit) != PPROF_OK ||
        pprof_builder_period(pb, k.type, k.unit, period) != PPROF_OK)
      goto nomem;
  } else if (pprof_builder_sample_type(pb, k.type, k.unit) != PPROF_OK ||
             pprof_builder_period(pb, k.type, k.unit, 1) != PPROF_OK) {
    goto nomem;
  }
  /* room at once for what text of this size holds (a stack per 64 bytes,
  ** a frame per 16, a distinct one per 64: stacks share most frames), up
  ** to a bound, instead of a dozen growths each taking from the budget;
  ** more still fits, growing.  Not more: the server's allocator gives
  ** freed memory back past 128 KiB, and touching fresh pages each request
  ** cost more than the growths. */
  {
    size_t stacks = len / 64 + 1, frames = len / 16 + 1;
    rc = pprof_builder_reserve(pb, stacks < RESERVE_MAX ? stacks : RESERVE_MAX,
                               frames < RESERVE_MAX ? frames : RESERVE_MAX,
                               stacks < RESERVE_MAX ? stacks : RESERVE_MAX,
                               len / 4 < RESERVE_MAX * 16 ? len / 4
                                                          : RESERVE_MAX * 16);
    if (rc != PPROF_OK) {
      if (rc == PPROF_EBUSY && busy != NULL) *busy = 1;
      goto nomem;
    }
  }
  if (o->from > 0 && o->from < INT64_MAX / 1000000000)
    pprof_builder_time(pb, o->from * 1000000000,
                       o->until > o->from && o->until < INT64_MAX / 1000000000
                           ? (o->until - o->from) * 1000000000 : 0);
  while (p < end) {
    nl = memchr(p, '\n', (size_t)(end - p));
    if (nl == NULL) nl = end;
    size_t n = (size_t)(nl - p);
    lineno++;
    if (n > 0 && p[n - 1] == '\r') n--;
    size_t tn = n;
    const char *t = trim(p, &tn);
    if (tn > 0) {
      if (memchr(t, '\0', tn) != NULL) {
        ingest_fail(err, "line %zu: a NUL byte", lineno);
        goto out;
      }
      if (add_line(pb, t, tn, o->lines, period, k.counted, lineno, &fr,
                   &frcap, busy, err) != 0)
        goto out;
      if (o->max_stacks > 0 && pprof_builder_count(pb) > o->max_stacks) {
        ingest_fail(err, "more than %zu distinct stacks", o->max_stacks);
        goto out;
      }
    }
    p = nl + 1;
  }
  if (pprof_builder_count(pb) == 0) {
    ingest_fail(err, "no stacks");
    goto out;
  }
  rc = pprof_builder_encode(pb, o->gzip, out, outlen, perr);
  if (rc != PPROF_OK) {
    ingest_fail(err, "%s", perr);
    goto out;
  }
  ret = 0;
  goto out;
nomem:
  ingest_fail(err, "out of memory or memory budget exhausted");
out:
  free(fr);
  pprof_builder_free(pb);
  return ret;
}
