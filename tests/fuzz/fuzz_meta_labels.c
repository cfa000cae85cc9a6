/*
** fuzz_meta_labels.c — libFuzzer target for label sets (meta/meta.h):
** meta_labels_parse, meta_labels_canonical, meta_labels_match,
** meta_labels_foreach and meta_labels_union.
**
** Input: "LABELS\nFILTER" (the filter part is optional), as a client would
** send them in ?labels= or name a FUSE label directory.
**
** Checks the promises of the canonical form:
**   - a parsed set is canonical and parsing it again gives it back;
**   - a string meta_labels_canonical accepts is a fixed point of parse;
**   - every set matches itself and the empty filter;
**   - foreach visits pairs with non-empty keys and returns 0;
**   - the union is canonical, contains both sets, and is idempotent;
**   - meta_labels_match agrees with a naive subset test over the pairs
**     that foreach reports.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "meta.h"


/* The pairs of a set, as foreach reports them (unescaped). */
typedef struct pairs {
  size_t n, cap;
  char **kv;   /* 2*n strings: key, value, key, value ... */
} pairs;

static void pairs_free(pairs *p) {
  for (size_t i = 0; i < 2 * p->n; i++) free(p->kv[i]);
  free(p->kv);
}

static int collect(const char *key, const char *value, void *arg) {
  pairs *p = arg;

  FUZZ_CHECK(key != NULL && value != NULL);
  FUZZ_CHECK(key[0] != '\0');
  if (p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 8;
    char **kv = realloc(p->kv, 2 * cap * sizeof *kv);
    if (kv == NULL) return 1;
    p->kv = kv;
    p->cap = cap;
  }
  p->kv[2 * p->n] = strdup(key);
  p->kv[2 * p->n + 1] = strdup(value);
  p->n++;
  return 0;
}

/* Collects the pairs of canonical set s; 0 on success. */
static int pairs_of(const char *s, pairs *out) {
  memset(out, 0, sizeof *out);
  if (meta_labels_foreach(s, collect, out) != 0) {
    pairs_free(out);
    return -1;
  }
  for (size_t i = 0; i < 2 * out->n; i++)
    if (out->kv[i] == NULL) { pairs_free(out); return -1; }
  return 0;
}

/* Naive subset test: every pair of f is among the pairs of l. */
static int naive_match(const pairs *f, const pairs *l) {
  for (size_t i = 0; i < f->n; i++) {
    int found = 0;
    for (size_t j = 0; j < l->n && !found; j++)
      found = !strcmp(f->kv[2 * i], l->kv[2 * j]) &&
              !strcmp(f->kv[2 * i + 1], l->kv[2 * j + 1]);
    if (!found) return 0;
  }
  return 1;
}

/* Parses s and checks the canonical-form promises; returns the set
** (caller frees) or NULL when s is rejected. */
static char *parse_checked(const char *s) {
  char *c = NULL, *again = NULL;
  char err[META_ERRMAX];

  err[0] = '\0';
  if (meta_labels_parse(s, &c, err) != 0) {
    FUZZ_CHECK(c == NULL);
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    FUZZ_CHECK(!meta_labels_canonical(s));
    return NULL;
  }
  FUZZ_CHECK(c != NULL);
  FUZZ_CHECK(meta_labels_canonical(c));
  if (meta_labels_parse(c, &again, err) == 0) {
    FUZZ_CHECK(strcmp(c, again) == 0);
    free(again);
  } else {
    FUZZ_CHECK(0 && "a canonical set must parse");
  }
  if (meta_labels_canonical(s)) FUZZ_CHECK(strcmp(s, c) == 0);
  FUZZ_CHECK(meta_labels_match(c, c));
  FUZZ_CHECK(meta_labels_match("", c));
  FUZZ_CHECK(meta_labels_match(NULL, c));
  return c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *buf, *nl, *la = NULL, *lf = NULL, *u = NULL, *u2 = NULL;
  const char *filter = NULL;
  pairs pa = { 0 }, pf = { 0 };
  int have_pa = 0, have_pf = 0;

  if ((buf = malloc(size + 1)) == NULL) return 0;
  memcpy(buf, data, size);
  buf[size] = '\0';
  if ((nl = strchr(buf, '\n')) != NULL) {
    *nl = '\0';
    filter = nl + 1;
  }

  la = parse_checked(buf);
  if (filter != NULL) lf = parse_checked(filter);
  if (la == NULL) goto out;
  have_pa = pairs_of(la, &pa) == 0;
  FUZZ_CHECK(have_pa || !"foreach failed on a canonical set");
  if (lf == NULL) goto out;
  have_pf = pairs_of(lf, &pf) == 0;
  FUZZ_CHECK(have_pf);

  /* An unescaped NUL ends a C string, so two different values may look
  ** equal to the naive test; compare only sets without %00. */
  if (!strstr(la, "%00") && !strstr(lf, "%00"))
    FUZZ_CHECK(meta_labels_match(lf, la) == naive_match(&pf, &pa));

  if ((u = meta_labels_union(la, lf)) == NULL) goto out;
  FUZZ_CHECK(meta_labels_canonical(u));
  FUZZ_CHECK(meta_labels_match(la, u));
  FUZZ_CHECK(meta_labels_match(lf, u));
  if ((u2 = meta_labels_union(u, la)) != NULL) FUZZ_CHECK(strcmp(u, u2) == 0);

out:
  if (have_pa) pairs_free(&pa);
  if (have_pf) pairs_free(&pf);
  free(u2);
  free(u);
  free(lf);
  free(la);
  free(buf);
  return 0;
}
