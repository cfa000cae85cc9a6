/*
** labels.c — label sets: parsing client input into the canonical string
** form described in meta.h, and the operations on canonical strings
** (subset match, iteration, union).
**
** Choices the header leaves open, fixed here:
**   - input is unescaped like Go's url.QueryUnescape (profefe does the
**     same), so '+' means a space; a literal '+' arrives as %2B.  That is
**     why the canonical form escapes '+': it stays a fixed point of parsing;
**   - escaped %00 is refused: keys and values are C strings everywhere else;
**   - empty items ("a=1,,b=2", a trailing comma) are skipped, an item with
**     no '=' is an error, an item with an empty key is dropped;
**   - pairs are ordered by the bytes of their canonical (escaped) key, then
**     value, so every operation on canonical strings is plain memcmp.
*/
#include "meta.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LABELS_MAX (64 * 1024)

/* A piece of a string: not NUL-terminated. */
typedef struct span {
  const char *p;
  size_t n;
} span;

/* One canonical pair: "key=value" in text, the key being its first kn bytes. */
typedef struct pair {
  char *text;
  size_t kn, n;
} pair;

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static int is_space(int c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
         c == '\f';
}

static int must_escape(unsigned char c) {
  return c == '%' || c == ',' || c == '=' || c == '/' || c == '+' ||
         c == ' ' || c < 0x20 || c >= 0x7f;
}

static int span_cmp(span a, span b) {
  int c = memcmp(a.p, b.p, a.n < b.n ? a.n : b.n);
  if (c != 0) return c;
  return a.n < b.n ? -1 : a.n > b.n;
}

/* Unescapes s (n bytes) into out (room for n bytes).  plus_space: '+' is a
** space (client input).  Returns the length, or -1 on a bad or NUL escape. */
static long unescape(const char *s, size_t n, char *out, int plus_space) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] == '%') {
      if (i + 2 >= n) return -1;
      int hi = hexval((unsigned char)s[i + 1]);
      int lo = hi < 0 ? -1 : hexval((unsigned char)s[i + 2]);
      if (lo < 0 || (hi | lo) == 0) return -1;
      out[o++] = (char)(hi << 4 | lo);
      i += 2;
    } else if (s[i] == '+' && plus_space) {
      out[o++] = ' ';
    } else {
      out[o++] = s[i];
    }
  }
  return (long)o;
}

/* Appends the canonical escape of s (n bytes) at out; returns the length. */
static size_t escape(const char *s, size_t n, char *out) {
  static const char hex[] = "0123456789ABCDEF";
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (must_escape(c)) {
      out[o++] = '%';
      out[o++] = hex[c >> 4];
      out[o++] = hex[c & 15];
    } else {
      out[o++] = (char)c;
    }
  }
  return o;
}

/* Trims spaces from both ends of the span. */
static span trim(span s) {
  while (s.n > 0 && is_space((unsigned char)s.p[0])) s.p++, s.n--;
  while (s.n > 0 && is_space((unsigned char)s.p[s.n - 1])) s.n--;
  return s;
}

/* Splits the next comma-separated item off *rest (which must not be empty). */
static span next_item(span *rest) {
  const char *comma = memchr(rest->p, ',', rest->n);
  span item = {rest->p, comma ? (size_t)(comma - rest->p) : rest->n};
  size_t used = comma ? item.n + 1 : item.n;
  rest->p += used;
  rest->n -= used;
  return item;
}

static int pair_cmp(const void *a, const void *b) {
  const pair *x = a, *y = b;
  int c = span_cmp((span){x->text, x->kn}, (span){y->text, y->kn});
  if (c != 0) return c;
  return span_cmp((span){x->text + x->kn + 1, x->n - x->kn - 1},
                  (span){y->text + y->kn + 1, y->n - y->kn - 1});
}

static void seterr(char *err, const char *what, span item) {
  if (err == NULL) return;
  int n = item.n > 40 ? 40 : (int)item.n;
  snprintf(err, META_ERRMAX, "%s in labels: \"%.*s%s\"", what, n, item.p,
           item.n > 40 ? "..." : "");
}

