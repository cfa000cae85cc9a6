/*
** s3_xml.c — the XML of S3 answers, read with expat: ListObjectsV2 pages
** (keys, sizes, LastModified, common prefixes, continuation) and error bodies (Code,
** Message).  Element names are matched without their namespace.
**
** Lists are asked with encoding-type=url, so keys and common prefixes
** come percent-encoded and any byte a foreign program put in a key
** survives.  What is not encoded even then: radosgw's continuation token
** (the raw last key) and its echo of start-after, which it writes as
** character references such as "&#x01;" that XML 1.0 forbids and expat
** refuses.  sanitize() turns each such reference into a private-use
** character (U+F700 + the byte) and restore() turns those back into the
** byte in the token, so the page parses and the token goes back exactly
** as it came.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <expat.h>

#include "s3_int.h"

typedef struct xstate {
  s3_list *l;
  char path[4][32];   /* the last elements opened, innermost last */
  int depth;
  s3_buf text;        /* character data of the current element */
  int64_t size, mtime;
  char *key;
  int encoded;        /* <EncodingType>url</EncodingType> was seen */
  int failed;
  /* error answers */
  char *code, *msg;
  size_t code_cap, msg_cap;
} xstate;

static const char *local_name(const char *n) {
  const char *c = strrchr(n, ':');
  return c ? c + 1 : n;
}

static void on_start(void *ud, const char *name, const char **attrs) {
  xstate *x = ud;
  (void)attrs;
  if (x->depth < 4) {
    strncpy(x->path[x->depth], local_name(name), sizeof x->path[0] - 1);
    x->path[x->depth][sizeof x->path[0] - 1] = '\0';
  }
  x->depth++;
  x->text.len = 0;
  if (x->text.p != NULL) x->text.p[0] = '\0';
}

static void on_text(void *ud, const char *s, int len) {
  xstate *x = ud;
  if (store_s3_buf_add(&x->text, s, (size_t)len) != 0) x->failed = 1;
}

static int push(char ***v, size_t *n, char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof *nv);
  if (nv == NULL) return -1;
  nv[(*n)++] = s;
  *v = nv;
  return 0;
}

static void copy_to(char *dst, size_t cap, const char *s) {
  if (dst == NULL || cap == 0) return;
  strncpy(dst, s, cap - 1);
  dst[cap - 1] = '\0';
}

/* Unix seconds of an ISO 8601 UTC time as S3 writes LastModified
** ("2026-12-06T04:22:33.000Z"); -1 when it is not one. */
static int64_t parse_time(const char *t) {
  struct tm tm = {0};
  int n = 0;
  if (sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
             &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
      n == 0)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm);
}

