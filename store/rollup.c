/*
** rollup.c — the rollup policy shared by the backends (rollup.h): slots,
** the plan that covers a range with rollups and raw profiles, and the
** filters worth a rollup.
*/
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "rollup.h"

static const int64_t spans[STORE_ROLLUP_LEVELS] = {3600, 86400, 7 * 86400};

int64_t store_rollup_span(int level) {
  assert(level >= 0 && level < STORE_ROLLUP_LEVELS);
  return spans[level];
}

int64_t store_rollup_slot(int level, int64_t t) {
  int64_t s = store_rollup_span(level);
  int64_t q = t / s - (t % s != 0 && t < 0); /* floor */
  return q * s;
}

int store_rollup_slot_valid(int level, int64_t start) {
  return start > 0 && store_rollup_slot(level, start) == start;
}

int store_rollup_due(int level, int64_t start, int64_t now) {
  return start + store_rollup_span(level) + STORE_ROLLUP_GRACE <= now;
}

/* ---- plans ------------------------------------------------------------------ */

/* By start, then the biggest level first. */
static int have_cmp(const void *a, const void *b) {
  const store_rollup_have *x = a, *y = b;
  if (x->start != y->start) return x->start < y->start ? -1 : 1;
  return y->level - x->level;
}

/* The first entry of have[] (sorted) with start >= t. */
static size_t lower_bound(const store_rollup_have *have, size_t n, int64_t t) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (have[mid].start < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/* 1 when rollup h may stand in a plan of [.., to] up to level top. */
static int usable(const store_rollup_have *h, int64_t to, int top) {
  return h->level >= 0 && h->level <= top && h->level < STORE_ROLLUP_LEVELS &&
         store_rollup_slot_valid(h->level, h->start) &&
         h->start + store_rollup_span(h->level) - 1 <= to;
}

typedef struct plan {
  store_rollup_piece *v;
  size_t n, cap;
} plan;

static int add_piece(plan *p, int level, int64_t from, int64_t to) {
  if (level < 0 && p->n > 0 && p->v[p->n - 1].level < 0 &&
      p->v[p->n - 1].to + 1 == from) { /* coalesce raw ranges */
    p->v[p->n - 1].to = to;
    return 0;
  }
  if (p->n == p->cap) {
    size_t ncap = p->cap ? 2 * p->cap : 16;
    store_rollup_piece *nv = realloc(p->v, ncap * sizeof *nv);
    if (nv == NULL) return -1;
    p->v = nv;
    p->cap = ncap;
  }
  p->v[p->n++] = (store_rollup_piece){level, from, to};
  return 0;
}

store_rc store_rollup_plan(int64_t from, int64_t to, int top,
                           store_rollup_have *have, size_t nhave,
                           store_rollup_piece **out, size_t *n, char *err) {
  plan p = {0};
  if (nhave > 0) qsort(have, nhave, sizeof *have, have_cmp);
  int64_t t = from;
  size_t i = lower_bound(have, nhave, from);
  while (t <= to) {
    /* The biggest usable rollup starting at t (they sort biggest first). */
    for (; i < nhave && have[i].start == t; i++)
      if (usable(&have[i], to, top)) break;
    if (i < nhave && have[i].start == t) {
      int64_t end = t + store_rollup_span(have[i].level) - 1;
      if (add_piece(&p, have[i].level, t, end) != 0) goto nomem;
      if (end == INT64_MAX) break;
      t = end + 1;
      i = lower_bound(have, nhave, t);
      continue;
    }
    /* Raw profiles up to the next usable rollup, or to the end. */
    size_t j = i;
    while (j < nhave && !usable(&have[j], to, top)) j++;
    int64_t next = j < nhave ? have[j].start : to;
    int64_t raw_to = j < nhave ? next - 1 : to;
    if (add_piece(&p, -1, t, raw_to) != 0) goto nomem;
    if (j == nhave) break;
    t = next;
    i = j;
  }
  *out = p.v;
  *n = p.n;
  return STORE_OK;
nomem:
  free(p.v);
  return store_seterr(err, STORE_NOMEM, "out of memory");
}

/* ---- filters ------------------------------------------------------------------ */

typedef struct cand {
  const char *s; /* into a set, or "" */
  size_t len;
  int64_t count;
} cand;

static int cand_by_text(const void *a, const void *b) {
  const cand *x = a, *y = b;
  size_t n = x->len < y->len ? x->len : y->len;
  int c = memcmp(x->s, y->s, n);
  if (c != 0) return c;
  return x->len < y->len ? -1 : x->len > y->len;
}

static int cand_by_count(const void *a, const void *b) {
  const cand *x = a, *y = b;
  if (x->count != y->count) return x->count > y->count ? -1 : 1;
  return cand_by_text(a, b);
}

/* The length of the key of pair c ("k=v"), or 0 for "" and whole sets. */
static size_t key_len(const cand *c) {
  const char *eq = memchr(c->s, '=', c->len);
  if (c->len == 0 || memchr(c->s, ',', c->len) != NULL || eq == NULL) return 0;
  return (size_t)(eq - c->s);
}

/* Drops, from the candidates c[0..*u) sorted by text and unique, the pairs
** of keys with more than STORE_ROLLUP_FEW_VALUES values, and every whole
** set when the slot holds more than STORE_ROLLUP_FEW_SETS sets (nsets):
** rollups of a pod's or an instance's label then never multiply storage
** and upkeep by the number of pods (issue 21).  Whole sets go first
** (they sort among the pairs: "k=a" < "k=a,l=b" < "k=b"); then the pairs
** of a key are adjacent, as another key's pairs differ before its '='. */
/* When whole sets stay (nsets small), no key has more values than sets:
** none is dropped, and the runs that whole sets cut do not matter. */
_Static_assert(STORE_ROLLUP_FEW_VALUES >= STORE_ROLLUP_FEW_SETS,
               "whole sets stay only when no key has many values");

static void drop_many(cand *c, size_t *u, size_t nsets) {
  size_t k = 0, w = 0;
  for (size_t i = 0; i < *u; i++)
    if (c[i].len == 0 || key_len(&c[i]) > 0 || nsets <= STORE_ROLLUP_FEW_SETS)
      c[w++] = c[i];
  for (size_t i = 0; i < w;) {
    size_t kn = key_len(&c[i]), j = i + 1;
    if (kn == 0) {
      c[k++] = c[i++];
      continue;
    }
    while (j < w && key_len(&c[j]) == kn && memcmp(c[j].s, c[i].s, kn) == 0)
      j++;
    if (j - i <= STORE_ROLLUP_FEW_VALUES)
      for (size_t m = i; m < j; m++) c[k++] = c[m];
    i = j;
  }
  *u = k;
}

store_rc store_rollup_filters(const char *const *sets, const int64_t *counts,
                              size_t n, char ***out, int64_t **out_counts,
                              size_t *nout, char *err) {
  cand *c = NULL;
  size_t k = 0, cap = 1;
  char **names = NULL;
  int64_t *nc = NULL;
  size_t m = 0;
  for (size_t i = 0; i < n; i++) { /* room: "", pairs, the whole set */
    cap += 1;
    for (const char *p = sets[i]; *p; p++) cap += *p == ',';
    cap += sets[i][0] != '\0';
  }
  if ((c = malloc(cap * sizeof *c)) == NULL) goto nomem;
  c[k++] = (cand){"", 0, 0};
  for (size_t i = 0; i < n; i++) {
    const char *s = sets[i];
    size_t len = strlen(s);
    c[0].count += counts[i];
    if (len == 0) continue;
    int pairs = 0;
    for (const char *p = s;;) {
      const char *comma = strchr(p, ',');
      size_t plen = comma ? (size_t)(comma - p) : strlen(p);
      c[k++] = (cand){p, plen, counts[i]};
      pairs++;
      if (comma == NULL) break;
      p = comma + 1;
    }
    /* A whole set of one pair is that pair.  The count of a whole set is
    ** a lower bound (supersets match it too); the builder counts. */
    if (pairs > 1) c[k++] = (cand){s, len, counts[i]};
  }
  assert(k <= cap);
  qsort(c, k, sizeof *c, cand_by_text);
  size_t u = 0;
  for (size_t i = 0; i < k; i++) {
    if (u > 0 && cand_by_text(&c[u - 1], &c[i]) == 0) c[u - 1].count += c[i].count;
    else c[u++] = c[i];
  }
  drop_many(c, &u, n);
  qsort(c, u, sizeof *c, cand_by_count);
  if (u > STORE_ROLLUP_MAX_FILTERS) u = STORE_ROLLUP_MAX_FILTERS;
  names = calloc(u ? u : 1, sizeof *names);
  nc = malloc((u ? u : 1) * sizeof *nc);
  if (names == NULL || nc == NULL) goto nomem;
  for (size_t i = 0; i < u; i++) {
    if ((names[m] = strndup(c[i].s, c[i].len)) == NULL) goto nomem;
    nc[m++] = c[i].count;
  }
  free(c);
  *out = names;
  *out_counts = nc;
  *nout = m;
  return STORE_OK;
nomem:
  free(c);
  store_names_free(names, m);
  free(nc);
  return store_seterr(err, STORE_NOMEM, "out of memory");
}

uint64_t store_rollup_digest(uint64_t d, const char *id) {
  for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
    d ^= *p;
    d *= UINT64_C(1099511628211);
  }
  d ^= 0xff; /* separator: "ab","c" differs from "a","bc" */
  d *= UINT64_C(1099511628211);
  return d;
}

int store_rollup_filter_kept(const char *filter, int whole_set) {
  assert(filter != NULL);
  return filter[0] == '\0' || strchr(filter, ',') == NULL || whole_set;
}
