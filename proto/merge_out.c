/*
** merge_out.c — pprof_merge_result: turns the accumulator into a protobuf-c
** Profile message and encodes it (gzip).
**
** Samples whose summed values are all zero are left out, and with them the
** locations, functions and mappings only they used (pprof re-merges its
** result for the same effect); mapping 1, the main binary, always stays.
** Ids are renumbered 1..n in first-seen order.  The message points into
** the accumulator (values, string bytes) wherever the types allow, so the
** extra memory is the message structs only; it is freed before returning.
*/
#include <assert.h>
#include <stdlib.h>

#include "merge.h"
#include "profile.pb-c.h"

typedef struct out {
  Perftools__Profiles__Profile p;
  Perftools__Profiles__ValueType *vt, **vtp;
  Perftools__Profiles__Sample *s, **sp;
  uint64_t *locid;
  Perftools__Profiles__Label *lab, **labp;
  Perftools__Profiles__Mapping *mp, **mpp;
  Perftools__Profiles__Location *lp, **lpp;
  Perftools__Profiles__Line *ln, **lnp;
  Perftools__Profiles__Function *fp, **fpp;
  ProtobufCBinaryData *str;
  int64_t *comment;
  uint32_t *map_id, *fn_id, *loc_id; /* new id, 0 = left out */
  size_t nlocid, nlab, nln;           /* totals over what is kept */
} out;

static void out_free(out *o) {
  free(o->vt);
  free(o->vtp);
  free(o->s);
  free(o->sp);
  free(o->locid);
  free(o->lab);
  free(o->labp);
  free(o->mp);
  free(o->mpp);
  free(o->lp);
  free(o->lpp);
  free(o->ln);
  free(o->lnp);
  free(o->fp);
  free(o->fpp);
  free(o->str);
  free(o->comment);
  free(o->map_id);
  free(o->fn_id);
  free(o->loc_id);
}

static int kept(const pprof_merge *m, size_t i) {
  size_t k;

  for (k = 0; k < m->nstype; k++)
    if (m->value[i * m->nstype + k] != 0)
      return 1;
  return 0;
}

/* calloc that never returns NULL for a zero count. */
static void *alloc(size_t n, size_t size) {
  return calloc(n ? n : 1, size);
}

/* Marks what the kept samples use and numbers it; counts the totals. */
static int number(const pprof_merge *m, out *o) {
  const pprof_mlocation *l;
  size_t i, k, id;

  o->map_id = alloc(m->nmap, sizeof *o->map_id);
  o->fn_id = alloc(m->nfn, sizeof *o->fn_id);
  o->loc_id = alloc(m->nloc, sizeof *o->loc_id);
  if (o->map_id == NULL || o->fn_id == NULL || o->loc_id == NULL)
    return -1;
  for (i = 0; i < m->nsample; i++) {
    if (!kept(m, i))
      continue;
    o->p.n_sample++;
    o->nlocid += m->sample[i].nloc;
    o->nlab += m->sample[i].nlab;
    for (k = 0; k < m->sample[i].nloc; k++)
      o->loc_id[m->stack[m->sample[i].loc0 + k]] = 1;
  }
  if (m->nmap > 0)
    o->map_id[0] = 1;
  for (i = 0, id = 0; i < m->nloc; i++) {
    if (!o->loc_id[i])
      continue;
    o->loc_id[i] = (uint32_t)++id;
    l = &m->loc[i];
    if (l->map)
      o->map_id[l->map - 1] = 1;
    for (k = 0; k < l->nline; k++)
      o->fn_id[m->line[l->line0 + k].fn] = 1;
    o->nln += l->nline;
  }
  o->p.n_location = id;
  for (i = 0, id = 0; i < m->nmap; i++)
    if (o->map_id[i])
      o->map_id[i] = (uint32_t)++id;
  o->p.n_mapping = id;
  for (i = 0, id = 0; i < m->nfn; i++)
    if (o->fn_id[i])
      o->fn_id[i] = (uint32_t)++id;
  o->p.n_function = id;
  return 0;
}