static void on_end(void *ud, const char *name) {
  xstate *x = ud;
  const char *n = local_name(name);
  const char *t = x->text.p ? x->text.p : "";
  const char *parent = x->depth >= 2 && x->depth <= 5 ? x->path[x->depth - 2] : "";
  x->depth--;
  if (x->failed) return;
  if (x->l == NULL) { /* an error body */
    if (strcmp(parent, "Error") == 0 && strcmp(n, "Code") == 0)
      copy_to(x->code, x->code_cap, t);
    else if (strcmp(parent, "Error") == 0 && strcmp(n, "Message") == 0)
      copy_to(x->msg, x->msg_cap, t);
    return;
  }
  if (strcmp(parent, "Contents") == 0) {
    if (strcmp(n, "Key") == 0) {
      free(x->key);
      if ((x->key = strdup(t)) == NULL) x->failed = 1;
    } else if (strcmp(n, "Size") == 0) {
      x->size = strtoll(t, NULL, 10);
    } else if (strcmp(n, "LastModified") == 0) {
      x->mtime = parse_time(t);
    }
  } else if (strcmp(n, "Contents") == 0) {
    s3_list *l = x->l;
    int64_t *ns, size = x->size, mtime = x->mtime;
    /* each entry's own: a Contents without Size, LastModified or Key
    ** takes nothing from the one before */
    x->size = x->mtime = -1;
    if (x->key == NULL) return;
    if ((ns = realloc(l->sizes, (l->nkeys + 1) * sizeof *ns)) == NULL) {
      x->failed = 1;
      return;
    }
    l->sizes = ns;
    l->sizes[l->nkeys] = size;
    if ((ns = realloc(l->mtimes, (l->nkeys + 1) * sizeof *ns)) == NULL) {
      x->failed = 1;
      return;
    }
    l->mtimes = ns;
    l->mtimes[l->nkeys] = mtime;
    if (push(&l->keys, &l->nkeys, x->key) != 0) {
      x->failed = 1;
      return;
    }
    x->key = NULL;
  } else if (strcmp(parent, "CommonPrefixes") == 0 && strcmp(n, "Prefix") == 0) {
    char *p = strdup(t);
    if (p == NULL || push(&x->l->prefixes, &x->l->nprefixes, p) != 0) {
      free(p);
      x->failed = 1;
    }
  } else if (strcmp(parent, "ListBucketResult") == 0) {
    if (strcmp(n, "IsTruncated") == 0) {
      x->l->truncated = strcmp(t, "true") == 0;
    } else if (strcmp(n, "EncodingType") == 0) {
      x->encoded = strcmp(t, "url") == 0;
    } else if (strcmp(n, "NextContinuationToken") == 0) {
      free(x->l->next_token);
      if ((x->l->next_token = strdup(t)) == NULL) x->failed = 1;
    }
  }
}

static int parse(const char *xml, size_t len, xstate *x) {
  XML_Parser p = XML_ParserCreateNS(NULL, ':');
  int ok;
  if (p == NULL) return -1;
  XML_SetUserData(p, x);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  ok = XML_Parse(p, xml, (int)len, 1) == XML_STATUS_OK && !x->failed;
  XML_ParserFree(p);
  free(x->text.p);
  free(x->key);
  return ok ? 0 : -1;
}

void store_s3_list_clear(s3_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->nkeys; i++) free(l->keys[i]);
  for (size_t i = 0; i < l->nprefixes; i++) free(l->prefixes[i]);
  free(l->keys);
  free(l->sizes);
  free(l->mtimes);
  free(l->prefixes);
  free(l->next_token);
  memset(l, 0, sizeof *l);
}

/* The first PUA code point sanitize() uses; U+F700 + b stands for byte b. */
#define PUA_BASE 0xF700u

/* A copy of xml (malloc'd, NUL-terminated; NULL when out of memory) where
** every character reference to a character XML 1.0 forbids is replaced:
** a control character c by U+F700 + c (restore() undoes it), any other
** (surrogates, U+FFFE, U+FFFF, beyond U+10FFFF) by U+FFFD. */
static char *sanitize(const char *xml, size_t len, size_t *out_len) {
  s3_buf b = {0};
  size_t i = 0, from = 0;
  if (store_s3_buf_add(&b, "", 0) != 0) return NULL;
  while (i + 3 < len) {
    const char *p = xml + i;
    int hex = p[2] == 'x';
    size_t j = i + 2 + (size_t)hex, start = j;
    uint32_t v = 0;
    char rep[16];
    if (p[0] != '&' || p[1] != '#') {
      i++;
      continue;
    }
    while (j < len && j - start < 8 &&
           (hex ? strchr("0123456789abcdefABCDEF", xml[j]) != NULL
                : (xml[j] >= '0' && xml[j] <= '9')) && xml[j] != '\0') {
      int d = xml[j] <= '9' ? xml[j] - '0' : (xml[j] | 0x20) - 'a' + 10;
      v = v * (hex ? 16u : 10u) + (uint32_t)d;
      j++;
    }
    if (j == start || j >= len || xml[j] != ';') {
      i++;
      continue;
    }
    if (v < 0x20 && v != 0x9 && v != 0xA && v != 0xD)
      snprintf(rep, sizeof rep, "&#x%X;", PUA_BASE + v);
    else if ((v >= 0xD800 && v <= 0xDFFF) || v == 0xFFFE || v == 0xFFFF ||
             v > 0x10FFFF)
      snprintf(rep, sizeof rep, "&#xFFFD;");
    else {
      i = j + 1;
      continue;
    }
    if (store_s3_buf_add(&b, xml + from, i - from) != 0 ||
        store_s3_buf_add(&b, rep, strlen(rep)) != 0) {
      free(b.p);
      return NULL;
    }
    i = from = j + 1;
  }
  if (store_s3_buf_add(&b, xml + from, len - from) != 0) {
    free(b.p);
    return NULL;
  }
  *out_len = b.len;
  return b.p;
}

