/*
** stacks.c — a profile read back as stacks of function names, for the
** views (folded stacks, flame graphs, top tables) of view/.
**
** The profile goes through prep.c (inflate, decode, validate: the code
** every merge and ingest uses), then its samples are turned into frame
** numbers.  Names are copied into one arena and interned, so that the
** pprof_stacks outlives the input and equal names compare as equal
** numbers.  Each function's frame number is computed once (fnname[]).
**
** Invariants: frame[] holds, per sample, nframe numbers < nnames;
** value[] holds nsample * ntypes values; name k is arena + off[k].
*/
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "merge.h"

struct pprof_stacks {
  char *arena;
  size_t narena, caparena;
  size_t *off;
  size_t nnames, capnames;
  pprof_htab idx;

  size_t ntypes, deftype;
  uint32_t *typename; /* 2 * ntypes name numbers: type, unit */
  int64_t time_nanos, duration_nanos;
  uint32_t main_file, build_id; /* name numbers; "" when no mapping */
  uint32_t *comment;
  size_t ncomment;

  size_t nsample;
  uint32_t *frame0; /* nsample + 1 offsets into frame */
  uint32_t *frame;
  size_t nframe, capframe;
  int64_t *value;
  unsigned char *base;
};

static const char *name_of(const pprof_stacks *s, uint32_t k) {
  return s->arena + s->off[k];
}

static size_t name_len(const pprof_stacks *s, uint32_t k) {
  size_t end = k + 1 < s->nnames ? s->off[k + 1] : s->narena;

  return end - s->off[k] - 1;
}

/* The number of name p[0..len), added if new; PPROF_NONE when out of
** memory. */
static uint32_t intern(pprof_stacks *s, const char *p, size_t len) {
  uint32_t h = pprof_hash_bytes(p, len), k;
  size_t pos;

  if (pprof_htab_reserve(&s->idx, s->nnames + 1))
    return PPROF_NONE;
  pos = pprof_htab_start(&s->idx, h);
  while ((k = pprof_htab_next(&s->idx, h, &pos)) != PPROF_NONE)
    if (name_len(s, k) == len && memcmp(name_of(s, k), p, len) == 0)
      return k;
  if (s->nnames >= PPROF_FRAME_INLINED - 1 ||
      PPROF_ROOM(s->off, s->nnames, s->capnames, 1) ||
      PPROF_ROOM(s->arena, s->narena, s->caparena, len + 1))
    return PPROF_NONE;
  memcpy(s->arena + s->narena, p, len);
  s->arena[s->narena + len] = '\0';
  s->off[s->nnames] = s->narena;
  s->narena += len + 1;
  pprof_htab_insert(&s->idx, pos, h, (uint32_t)s->nnames);
  return (uint32_t)s->nnames++;
}

static uint32_t intern_vstr(pprof_stacks *s, const pprof_view *v, int64_t i) {
  return intern(s, v->str[i].p, v->str[i].len);
}

/* "0x<address>": the frame of a location without a named function. */
static uint32_t intern_addr(pprof_stacks *s, uint64_t addr) {
  char buf[24];
  int n = snprintf(buf, sizeof buf, "0x%" PRIx64, addr);

  return intern(s, buf, (size_t)n);
}

/* Appends the frames of location li, outermost line first. 0 or -1. */
static int push_location(pprof_stacks *s, const pprof_view *v, uint32_t li,
                         uint32_t *fnname) {
  const pprof_vlocation *l = &v->loc[li];
  uint32_t j, k, fn;

  if (PPROF_ROOM(s->frame, s->nframe, s->capframe, l->nline + 1))
    return -1;
  if (l->nline == 0) {
    if ((k = intern_addr(s, l->address)) == PPROF_NONE)
      return -1;
    s->frame[s->nframe++] = k;
    return 0;
  }
  for (j = l->nline; j-- > 0;) {
    fn = v->line[l->line0 + j].fn;
    if (v->str[v->fn[fn].name].len == 0) /* its frame is the address */
      k = intern_addr(s, l->address);
    else if ((k = fnname[fn]) == PPROF_NONE)
      k = fnname[fn] = intern_vstr(s, v, v->fn[fn].name);
    if (k == PPROF_NONE)
      return -1;
    s->frame[s->nframe++] = j + 1 < l->nline ? k | PPROF_FRAME_INLINED : k;
  }
  return 0;
}

