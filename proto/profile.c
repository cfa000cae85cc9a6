/*
** profile.c — single profiles: pprof_decode / pprof_check (inflate, decode
** and validate), pprof_encode, the pprof_profile object and its accessors.
**
** Both run the input through wire.c + validate.c, the same code the merge
** uses, so a profile accepted at ingest is one the merge accepts, with the
** same error messages.  pprof_decode then also unpacks it with protobuf-c:
** that generated struct is what pprof_profile holds and pprof_encode packs.
*/
#include <assert.h>
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "profile.pb-c.h"

struct pprof_profile {
  Perftools__Profiles__Profile *msg;
};

const char *pprof_strerror(pprof_rc rc) {
  switch (rc) {
  case PPROF_OK: return "ok";
  case PPROF_EGZIP: return "truncated or corrupt gzip";
  case PPROF_ETOOBIG: return "profile too big";
  case PPROF_EDECODE: return "not a protobuf profile";
  case PPROF_EINVALID: return "invalid profile";
  case PPROF_EEMPTY: return "no samples";
  case PPROF_EMISMATCH: return "profile types differ";
  case PPROF_ENOMEM: return "out of memory";
  case PPROF_EBUSY: return "memory budget exhausted";
  }
  return "unknown error";
}

/* Inflates (when gzip) and validates buf into v.  *data / *dlen are the
** protobuf bytes; *owned is the inflated buffer to free (NULL when the
** input was plain), whose size is added to *held when taken from budget b
** (the caller gives it back after freeing *owned, also on failure). */
static pprof_rc load(pprof_view *v, const void *buf, size_t len,
                     size_t max_inflate, budget *b, size_t *held,
                     const uint8_t **data, size_t *dlen, uint8_t **owned,
                     char *err) {
  struct libdeflate_decompressor *d;
  uint8_t *ibuf = NULL;
  size_t icap = 0, ilen = len;
  pprof_rc rc;

  *owned = NULL;
  *data = buf;
  if (pprof_is_gzip(buf, len)) {
    d = libdeflate_alloc_decompressor();
    if (d == NULL)
      return pprof_fail(PPROF_ENOMEM, err, "out of memory");
    rc = pprof_gunzip(d, buf, len, max_inflate ? max_inflate
                                               : PPROF_DEFAULT_INFLATE,
                      &ibuf, &icap, &ilen, b, held, err);
    libdeflate_free_decompressor(d);
    if (rc != PPROF_OK) {
      free(ibuf);
      return rc;
    }
    *owned = ibuf;
    *data = ibuf;
  }
  *dlen = ilen;
  rc = pprof_view_parse(v, *data, ilen, err);
  if (rc == PPROF_OK)
    rc = pprof_view_validate(v, err);
  if (rc == PPROF_OK && v->nsample == 0)
    rc = pprof_fail(PPROF_EEMPTY, err, "profile has no samples");
  if (rc != PPROF_OK) {
    free(ibuf);
    *owned = NULL;
  }
  return rc;
}

pprof_rc pprof_decode(const void *buf, size_t len, size_t max_inflate,
                      pprof_profile **out, char err[PPROF_ERRMAX]) {
  pprof_profile *p = NULL;
  pprof_view *v;
  const uint8_t *data;
  uint8_t *owned = NULL;
  size_t dlen = 0;
  pprof_rc rc;

  assert(out != NULL && (buf != NULL || len == 0));
  if ((v = pprof_view_new()) == NULL)
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  rc = load(v, buf, len, max_inflate, NULL, NULL, &data, &dlen, &owned, err);
  if (rc != PPROF_OK)
    goto out;
  if ((p = calloc(1, sizeof *p)) == NULL) {
    rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
    goto out;
  }
  p->msg = perftools__profiles__profile__unpack(NULL, dlen, data);
  if (p->msg == NULL) {
    /* The wire reader accepted it, so this is protobuf-c's stricter view
    ** (or its malloc failing); it does not say which. */
    rc = pprof_fail(PPROF_EDECODE, err, "protobuf-c could not unpack the "
                                        "Profile message");
    goto out;
  }
  *out = p;
  p = NULL;
out:
  pprof_free(p);
  free(owned);
  pprof_view_free(v);
  return rc;
}

