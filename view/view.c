/*
** view.c — the public entry points of view/: format names, and rendering
** a profile or a diff (decode once into a pprof_stacks, build what the
** format needs, write it into one buffer); plus the output buffer the
** formats share.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal.h"

/* ---- buffer ----------------------------------------------------------------- */

static int vbuf_room(vbuf *b, size_t n) {
  size_t cap;
  char *p;

  if (b->oom)
    return -1;
  if (b->len + n + 1 <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 4096;
  while (cap < b->len + n + 1)
    cap *= 2;
  if ((p = realloc(b->p, cap)) == NULL) {
    b->oom = 1;
    return -1;
  }
  b->p = p;
  b->cap = cap;
  return 0;
}

void vbuf_put(vbuf *b, const char *s, size_t n) {
  if (vbuf_room(b, n))
    return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void vbuf_puts(vbuf *b, const char *s) { vbuf_put(b, s, strlen(s)); }

void vbuf_printf(vbuf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || vbuf_room(b, (size_t)n))
    return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

/* The length of the UTF-8 character at s (1 to 4), or 0 when s does not
** start one (or, xml, one XML 1.0 does not allow: U+FFFE, U+FFFF): names
** in profiles are any bytes, and a single bad one makes an svg unreadable
** and a JSON answer not JSON. */
static size_t utf8_char_len(const unsigned char *s, int xml) {
  unsigned char c = s[0], lo = 0x80, hi = 0xbf;
  size_t n, i;

  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) n = 3;
  else if (c >= 0xf0 && c <= 0xf4) n = 4;
  else return 0;
  if (c == 0xe0) lo = 0xa0;      /* overlong */
  else if (c == 0xed) hi = 0x9f; /* surrogates */
  else if (c == 0xf0) lo = 0x90; /* overlong */
  else if (c == 0xf4) hi = 0x8f; /* past U+10FFFF */
  if (s[1] < lo || s[1] > hi) return 0;
  for (i = 2; i < n; i++)
    if ((s[i] & 0xc0) != 0x80) return 0;
  if (xml && c == 0xef && s[1] == 0xbf && s[2] >= 0xbe) return 0; /* U+FFFE/F */
  return n;
}

void vbuf_xml(vbuf *b, const char *s) {
  const char *run = s;
  size_t n = 1;

  for (; *s; s += n) {
    const char *rep = NULL;
    n = 1;
    switch (*s) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = "&quot;"; break;
    default:
      if ((unsigned char)*s < 0x20)
        rep = "?";
      else if ((n = utf8_char_len((const unsigned char *)s, 1)) == 0)
        rep = "\xef\xbf\xbd"; /* U+FFFD, for the byte */
    }
    if (rep != NULL) {
      vbuf_put(b, run, (size_t)(s - run));
      vbuf_puts(b, rep);
      n = 1;
      run = s + 1;
    }
  }
  vbuf_put(b, run, (size_t)(s - run));
}

void vbuf_json(vbuf *b, const char *s) {
  const char *run = s;
  char esc[8];
  size_t n;

  for (; *s; s += n) {
    unsigned char c = (unsigned char)*s;
    const char *rep = NULL;
    n = 1;
    if (c < 0x20 || c == '"' || c == '\\') {
      snprintf(esc, sizeof esc, "\\u%04x", c);
      rep = esc;
    } else if (c >= 0x80 &&
               (n = utf8_char_len((const unsigned char *)s, 0)) == 0) {
      rep = "\\ufffd"; /* for the byte, as in an svg */
      n = 1;
    }
    if (rep != NULL) {
      vbuf_put(b, run, (size_t)(s - run));
      vbuf_puts(b, rep);
      run = s + 1;
    }
  }
  vbuf_put(b, run, (size_t)(s - run));
}

/* ---- formats ---------------------------------------------------------------- */

static const struct {
  const char *name, *ext, *ctype;
} formats[] = {
    [VIEW_PPROF] = {"pprof", "", "application/octet-stream"},
    [VIEW_FOLDED] = {"folded", ".folded", "text/plain; charset=utf-8"},
    [VIEW_SVG] = {"svg", ".svg", "image/svg+xml"},
    [VIEW_TOP] = {"top", ".top", "text/plain; charset=utf-8"},
    [VIEW_JSON] = {"json", ".json", "application/json"},
};

