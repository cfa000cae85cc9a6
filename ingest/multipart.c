/*
** multipart.c — the fields of a multipart/form-data body (RFC 7578), as
** Pyroscope's SDKs send a pprof to /ingest (fields "profile",
** "prev_profile", "sample_type_config").  Nothing is copied: a field is a
** pointer into the body.  Only what form-data uses is read: the boundary,
** each part's Content-Disposition name, its bytes.
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

#define BOUNDARY_MAX 70 /* RFC 2046 */


/* The boundary parameter of a Content-Type into b (NUL-terminated). */
static int boundary_of(const char *ctype, char b[BOUNDARY_MAX + 1]) {
  const char *p = strcasestr(ctype, "boundary=");
  size_t n;
  if (p == NULL) return -1;
  p += sizeof "boundary=" - 1;
  if (*p == '"') {
    const char *q = strchr(++p, '"');
    if (q == NULL) return -1;
    n = (size_t)(q - p);
  } else {
    n = strcspn(p, "; \t");
  }
  if (n == 0 || n > BOUNDARY_MAX) return -1;
  memcpy(b, p, n);
  b[n] = '\0';
  return 0;
}

int ingest_multipart_is(const char *ctype) {
  return ctype != NULL &&
         strncasecmp(ctype, "multipart/form-data", 19) == 0;
}

/* 1 when the headers h[0..n) name the form field name. */
static int names_field(const char *h, size_t n, const char *name) {
  const char *end = h + n, *p = h;
  size_t nl = strlen(name);
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) eol = end;
    if ((size_t)(eol - p) > 20 && strncasecmp(p, "content-disposition:", 20) == 0) {
      const char *q = p + 20;
      while (q + 6 + nl < eol) {
        const char *m = memmem(q, (size_t)(eol - q), "name=", 5);
        if (m == NULL) break;
        /* not the tail of "filename=" */
        if (m > p && (m[-1] == ' ' || m[-1] == ';' || m[-1] == '\t')) {
          m += 5;
          int quoted = *m == '"';
          m += quoted;
          if (m + nl <= eol && memcmp(m, name, nl) == 0 &&
              (quoted ? m[nl] == '"' : (m + nl == eol || m[nl] == ';' ||
                                        m[nl] == '\r' || m[nl] == ' ')))
            return 1;
        }
        q = m + 1;
      }
    }
    p = eol + 1;
  }
  return 0;
}

int ingest_multipart_field(const char *body, size_t len, const char *ctype,
                           const char *name, const char **data,
                           size_t *dlen, char err[INGEST_ERRMAX]) {
  char b[BOUNDARY_MAX + 1], delim[BOUNDARY_MAX + 5];
  const char *p, *end = body + len, *hend, *next;
  size_t dl;

  assert((body != NULL || len == 0) && ctype != NULL && name != NULL &&
         data != NULL && dlen != NULL);
  if (boundary_of(ctype, b) != 0)
    return ingest_fail(err, "multipart body without a valid boundary");
  /* "\r\n--boundary": the body is searched from a virtual CRLF before it */
  dl = (size_t)snprintf(delim, sizeof delim, "\r\n--%s", b);
  if (len < dl - 2 || memcmp(body, delim + 2, dl - 2) != 0) {
    p = len ? memmem(body, len, delim, dl) : NULL;
    if (p == NULL) return ingest_fail(err, "malformed multipart body: no boundary");
    p += dl;
  } else {
    p = body + dl - 2;
  }
  for (;;) {
    /* p is just after a delimiter */
    if (end - p >= 2 && p[0] == '-' && p[1] == '-') break; /* the last one */
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') p += 2;
    else if (p < end && *p == '\n') p++;
    else return ingest_fail(err, "malformed multipart body: bad delimiter line");
    hend = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
    const char *hend2 = memmem(p, (size_t)(end - p), "\n\n", 2);
    size_t skip = 4;
    if (hend == NULL || (hend2 != NULL && hend2 < hend)) {
      hend = hend2;
      skip = 2;
    }
    if (hend == NULL)
      return ingest_fail(err, "malformed multipart body: a part without headers");
    next = memmem(hend + skip, (size_t)(end - hend - skip), delim, dl);
    if (next == NULL)
      return ingest_fail(err, "malformed multipart body: a part without an end");
    if (names_field(p, (size_t)(hend - p), name)) {
      *data = hend + skip;
      *dlen = (size_t)(next - hend - skip);
      return 0;
    }
    p = next + dl;
  }
  return 1;
}
