/*
** merge.c — the streaming merge accumulator: lifecycle, pprof_merge_add
** (prepare, then check compatibility, reserve, commit) and the reservation
** that makes the commit unable to fail.  merge.h explains the state and its
** invariants; prep.c prepares a profile, merge_map.c does the commit,
** merge_out.c the result.
*/
#include <assert.h>
#include <stdlib.h>

#include "merge.h"

pprof_merge *pprof_merge_new(size_t max_inflate) {
  pprof_merge *m = calloc(1, sizeof *m);

  if (m == NULL)
    return NULL;
  m->max_inflate = max_inflate ? max_inflate : PPROF_DEFAULT_INFLATE;
  if (pprof_strtab_init(&m->strs) ||
      (m->prep = pprof_prep_new(m->max_inflate)) == NULL ||
      pprof_htab_reserve(&m->comment_idx, 1) ||
      pprof_htab_reserve(&m->map_idx, 1) || pprof_htab_reserve(&m->fn_idx, 1) ||
      pprof_htab_reserve(&m->loc_idx, 1) ||
      pprof_htab_reserve(&m->sample_idx, 1) ||
      /* Arrays are never NULL, so "the end of an array" is always a valid
      ** pointer for merge_map.c's write-then-keep scheme. */
      PPROF_ROOM(m->map, 0, m->capmap, 1) ||
      PPROF_ROOM(m->fn, 0, m->capfn, 1) ||
      PPROF_ROOM(m->loc, 0, m->caploc, 1) ||
      PPROF_ROOM(m->line, 0, m->capline, 1) ||
      PPROF_ROOM(m->sample, 0, m->capsample, 1) ||
      PPROF_ROOM(m->stack, 0, m->capstack, 1) ||
      PPROF_ROOM(m->label, 0, m->caplabel, 1) ||
      PPROF_ROOM(m->value, 0, m->capvalue, 1)) {
    pprof_merge_free(m);
    return NULL;
  }
  return m;
}

void pprof_merge_free(pprof_merge *m) {
  if (m == NULL)
    return;
  free(m->stype);
  free(m->comment);
  pprof_htab_free(&m->comment_idx);
  pprof_strtab_free(&m->strs);
  free(m->map);
  pprof_htab_free(&m->map_idx);
  free(m->fn);
  pprof_htab_free(&m->fn_idx);
  free(m->loc);
  free(m->line);
  pprof_htab_free(&m->loc_idx);
  free(m->sample);
  free(m->stack);
  free(m->label);
  free(m->value);
  pprof_htab_free(&m->sample_idx);
  pprof_prep_free(m->prep);
  free(m->str_map);
  free(m->map_map);
  free(m->fn_map);
  free(m->loc_map);
  free(m);
}

size_t pprof_merge_count(const pprof_merge *m) {
  assert(m != NULL);
  return m->nprofiles;
}

/* ---- compatibility ------------------------------------------------------- */

/* Appends s (n bytes) to buf (size cap, used *len) with unprintable bytes
** shown as '?', so that error messages stay one clean line. */
static void put(char *buf, size_t cap, size_t *len, const char *s, size_t n) {
  size_t i;

  for (i = 0; i < n && *len + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    buf[(*len)++] = ch < 0x20 || ch >= 0x7f ? '?' : (char)ch;
  }
  buf[*len] = '\0';
}

/* "type/unit" of a merged (view == NULL) or a view pair of strings. */
static void put_vt(char *buf, size_t cap, size_t *len, const pprof_merge *m,
                   const pprof_view *v, int64_t type, int64_t unit) {
  if (v != NULL) {
    put(buf, cap, len, v->str[type].p, v->str[type].len);
    put(buf, cap, len, "/", 1);
    put(buf, cap, len, v->str[unit].p, v->str[unit].len);
  } else {
    put(buf, cap, len, pprof_strtab_ptr(&m->strs, (uint32_t)type),
        m->strs.ent[type].len);
    put(buf, cap, len, "/", 1);
    put(buf, cap, len, pprof_strtab_ptr(&m->strs, (uint32_t)unit),
        m->strs.ent[unit].len);
  }
}

static void put_types(char *buf, size_t cap, size_t *len, const pprof_merge *m,
                      const pprof_view *v) {
  size_t i, n = v ? v->nstype : m->nstype;

  put(buf, cap, len, "[", 1);
  for (i = 0; i < n; i++) {
    if (i > 0)
      put(buf, cap, len, " ", 1);
    if (v != NULL)
      put_vt(buf, cap, len, m, v, v->stype[i].type, v->stype[i].unit);
    else
      put_vt(buf, cap, len, m, NULL, m->stype[2 * i], m->stype[2 * i + 1]);
  }
  put(buf, cap, len, "]", 1);
}

static int same(const pprof_merge *m, uint32_t ms, const pprof_view *v,
                int64_t vs) {
  const pprof_vstr *s = &v->str[vs];

  return m->strs.ent[ms].len == s->len &&
         memcmp(pprof_strtab_ptr(&m->strs, ms), s->p, s->len) == 0;
}