/* Turns one client item "k=v" into a canonical pair.  Returns 1 with *out
** set, 0 when the item is to be skipped (empty, or empty key), -1 on error. */
static int parse_pair(span item, pair *out, char *err) {
  item = trim(item);
  if (item.n == 0) return 0;
  const char *eq = memchr(item.p, '=', item.n);
  if (eq == NULL) {
    seterr(err, "missing '='", item);
    return -1;
  }
  span k = {item.p, (size_t)(eq - item.p)};
  span v = {eq + 1, item.n - k.n - 1};

  /* One buffer: unescaped key and value, then their escaped forms. */
  char *raw = malloc(item.n + 1);
  char *text = malloc(3 * item.n + 2);
  int rc = -1;
  if (raw == NULL || text == NULL) {
    if (err) snprintf(err, META_ERRMAX, "out of memory");
    goto out;
  }
  long kn = unescape(k.p, k.n, raw, 1);
  long vn = kn < 0 ? -1 : unescape(v.p, v.n, raw + kn, 1);
  if (kn < 0 || vn < 0) {
    seterr(err, "bad %-escape", item);
    goto out;
  }
  span rk = trim((span){raw, (size_t)kn});
  span rv = trim((span){raw + kn, (size_t)vn});
  if (rk.n == 0) {
    rc = 0;
    goto out;
  }
  out->kn = escape(rk.p, rk.n, text);
  text[out->kn] = '=';
  out->n = out->kn + 1 + escape(rv.p, rv.n, text + out->kn + 1);
  text[out->n] = '\0';
  out->text = text;
  text = NULL;
  rc = 1;
out:
  free(raw);
  free(text);
  return rc;
}

/* Sorts pairs, drops duplicates and joins them into one malloc'd string. */
static char *join_pairs(pair *v, size_t n) {
  qsort(v, n, sizeof *v, pair_cmp);
  size_t total = 1;
  for (size_t i = 0; i < n; i++) total += v[i].n + 1;
  char *s = malloc(total), *o = s;
  if (s == NULL) return NULL;
  for (size_t i = 0; i < n; i++) {
    if (i > 0 && pair_cmp(&v[i - 1], &v[i]) == 0) continue;
    if (o != s) *o++ = ',';
    memcpy(o, v[i].text, v[i].n);
    o += v[i].n;
  }
  *o = '\0';
  return s;
}

int meta_labels_parse(const char *in, char **out, char err[META_ERRMAX]) {
  assert(out != NULL);
  size_t len = in ? strlen(in) : 0;
  if (len > LABELS_MAX) {
    if (err) snprintf(err, META_ERRMAX, "labels too long (over 64 KiB)");
    return -1;
  }
  size_t cap = 1;
  for (size_t i = 0; i < len; i++) cap += in[i] == ',';
  pair *v = calloc(cap, sizeof *v);
  size_t n = 0;
  int rc = -1;
  if (v == NULL) {
    if (err) snprintf(err, META_ERRMAX, "out of memory");
    return -1;
  }
  span rest = {in ? in : "", len};
  while (rest.n > 0) {
    int r = parse_pair(next_item(&rest), &v[n], err);
    if (r < 0) goto out;
    n += (size_t)r;
  }
  char *s = join_pairs(v, n);
  if (s == NULL) {
    if (err) snprintf(err, META_ERRMAX, "out of memory");
    goto out;
  }
  *out = s;
  rc = 0;
out:
  for (size_t i = 0; i < n; i++) free(v[i].text);
  free(v);
  return rc;
}

int meta_labels_from_pairs(const char *const *keys, const char *const *values,
                           size_t n, char **out, char err[META_ERRMAX]) {
  assert(out != NULL && (n == 0 || (keys != NULL && values != NULL)));
  size_t cap = 1, o = 0;
  for (size_t i = 0; i < n; i++) {
    cap += 3 * (strlen(keys[i]) + strlen(values[i])) + 2;
    if (cap > 3 * LABELS_MAX) break;   /* parse refuses it anyway */
  }
  if (cap > 3 * LABELS_MAX) {
    if (err) snprintf(err, META_ERRMAX, "labels too long (over 64 KiB)");
    return -1;
  }
  char *text = malloc(cap);
  if (text == NULL) {
    if (err) snprintf(err, META_ERRMAX, "out of memory");
    return -1;
  }
  /* Escaped pairs joined as a client would send them, then parsed: one
  ** set of rules for every way labels come in. */
  for (size_t i = 0; i < n; i++) {
    if (keys[i][0] == '\0') continue;
    if (o > 0) text[o++] = ',';
    o += escape(keys[i], strlen(keys[i]), text + o);
    text[o++] = '=';
    o += escape(values[i], strlen(values[i]), text + o);
  }
  text[o] = '\0';
  int rc = meta_labels_parse(text, out, err);
  free(text);
  return rc;
}