static int header(const pprof_merge *m, out *o) {
  size_t i;

  o->vt = alloc(m->nstype + 1, sizeof *o->vt);
  o->vtp = alloc(m->nstype, sizeof *o->vtp);
  o->str = alloc(m->strs.n, sizeof *o->str);
  o->comment = alloc(m->ncomment, sizeof *o->comment);
  if (!o->vt || !o->vtp || !o->str || !o->comment)
    return -1;
  for (i = 0; i <= m->nstype; i++) {
    perftools__profiles__value_type__init(&o->vt[i]);
    if (i < m->nstype) {
      o->vt[i].type = m->stype[2 * i];
      o->vt[i].unit = m->stype[2 * i + 1];
      o->vtp[i] = &o->vt[i];
    }
  }
  o->vt[m->nstype].type = m->period_type;
  o->vt[m->nstype].unit = m->period_unit;
  o->p.n_sample_type = m->nstype;
  o->p.sample_type = o->vtp;
  o->p.period_type = &o->vt[m->nstype];
  for (i = 0; i < m->strs.n; i++) {
    o->str[i].data = (uint8_t *)m->strs.chars + m->strs.ent[i].off;
    o->str[i].len = m->strs.ent[i].len;
  }
  o->p.n_string_table = m->strs.n;
  o->p.string_table = o->str;
  for (i = 0; i < m->ncomment; i++)
    o->comment[i] = m->comment[i];
  o->p.n_comment = m->ncomment;
  o->p.comment = o->comment;
  o->p.drop_frames = m->drop_frames;
  o->p.keep_frames = m->keep_frames;
  o->p.time_nanos = m->time_nanos;
  o->p.duration_nanos = m->duration_nanos;
  o->p.period = m->period;
  o->p.default_sample_type = m->default_sample_type;
  return 0;
}

static int samples(pprof_merge *m, out *o) {
  const pprof_msample *ms;
  const pprof_mlabel *ml;
  Perftools__Profiles__Sample *s;
  Perftools__Profiles__Label *lab;
  size_t i, k, n = 0, nloc = 0, nlab = 0;

  o->s = alloc(o->p.n_sample, sizeof *o->s);
  o->sp = alloc(o->p.n_sample, sizeof *o->sp);
  o->locid = alloc(o->nlocid, sizeof *o->locid);
  o->lab = alloc(o->nlab, sizeof *o->lab);
  o->labp = alloc(o->nlab, sizeof *o->labp);
  if (!o->s || !o->sp || !o->locid || !o->lab || !o->labp)
    return -1;
  for (i = 0; i < m->nsample; i++) {
    if (!kept(m, i))
      continue;
    ms = &m->sample[i];
    s = &o->s[n];
    perftools__profiles__sample__init(s);
    s->n_location_id = ms->nloc;
    s->location_id = &o->locid[nloc];
    for (k = 0; k < ms->nloc; k++)
      o->locid[nloc++] = o->loc_id[m->stack[ms->loc0 + k]];
    s->n_value = m->nstype;
    s->value = &m->value[i * m->nstype];
    s->n_label = ms->nlab;
    s->label = &o->labp[nlab];
    for (k = 0; k < ms->nlab; k++) {
      ml = &m->label[ms->lab0 + k];
      lab = &o->lab[nlab];
      perftools__profiles__label__init(lab);
      lab->key = ml->key;
      if (ml->str != PPROF_NONE) {
        lab->str = ml->str;
      } else {
        lab->num = ml->num;
        lab->num_unit = ml->unit;
      }
      o->labp[nlab++] = lab;
    }
    o->sp[n++] = s;
  }
  o->p.sample = o->sp;
  return 0;
}