static pprof_rc compatible(const pprof_merge *m, const pprof_view *v,
                           char *err) {
  char msg[PPROF_ERRMAX];
  size_t i, len = 0;
  int ok;

  if (m->nprofiles == 0)
    return PPROF_OK;
  ok = m->nstype == v->nstype;
  for (i = 0; ok && i < v->nstype; i++)
    ok = same(m, m->stype[2 * i], v, v->stype[i].type) &&
         same(m, m->stype[2 * i + 1], v, v->stype[i].unit);
  if (!ok) {
    put(msg, sizeof msg, &len, "sample types ", 13);
    put_types(msg, sizeof msg, &len, m, NULL);
    put(msg, sizeof msg, &len, " and ", 5);
    put_types(msg, sizeof msg, &len, m, v);
    put(msg, sizeof msg, &len, " differ", 7);
    return pprof_fail(PPROF_EMISMATCH, err, "%s", msg);
  }
  if (!same(m, m->period_type, v, v->period_type.type) ||
      !same(m, m->period_unit, v, v->period_type.unit)) {
    put(msg, sizeof msg, &len, "period types ", 13);
    put_vt(msg, sizeof msg, &len, m, NULL, m->period_type, m->period_unit);
    put(msg, sizeof msg, &len, " and ", 5);
    put_vt(msg, sizeof msg, &len, m, v, v->period_type.type,
           v->period_type.unit);
    put(msg, sizeof msg, &len, " differ", 7);
    return pprof_fail(PPROF_EMISMATCH, err, "%s", msg);
  }
  return PPROF_OK;
}

/* ---- reservation --------------------------------------------------------- */

/* Grows a per-profile remap array to n entries, all PPROF_NONE. */
static int remap(uint32_t **a, size_t *cap, size_t n) {
  if (pprof_grow(a, cap, n, sizeof **a))
    return -1;
  if (n > 0)
    memset(*a, 0xff, n * sizeof **a);
  return 0;
}

pprof_rc pprof_merge_reserve(pprof_merge *m, const pprof_view *v) {
  size_t nval = v->nsample * v->nstype;

  /* Entity numbers and arena offsets are uint32_t. */
  if (m->nmap + v->nmap >= UINT32_MAX || m->nfn + v->nfn >= UINT32_MAX ||
      m->nloc + v->nloc >= UINT32_MAX || m->nline + v->nline >= UINT32_MAX ||
      m->nsample + v->nsample >= UINT32_MAX ||
      m->nstack + v->nlocid >= UINT32_MAX ||
      m->nlabel + v->nlabel >= UINT32_MAX ||
      (v->nstype && nval / v->nstype != v->nsample))
    return PPROF_ENOMEM;
  if (pprof_strtab_reserve(&m->strs, v->nstr, v->str_bytes) ||
      PPROF_ROOM(m->stype, 2 * m->nstype, m->capstype, 2 * v->nstype) ||
      PPROF_ROOM(m->comment, m->ncomment, m->capcomment, v->ncomment) ||
      pprof_htab_reserve(&m->comment_idx, m->ncomment + v->ncomment) ||
      PPROF_ROOM(m->map, m->nmap, m->capmap, v->nmap) ||
      pprof_htab_reserve(&m->map_idx, m->nmap + v->nmap) ||
      PPROF_ROOM(m->fn, m->nfn, m->capfn, v->nfn) ||
      pprof_htab_reserve(&m->fn_idx, m->nfn + v->nfn) ||
      PPROF_ROOM(m->loc, m->nloc, m->caploc, v->nloc) ||
      PPROF_ROOM(m->line, m->nline, m->capline, v->nline) ||
      pprof_htab_reserve(&m->loc_idx, m->nloc + v->nloc) ||
      PPROF_ROOM(m->sample, m->nsample, m->capsample, v->nsample) ||
      PPROF_ROOM(m->stack, m->nstack, m->capstack, v->nlocid) ||
      PPROF_ROOM(m->label, m->nlabel, m->caplabel, v->nlabel) ||
      PPROF_ROOM(m->value, m->nvalue, m->capvalue, nval) ||
      pprof_htab_reserve(&m->sample_idx, m->nsample + v->nsample))
    return PPROF_ENOMEM;
  if (remap(&m->str_map, &m->capstr_map, v->nstr) ||
      remap(&m->map_map, &m->capmap_map, v->nmap) ||
      remap(&m->fn_map, &m->capfn_map, v->nfn) ||
      remap(&m->loc_map, &m->caploc_map, v->nloc))
    return PPROF_ENOMEM;
  return PPROF_OK;
}

/* ---- adding a profile ---------------------------------------------------- */

pprof_rc pprof_merge_commit_prep(pprof_merge *m, pprof_prep *p,
                                 char err[PPROF_ERRMAX]) {
  pprof_rc rc;

  assert(m != NULL && p != NULL && p->ready);
  if ((rc = compatible(m, p->view, err)) != PPROF_OK)
    goto out;
  if ((rc = pprof_merge_reserve(m, p->view)) != PPROF_OK) {
    rc = pprof_fail(rc, err, "out of memory");
    goto out;
  }
  pprof_merge_commit(m, p->view);
  m->nprofiles++;
out:
  pprof_prep_clear(p);
  return rc;
}

pprof_rc pprof_merge_add(pprof_merge *m, const void *buf, size_t len,
                         char err[PPROF_ERRMAX]) {
  pprof_rc rc;

  assert(m != NULL && (buf != NULL || len == 0));
  /* Borrowed: the view may point into buf, which lives until we return. */
  rc = pprof_prep_run(m->prep, buf, len, 1, err);
  if (rc == PPROF_OK)
    rc = pprof_merge_commit_prep(m, m->prep, err);
  return rc;
}