int meta_labels_canonical(const char *s) {
  if (s == NULL) return 0;
  char *c = NULL;
  if (meta_labels_parse(s, &c, NULL) != 0) return 0;
  int same = strcmp(c, s) == 0;
  free(c);
  return same;
}

/* Splits the next pair of a canonical string into key and value spans.
** Returns 0 at the end, 1 for a pair, -1 when the item has no '='. */
static int next_pair(span *rest, span *k, span *v) {
  if (rest->n == 0) return 0;
  span item = next_item(rest);
  const char *eq = memchr(item.p, '=', item.n);
  if (eq == NULL) return -1;
  *k = (span){item.p, (size_t)(eq - item.p)};
  *v = (span){eq + 1, item.n - k->n - 1};
  return 1;
}

static span whole(const char *s) {
  return (span){s ? s : "", s ? strlen(s) : 0};
}

/* Compares the pairs (ak, av) and (bk, bv) in canonical order. */
static int kv_cmp(span ak, span av, span bk, span bv) {
  int c = span_cmp(ak, bk);
  return c != 0 ? c : span_cmp(av, bv);
}

int meta_labels_match(const char *filter, const char *labels) {
  span f = whole(filter), l = whole(labels);
  span fk, fv, lk, lv;
  int have_l = 0;
  for (;;) {
    int r = next_pair(&f, &fk, &fv);
    if (r == 0) return 1;
    if (r < 0) return 0;
    /* Advance through labels until a pair >= the filter's pair. */
    for (;;) {
      if (!have_l) {
        if (next_pair(&l, &lk, &lv) != 1) return 0;
        have_l = 1;
      }
      int c = kv_cmp(lk, lv, fk, fv);
      if (c > 0) return 0;
      have_l = 0;
      if (c == 0) break;
    }
  }
}

int meta_labels_foreach(const char *canon,
                        int (*fn)(const char *key, const char *value, void *arg),
                        void *arg) {
  assert(fn != NULL);
  span rest = whole(canon), k, v;
  char *buf = malloc(rest.n + 2);
  int rc = 0, r;
  if (buf == NULL) return -1;
  while ((r = next_pair(&rest, &k, &v)) == 1) {
    long kn = unescape(k.p, k.n, buf, 0);
    long vn = kn < 0 ? -1 : unescape(v.p, v.n, buf + kn + 1, 0);
    if (vn < 0) {
      rc = -1;
      goto out;
    }
    buf[kn] = '\0';
    buf[kn + 1 + vn] = '\0';
    rc = fn(buf, buf + kn + 1, arg);
    if (rc != 0) goto out;
  }
  rc = r < 0 ? -1 : 0;
out:
  free(buf);
  return rc;
}

char *meta_labels_union(const char *a, const char *b) {
  span ra = whole(a), rb = whole(b);
  char *s = malloc(ra.n + rb.n + 2), *o = s;
  if (s == NULL) return NULL;
  /* Initialised only to quiet -O3's maybe-uninitialized: next_pair sets
  ** them whenever it returns 1, and they are read only then. */
  span ak = { 0 }, av = { 0 }, bk = { 0 }, bv = { 0 };
  int ha = next_pair(&ra, &ak, &av) == 1;
  int hb = next_pair(&rb, &bk, &bv) == 1;
  while (ha || hb) {
    int c = !ha ? 1 : !hb ? -1 : kv_cmp(ak, av, bk, bv);
    span k = c <= 0 ? ak : bk, v = c <= 0 ? av : bv;
    if (o != s) *o++ = ',';
    memcpy(o, k.p, k.n);
    o += k.n;
    *o++ = '=';
    memcpy(o, v.p, v.n);
    o += v.n;
    if (c <= 0) ha = next_pair(&ra, &ak, &av) == 1;
    if (c >= 0) hb = next_pair(&rb, &bk, &bv) == 1;
  }
  *o = '\0';
  return s;
}