/* Undoes sanitize() in s, in place: U+F700..U+F71F (EF 9C 80..9F) become
** the bytes 0x00..0x1F.  A 0 would end the string early: it is kept. */
static void restore(char *s) {
  char *w = s;
  if (s == NULL) return;
  for (const char *r = s; *r; ) {
    unsigned char c2 = (unsigned char)r[1], c3 = c2 ? (unsigned char)r[2] : 0;
    if ((unsigned char)r[0] == 0xEF && c2 == 0x9C && c3 >= 0x81 && c3 <= 0x9F) {
      *w++ = (char)(c3 - 0x80);
      r += 3;
    } else {
      *w++ = *r++;
    }
  }
  *w = '\0';
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Percent-decodes s in place ('+' is a space, as S3 encodes it); -1 when
** the result would hold a NUL (no C string can carry that key). */
static int url_decode(char *s) {
  char *w = s;
  for (const char *r = s; *r; ) {
    int hi, lo;
    if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
      if (hi == 0 && lo == 0) return -1;
      *w++ = (char)(hi * 16 + lo);
      r += 3;
    } else {
      *w++ = *r == '+' ? ' ' : *r;
      r++;
    }
  }
  *w = '\0';
  return 0;
}

/* Drops from v[from..*n) (and sizes and mtimes, when not NULL) the strings
** that do not decode: a NUL no C string can carry. */
static void decode_all(char **v, int64_t *sizes, int64_t *mtimes, size_t from,
                       size_t *n) {
  size_t w = from;
  for (size_t i = from; i < *n; i++) {
    if (url_decode(v[i]) != 0) {
      free(v[i]);
      continue;
    }
    if (sizes != NULL) sizes[w] = sizes[i];
    if (mtimes != NULL) mtimes[w] = mtimes[i];
    v[w++] = v[i];
  }
  *n = w;
}

/* Decodes what this page appended to l (keys from k0, prefixes from p0):
** keys and common prefixes when the answer says they are encoded (radosgw
** keeps the '/' of prefixes raw, which decodes the same). */
static void decode_page(s3_list *l, size_t k0, size_t p0, int encoded) {
  if (encoded) {
    decode_all(l->keys, l->sizes, l->mtimes, k0, &l->nkeys);
    decode_all(l->prefixes, NULL, NULL, p0, &l->nprefixes);
  }
  restore(l->next_token);
}

int store_s3_xml_list(const char *xml, size_t len, s3_list *l) {
  xstate x = {.l = l, .size = -1, .mtime = -1};
  size_t k0 = l->nkeys, p0 = l->nprefixes, n = 0;
  char *clean = sanitize(xml, len, &n);
  int rc;
  l->truncated = 0;
  free(l->next_token);
  l->next_token = NULL;
  if (clean == NULL) return -1;
  rc = parse(clean, n, &x);
  free(clean);
  if (rc == 0) decode_page(l, k0, p0, x.encoded);
  return rc;
}

void store_s3_xml_error(const char *xml, size_t len, char *code,
                        size_t code_cap, char *msg, size_t msg_cap) {
  xstate x = {.code = code, .msg = msg, .code_cap = code_cap, .msg_cap = msg_cap};
  copy_to(code, code_cap, "");
  copy_to(msg, msg_cap, "");
  if (xml != NULL && len > 0) (void)parse(xml, len, &x);
}