/* 1 when sample si of v has the string label pprof::base. */
static int has_base_label(const pprof_view *v, const pprof_vsample *sm) {
  static const char key[] = "pprof::base";
  uint32_t i;

  for (i = 0; i < sm->nlab; i++) {
    const pprof_vstr *k = &v->str[v->label[sm->lab0 + i].key];
    if (k->len == sizeof key - 1 && memcmp(k->p, key, k->len) == 0 &&
        v->label[sm->lab0 + i].str != 0)
      return 1;
  }
  return 0;
}

/* Fills s from the validated view v. */
static pprof_rc fill(pprof_stacks *s, const pprof_view *v, char *err) {
  uint32_t *fnname = NULL;
  size_t i, j;
  pprof_rc rc = PPROF_ENOMEM;

  s->ntypes = v->nstype;
  s->time_nanos = v->time_nanos;
  s->duration_nanos = v->duration_nanos;
  s->nsample = v->nsample;
  if ((s->typename = calloc(2 * v->nstype + 1, sizeof *s->typename)) ==
          NULL ||
      (s->frame0 = calloc(v->nsample + 1, sizeof *s->frame0)) == NULL ||
      (s->value = calloc(v->nsample * v->nstype + 1, sizeof *s->value)) ==
          NULL ||
      (s->base = calloc(v->nsample + 1, 1)) == NULL ||
      (fnname = malloc((v->nfn + 1) * sizeof *fnname)) == NULL)
    goto out;
  memset(fnname, 0xff, (v->nfn + 1) * sizeof *fnname);
  if ((s->comment = calloc(v->ncomment + 1, sizeof *s->comment)) == NULL ||
      (s->main_file = intern(s, "", 0)) == PPROF_NONE)
    goto out;
  s->build_id = s->main_file;
  if (v->nmap > 0 &&
      ((s->main_file = intern_vstr(s, v, v->map[0].file)) == PPROF_NONE ||
       (s->build_id = intern_vstr(s, v, v->map[0].build_id)) == PPROF_NONE))
    goto out;
  for (i = 0; i < v->ncomment; i++)
    if (v->comment[i] < v->nstr &&
        (s->comment[s->ncomment++] = intern_vstr(s, v, (int64_t)v->comment[i])) ==
            PPROF_NONE)
      goto out;
  s->deftype = v->nstype ? v->nstype - 1 : 0;
  for (i = 0; i < v->nstype; i++) {
    if ((s->typename[2 * i] = intern_vstr(s, v, v->stype[i].type)) ==
            PPROF_NONE ||
        (s->typename[2 * i + 1] = intern_vstr(s, v, v->stype[i].unit)) ==
            PPROF_NONE)
      goto out;
    if (v->default_sample_type != 0 &&
        v->stype[i].type == v->default_sample_type)
      s->deftype = i;
  }
  for (i = 0; i < v->nsample; i++) {
    const pprof_vsample *sm = &v->sample[i];
    s->frame0[i] = (uint32_t)s->nframe;
    for (j = sm->nloc; j-- > 0;)
      if (push_location(s, v, v->locix[sm->loc0 + j], fnname))
        goto out;
    if (s->nframe >= UINT32_MAX)
      goto out;
    for (j = 0; j < v->nstype; j++)
      s->value[i * v->nstype + j] = (int64_t)v->value[sm->val0 + j];
    s->base[i] = (unsigned char)has_base_label(v, sm);
  }
  s->frame0[v->nsample] = (uint32_t)s->nframe;
  rc = PPROF_OK;
out:
  free(fnname);
  if (rc != PPROF_OK)
    pprof_fail(rc, err, "out of memory");
  return rc;
}