static int mappings_functions(const pprof_merge *m, out *o) {
  Perftools__Profiles__Mapping *mp;
  Perftools__Profiles__Function *fp;
  const pprof_mmapping *mm;
  const pprof_mfunction *mf;
  size_t i, n;

  o->mp = alloc(o->p.n_mapping, sizeof *o->mp);
  o->mpp = alloc(o->p.n_mapping, sizeof *o->mpp);
  o->fp = alloc(o->p.n_function, sizeof *o->fp);
  o->fpp = alloc(o->p.n_function, sizeof *o->fpp);
  if (!o->mp || !o->mpp || !o->fp || !o->fpp)
    return -1;
  for (i = 0, n = 0; i < m->nmap; i++) {
    if (!o->map_id[i])
      continue;
    mm = &m->map[i];
    mp = &o->mp[n];
    perftools__profiles__mapping__init(mp);
    mp->id = o->map_id[i];
    mp->memory_start = mm->start;
    mp->memory_limit = mm->limit;
    mp->file_offset = mm->offset;
    mp->filename = mm->file;
    mp->build_id = mm->build_id;
    mp->has_functions = !!(mm->flags & PPROF_HAS_FUNCTIONS);
    mp->has_filenames = !!(mm->flags & PPROF_HAS_FILENAMES);
    mp->has_line_numbers = !!(mm->flags & PPROF_HAS_LINE_NUMBERS);
    mp->has_inline_frames = !!(mm->flags & PPROF_HAS_INLINE_FRAMES);
    o->mpp[n++] = mp;
  }
  o->p.mapping = o->mpp;
  for (i = 0, n = 0; i < m->nfn; i++) {
    if (!o->fn_id[i])
      continue;
    mf = &m->fn[i];
    fp = &o->fp[n];
    perftools__profiles__function__init(fp);
    fp->id = o->fn_id[i];
    fp->name = mf->name;
    fp->system_name = mf->system_name;
    fp->filename = mf->filename;
    fp->start_line = mf->start_line;
    o->fpp[n++] = fp;
  }
  o->p.function = o->fpp;
  return 0;
}

static int locations(const pprof_merge *m, out *o) {
  Perftools__Profiles__Location *lp;
  Perftools__Profiles__Line *ln;
  const pprof_mlocation *ml;
  const pprof_mline *mline;
  size_t i, k, n = 0, nln = 0;

  o->lp = alloc(o->p.n_location, sizeof *o->lp);
  o->lpp = alloc(o->p.n_location, sizeof *o->lpp);
  o->ln = alloc(o->nln, sizeof *o->ln);
  o->lnp = alloc(o->nln, sizeof *o->lnp);
  if (!o->lp || !o->lpp || !o->ln || !o->lnp)
    return -1;
  for (i = 0; i < m->nloc; i++) {
    if (!o->loc_id[i])
      continue;
    ml = &m->loc[i];
    lp = &o->lp[n];
    perftools__profiles__location__init(lp);
    lp->id = o->loc_id[i];
    lp->mapping_id = ml->map ? o->map_id[ml->map - 1] : 0;
    lp->address = ml->map ? ml->rel + m->map[ml->map - 1].start : ml->rel;
    lp->is_folded = ml->is_folded;
    lp->n_line = ml->nline;
    lp->line = &o->lnp[nln];
    for (k = 0; k < ml->nline; k++) {
      mline = &m->line[ml->line0 + k];
      ln = &o->ln[nln];
      perftools__profiles__line__init(ln);
      ln->function_id = o->fn_id[mline->fn];
      ln->line = mline->line;
      ln->column = mline->column;
      o->lnp[nln++] = ln;
    }
    o->lpp[n++] = lp;
  }
  o->p.location = o->lpp;
  return 0;
}

pprof_rc pprof_merge_result(pprof_merge *m, void **out_buf, size_t *len,
                            char err[PPROF_ERRMAX]) {
  out o;
  pprof_rc rc;

  assert(m != NULL && out_buf != NULL && len != NULL);
  if (m->nprofiles == 0)
    return pprof_fail(PPROF_EEMPTY, err, "no profiles to merge");
  memset(&o, 0, sizeof o);
  perftools__profiles__profile__init(&o.p);
  if (number(m, &o) || header(m, &o) || samples(m, &o) ||
      mappings_functions(m, &o) || locations(m, &o)) {
    rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
    goto out;
  }
  rc = pprof_pack_gzip(&o.p, out_buf, len);
  if (rc != PPROF_OK)
    pprof_fail(rc, err, "out of memory");
out:
  out_free(&o);
  return rc;
}