/* Appends "type/unit" to out at *o, after a comma unless first: 0, or -1
** when it did not fit (out then ends in "..."). */
static int append_type(char out[PPROF_TYPES_MAX], size_t *o, const char *t,
                       size_t tlen, const char *u, size_t ulen) {
  int n = snprintf(out + *o, PPROF_TYPES_MAX - *o, "%s%.*s/%.*s",
                   *o ? "," : "", (int)tlen, t, (int)ulen, u);
  if (n < 0 || (size_t)n >= PPROF_TYPES_MAX - *o) {
    strcpy(out + PPROF_TYPES_MAX - 4, "...");
    return -1;
  }
  *o += (size_t)n;
  return 0;
}

/* Writes v's sample types as "type/unit,..." into out (PPROF_TYPES_MAX). */
static void format_types(const pprof_view *v, char out[PPROF_TYPES_MAX]) {
  size_t o = 0;

  out[0] = '\0';
  for (size_t i = 0; i < v->nstype; i++) {
    const pprof_vstr *t = &v->str[v->stype[i].type];
    const pprof_vstr *u = &v->str[v->stype[i].unit];
    if (append_type(out, &o, t->p, t->len, u->p, u->len) != 0) return;
  }
}

void pprof_types_of(const char *type, const char *unit,
                    char out[PPROF_TYPES_MAX]) {
  size_t o = 0;
  assert(type != NULL && unit != NULL);
  out[0] = '\0';
  append_type(out, &o, type, strlen(type), unit, strlen(unit));
}

pprof_rc pprof_check_types(const void *buf, size_t len, size_t max_inflate,
                           budget *b, int64_t *time_nanos,
                           char types[PPROF_TYPES_MAX],
                           char err[PPROF_ERRMAX]) {
  pprof_view *v;
  const uint8_t *data;
  uint8_t *owned = NULL;
  size_t dlen, held = 0;
  pprof_rc rc;

  assert(buf != NULL || len == 0);
  if ((v = pprof_view_new()) == NULL)
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  rc = load(v, buf, len, max_inflate, b, &held, &data, &dlen, &owned, err);
  if (rc == PPROF_OK && time_nanos != NULL)
    *time_nanos = v->time_nanos;
  /* the strings point into the inflated bytes: format before freeing */
  if (rc == PPROF_OK && types != NULL)
    format_types(v, types);
  free(owned);
  budget_release(b, held);
  pprof_view_free(v);
  return rc;
}

pprof_rc pprof_check_in(const void *buf, size_t len, size_t max_inflate,
                        budget *b, int64_t *time_nanos,
                        char err[PPROF_ERRMAX]) {
  return pprof_check_types(buf, len, max_inflate, b, time_nanos, NULL, err);
}

pprof_rc pprof_check(const void *buf, size_t len, size_t max_inflate,
                     int64_t *time_nanos, char err[PPROF_ERRMAX]) {
  return pprof_check_in(buf, len, max_inflate, NULL, time_nanos, err);
}

void pprof_free(pprof_profile *p) {
  if (p == NULL)
    return;
  if (p->msg != NULL)
    perftools__profiles__profile__free_unpacked(p->msg, NULL);
  free(p);
}

int64_t pprof_time_nanos(const pprof_profile *p) {
  assert(p != NULL);
  return p->msg->time_nanos;
}

size_t pprof_sample_count(const pprof_profile *p) {
  assert(p != NULL);
  return p->msg->n_sample;
}

pprof_rc pprof_encode(const pprof_profile *p, void **out, size_t *len) {
  assert(p != NULL && out != NULL && len != NULL);
  return pprof_pack_gzip(p->msg, out, len);
}