int view_format_parse(const char *name, view_format *out) {
  size_t i;

  assert(out != NULL);
  if (name == NULL || *name == '\0') {
    *out = VIEW_PPROF;
    return 0;
  }
  for (i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (strcmp(name, formats[i].name) == 0) {
      *out = (view_format)i;
      return 0;
    }
  return -1;
}

const char *view_format_ext(view_format f) {
  assert((size_t)f < sizeof formats / sizeof formats[0]);
  return formats[f].ext;
}

const char *view_content_type(view_format f) {
  assert((size_t)f < sizeof formats / sizeof formats[0]);
  return formats[f].ctype;
}

/* ---- rendering -------------------------------------------------------------- */

int view_pick_type(const pprof_stacks *st, const char *sample, size_t *type,
                   char *err) {
  size_t i, n = pprof_stacks_ntypes(st), o;

  if (n == 0) {
    snprintf(err, VIEW_ERRMAX, "the profile has no sample types");
    return -1;
  }
  if (sample == NULL || *sample == '\0') {
    *type = pprof_stacks_default_type(st);
    return 0;
  }
  for (i = 0; i < n; i++)
    if (strcmp(pprof_stacks_type(st, i), sample) == 0) {
      *type = i;
      return 0;
    }
  o = (size_t)snprintf(err, VIEW_ERRMAX, "unknown sample type \"%.64s\" "
                                         "(the profile has", sample);
  for (i = 0; i < n && o < VIEW_ERRMAX; i++)
    o += (size_t)snprintf(err + o, VIEW_ERRMAX - o, "%s %s",
                          i ? "," : "", pprof_stacks_type(st, i));
  if (o < VIEW_ERRMAX)
    snprintf(err + o, VIEW_ERRMAX - o, ")");
  return -1;
}

static view_rc of_pprof(pprof_rc rc) {
  switch (rc) {
  case PPROF_OK: return VIEW_OK;
  case PPROF_ENOMEM: case PPROF_EBUSY: return VIEW_ENOMEM;
  case PPROF_EMISMATCH: return VIEW_EMISMATCH;
  default: return VIEW_EPROFILE;
  }
}

/* Renders f (not pprof) of the decoded profile; diff as for vtree. */
static view_rc render_stacks(const pprof_stacks *st, view_format f,
                             const char *sample, const char *title, int diff,
                             void **out, size_t *olen, char *err) {
  vtree t;
  vbuf b = {NULL, 0, 0, 0};
  size_t type;
  view_rc rc = VIEW_ENOMEM;

  memset(&t, 0, sizeof t);
  if (view_pick_type(st, sample, &type, err))
    return VIEW_EINVAL;
  if (f == VIEW_TOP || f == VIEW_JSON) {
    if (view_top(st, type, f == VIEW_JSON, &b))
      goto out;
  } else {
    if (vtree_build(&t, st, type, diff))
      goto out;
    if (f == VIEW_FOLDED)
      view_folded(&t, &b);
    else
      view_svg(&t, title, &b);
  }
  if (b.oom)
    goto out;
  if (b.p == NULL && (b.p = malloc(1)) == NULL)
    goto out;
  *out = b.p;
  *olen = b.len;
  b.p = NULL;
  rc = VIEW_OK;
out:
  if (rc == VIEW_ENOMEM)
    snprintf(err, VIEW_ERRMAX, "out of memory");
  free(b.p);
  vtree_free(&t);
  return rc;
}

view_rc view_render(const void *pprof, size_t len, view_format f,
                    const char *sample, const char *title, void **out,
                    size_t *olen, char err[VIEW_ERRMAX]) {
  char perr[PPROF_ERRMAX] = "", dummy[VIEW_ERRMAX];
  pprof_stacks *st = NULL;
  pprof_rc prc;
  view_rc rc;
  void *copy;

  assert(pprof != NULL && out != NULL && olen != NULL);
  if (err == NULL)
    err = dummy;
  if (f == VIEW_PPROF) {
    if ((copy = malloc(len ? len : 1)) == NULL) {
      snprintf(err, VIEW_ERRMAX, "out of memory");
      return VIEW_ENOMEM;
    }
    memcpy(copy, pprof, len);
    *out = copy;
    *olen = len;
    return VIEW_OK;
  }
  if ((prc = pprof_stacks_decode(pprof, len, 0, &st, perr)) != PPROF_OK) {
    snprintf(err, VIEW_ERRMAX, "%s", perr);
    return of_pprof(prc);
  }
  rc = render_stacks(st, f, sample, title, 0, out, olen, err);
  pprof_stacks_free(st);
  return rc;
}

view_rc view_diff(const void *base, size_t blen, const void *target,
                  size_t tlen, view_format f, const char *sample,
                  const char *title, void **out, size_t *olen,
                  char err[VIEW_ERRMAX]) {
  char perr[PPROF_ERRMAX] = "", dummy[VIEW_ERRMAX];
  pprof_stacks *st = NULL;
  void *d = NULL;
  size_t dlen = 0;
  pprof_rc prc;
  view_rc rc;

  assert(base != NULL && target != NULL && out != NULL && olen != NULL);
  if (err == NULL)
    err = dummy;
  prc = pprof_diff(base, blen, target, tlen, 0, &d, &dlen, perr);
  if (prc == PPROF_OK && f != VIEW_PPROF)
    prc = pprof_stacks_decode(d, dlen, 0, &st, perr);
  if (prc != PPROF_OK) {
    snprintf(err, VIEW_ERRMAX, "%s", perr);
    rc = of_pprof(prc);
    goto out;
  }
  if (f == VIEW_PPROF) {
    *out = d;
    *olen = dlen;
    d = NULL;
    rc = VIEW_OK;
    goto out;
  }
  rc = render_stacks(st, f, sample, title, 1, out, olen, err);
out:
  pprof_stacks_free(st);
  free(d);
  return rc;
}

/* A unix time as "2006-01-02T15:04:05Z" into out (32 bytes). */
static void utc(int64_t t, char out[32]) {
  time_t s = (time_t)t;
  struct tm tm;

  if (gmtime_r(&s, &tm) == NULL ||
      strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, 32, "%lld", (long long)t);
}

char *view_title(const char *service, const char *type, const char *labels,
                 int diff, int64_t base_from, int64_t base_to, int64_t from,
                 int64_t to) {
  char bf[32], bt[32], f[32], t[32], *out = NULL;
  int n;

  utc(base_from, bf);
  utc(base_to, bt);
  utc(from, f);
  utc(to, t);
  n = asprintf(&out, "%s %s%s%s %s%s%s%s%s..%s", service, type,
               labels && *labels ? " " : "", labels ? labels : "",
               diff ? bf : "", diff ? ".." : "", diff ? bt : "",
               diff ? " -> " : "", f, t);
  return n < 0 ? NULL : out;
}