pprof_rc pprof_stacks_decode(const void *buf, size_t len, size_t max_inflate,
                             pprof_stacks **out, char err[PPROF_ERRMAX]) {
  pprof_stacks *s = NULL;
  pprof_prep *p = NULL;
  pprof_rc rc;

  assert(out != NULL && (buf != NULL || len == 0));
  if ((p = pprof_prep_new(max_inflate)) == NULL ||
      (s = calloc(1, sizeof *s)) == NULL) {
    rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
    goto out;
  }
  if ((rc = pprof_prep_run(p, buf, len, 1, err)) != PPROF_OK ||
      (rc = fill(s, p->view, err)) != PPROF_OK)
    goto out;
  *out = s;
  s = NULL;
out:
  pprof_stacks_free(s);
  pprof_prep_free(p);
  return rc;
}

void pprof_stacks_free(pprof_stacks *s) {
  if (s == NULL)
    return;
  free(s->arena);
  free(s->off);
  pprof_htab_free(&s->idx);
  free(s->typename);
  free(s->comment);
  free(s->frame0);
  free(s->frame);
  free(s->value);
  free(s->base);
  free(s);
}

size_t pprof_stacks_ntypes(const pprof_stacks *s) {
  assert(s != NULL);
  return s->ntypes;
}

const char *pprof_stacks_type(const pprof_stacks *s, size_t i) {
  assert(s != NULL && i < s->ntypes);
  return name_of(s, s->typename[2 * i]);
}

const char *pprof_stacks_unit(const pprof_stacks *s, size_t i) {
  assert(s != NULL && i < s->ntypes);
  return name_of(s, s->typename[2 * i + 1]);
}

size_t pprof_stacks_default_type(const pprof_stacks *s) {
  assert(s != NULL && s->ntypes > 0);
  return s->deftype;
}

int64_t pprof_stacks_time_nanos(const pprof_stacks *s) {
  assert(s != NULL);
  return s->time_nanos;
}

int64_t pprof_stacks_duration_nanos(const pprof_stacks *s) {
  assert(s != NULL);
  return s->duration_nanos;
}

size_t pprof_stacks_nsamples(const pprof_stacks *s) {
  assert(s != NULL);
  return s->nsample;
}

const uint32_t *pprof_stacks_frames(const pprof_stacks *s, size_t i,
                                    size_t *n) {
  assert(s != NULL && i < s->nsample && n != NULL);
  *n = s->frame0[i + 1] - s->frame0[i];
  return s->frame + s->frame0[i];
}

int64_t pprof_stacks_value(const pprof_stacks *s, size_t i, size_t t) {
  assert(s != NULL && i < s->nsample && t < s->ntypes);
  return s->value[i * s->ntypes + t];
}

int pprof_stacks_is_base(const pprof_stacks *s, size_t i) {
  assert(s != NULL && i < s->nsample);
  return s->base[i];
}

size_t pprof_stacks_nnames(const pprof_stacks *s) {
  assert(s != NULL);
  return s->nnames;
}

const char *pprof_stacks_name(const pprof_stacks *s, uint32_t k) {
  assert(s != NULL && (k & ~PPROF_FRAME_INLINED) < s->nnames);
  return name_of(s, k & ~PPROF_FRAME_INLINED);
}

const char *pprof_stacks_main_file(const pprof_stacks *s) {
  assert(s != NULL);
  return name_of(s, s->main_file);
}

const char *pprof_stacks_build_id(const pprof_stacks *s) {
  assert(s != NULL);
  return name_of(s, s->build_id);
}

const char *pprof_stacks_comment(const pprof_stacks *s, size_t i) {
  assert(s != NULL);
  return i < s->ncomment ? name_of(s, s->comment[i]) : NULL;
}
