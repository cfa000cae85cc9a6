/*
** merge_map.c — commits one validated profile into the accumulator, with
** the semantics of pprof's profile.Merge (profile/merge.go):
**   combineHeaders  period max, earliest non-zero time, duration summed,
**                   comments unioned, types/frames from the first profile;
**   mapMapping      key (size rounded up to 4 KiB, file offset, build id or
**                   else file name); a known mapping rebases the profile's
**                   addresses onto the merged start (we keep addresses
**                   relative to the mapping, which is the same);
**   mapFunction     key (start line, name, system name, file name);
**   mapLocation     key (address relative to its mapping, mapping, lines
**                   as (function, line, column), is_folded);
**   mapSample       key (location list, string labels, numeric labels with
**                   units); values summed; all-zero samples skipped.
** The first mapping of the first profile that has mappings is mapped
** before anything else, so the main binary stays mapping 1.
**
** Every remap is memoised per profile (str_map .. loc_map), so each entity
** of a profile is hashed at most once.  New entities are first written at
** the end of their (reserved) arrays and only counted when the key turns
** out to be new, which needs no scratch space.  Nothing here can fail:
** pprof_merge_reserve() made room for the worst case.
*/
#include <assert.h>

#include "merge.h"

static uint32_t intern(pprof_merge *m, const pprof_view *v, int64_t ix) {
  uint32_t *slot = &m->str_map[ix];

  if (*slot == PPROF_NONE)
    *slot = pprof_strtab_intern(&m->strs, v->str[ix].p, v->str[ix].len);
  return *slot;
}

/* ---- header -------------------------------------------------------------- */

static void add_comment(pprof_merge *m, uint32_t s) {
  uint32_t h = pprof_hfinal(pprof_hmix(0, s)), ix;
  size_t pos = pprof_htab_start(&m->comment_idx, h);

  while ((ix = pprof_htab_next(&m->comment_idx, h, &pos)) != PPROF_NONE)
    if (m->comment[ix] == s)
      return;
  pprof_htab_insert(&m->comment_idx, pos, h, (uint32_t)m->ncomment);
  m->comment[m->ncomment++] = s;
}

static void header(pprof_merge *m, const pprof_view *v) {
  size_t i;

  if (m->nprofiles == 0) {
    for (i = 0; i < v->nstype; i++) {
      m->stype[2 * i] = intern(m, v, v->stype[i].type);
      m->stype[2 * i + 1] = intern(m, v, v->stype[i].unit);
    }
    m->nstype = v->nstype;
    m->period_type = intern(m, v, v->period_type.type);
    m->period_unit = intern(m, v, v->period_type.unit);
    m->drop_frames = intern(m, v, v->drop_frames);
    m->keep_frames = intern(m, v, v->keep_frames);
  }
  /* pprof's doc says "earliest non-zero"; its loop would let a later zero
  ** reset the time, which we do not copy. */
  if (v->time_nanos != 0 &&
      (m->time_nanos == 0 || v->time_nanos < m->time_nanos))
    m->time_nanos = v->time_nanos;
  m->duration_nanos = (int64_t)((uint64_t)m->duration_nanos +
                                (uint64_t)v->duration_nanos);
  if (m->period == 0 || m->period < v->period)
    m->period = v->period;
  for (i = 0; i < v->ncomment; i++)
    add_comment(m, intern(m, v, (int64_t)v->comment[i]));
  if (m->default_sample_type == 0)
    m->default_sample_type = intern(m, v, v->default_sample_type);
}

/* ---- mappings ------------------------------------------------------------ */

static uint64_t map_size(uint64_t start, uint64_t limit) {
  uint64_t size = limit - start + 0xfff;

  return size - size % 0x1000;
}

/* The mappingKey's "build id, or else file name" (0 for a fake mapping). */
static uint32_t map_name(const pprof_mmapping *mm) {
  return mm->build_id != 0 ? mm->build_id : mm->file;
}

static uint32_t map_hash(uint64_t size, uint64_t offset, uint32_t name) {
  return pprof_hfinal(
      pprof_hmix(pprof_hmix(pprof_hmix(1, size), offset), name));
}

static uint32_t map_mapping(pprof_merge *m, const pprof_view *v, uint32_t ix) {
  const pprof_vmapping *s = &v->map[ix];
  pprof_mmapping *mm, *nm;
  uint64_t size;
  uint32_t h, c, name;
  size_t pos;

  if (m->map_map[ix] != PPROF_NONE)
    return m->map_map[ix];
  nm = &m->map[m->nmap];
  nm->start = s->start;
  nm->limit = s->limit;
  nm->offset = s->offset;
  nm->file = intern(m, v, s->file);
  nm->build_id = intern(m, v, s->build_id);
  nm->flags = s->flags;
  size = map_size(s->start, s->limit);
  name = map_name(nm);
  h = map_hash(size, s->offset, name);
  pos = pprof_htab_start(&m->map_idx, h);
  while ((c = pprof_htab_next(&m->map_idx, h, &pos)) != PPROF_NONE) {
    mm = &m->map[c];
    if (mm->offset == s->offset && map_name(mm) == name &&
        map_size(mm->start, mm->limit) == size) {
      m->map_map[ix] = c;
      return c;
    }
  }
  c = (uint32_t)m->nmap++;
  pprof_htab_insert(&m->map_idx, pos, h, c);
  m->map_map[ix] = c;
  return c;
}

/* ---- functions ----------------------------------------------------------- */

static uint32_t map_function(pprof_merge *m, const pprof_view *v,
                             uint32_t ix) {
  const pprof_vfunction *s = &v->fn[ix];
  pprof_mfunction *f, *nf;
  uint32_t h, c;
  size_t pos;

  if (m->fn_map[ix] != PPROF_NONE)
    return m->fn_map[ix];
  nf = &m->fn[m->nfn];
  nf->name = intern(m, v, s->name);
  nf->system_name = intern(m, v, s->system_name);
  nf->filename = intern(m, v, s->filename);
  nf->start_line = s->start_line;
  h = pprof_hfinal(pprof_hmix(
      pprof_hmix(pprof_hmix(pprof_hmix(2, (uint64_t)s->start_line), nf->name),
                 nf->system_name),
      nf->filename));
  pos = pprof_htab_start(&m->fn_idx, h);
  while ((c = pprof_htab_next(&m->fn_idx, h, &pos)) != PPROF_NONE) {
    f = &m->fn[c];
    if (f->name == nf->name && f->system_name == nf->system_name &&
        f->filename == nf->filename && f->start_line == nf->start_line)
      return m->fn_map[ix] = c;
  }
  c = (uint32_t)m->nfn++;
  pprof_htab_insert(&m->fn_idx, pos, h, c);
  return m->fn_map[ix] = c;
}

/* ---- locations ----------------------------------------------------------- */

static int same_location(const pprof_merge *m, const pprof_mlocation *a,
                         const pprof_mlocation *b) {
  const pprof_mline *la, *lb;
  uint32_t i;

  if (a->map != b->map || a->nline != b->nline ||
      a->is_folded != b->is_folded || a->rel != b->rel)
    return 0;
  la = &m->line[a->line0];
  lb = &m->line[b->line0];
  for (i = 0; i < a->nline; i++)
    if (la[i].fn != lb[i].fn || la[i].line != lb[i].line ||
        la[i].column != lb[i].column)
      return 0;
  return 1;
}

static uint32_t map_location(pprof_merge *m, const pprof_view *v,
                             uint32_t ix) {
  const pprof_vlocation *s = &v->loc[ix];
  const pprof_vline *sl;
  pprof_mlocation *nl;
  pprof_mline *ml;
  uint64_t h;
  uint32_t c, i, h32;
  size_t pos;

  if (m->loc_map[ix] != PPROF_NONE)
    return m->loc_map[ix];
  nl = &m->loc[m->nloc];
  nl->rel = s->address;
  nl->map = 0;
  if (s->map != 0) {
    nl->map = map_mapping(m, v, s->map - 1) + 1;
    nl->rel -= v->map[s->map - 1].start;
  }
  nl->line0 = (uint32_t)m->nline;
  nl->nline = s->nline;
  nl->is_folded = s->is_folded;
  h = pprof_hmix(pprof_hmix(3, nl->rel),
                 nl->map | (uint64_t)nl->is_folded << 32);
  /* Written past the used part of line[]; kept only if the key is new. */
  ml = &m->line[m->nline];
  sl = &v->line[s->line0];
  for (i = 0; i < s->nline; i++) {
    ml[i].fn = map_function(m, v, sl[i].fn);
    ml[i].line = sl[i].line;
    ml[i].column = sl[i].column;
    h = pprof_hmix(pprof_hmix(pprof_hmix(h, ml[i].fn), (uint64_t)ml[i].line),
                   (uint64_t)ml[i].column);
  }
  h32 = pprof_hfinal(h);
  pos = pprof_htab_start(&m->loc_idx, h32);
  while ((c = pprof_htab_next(&m->loc_idx, h32, &pos)) != PPROF_NONE)
    if (same_location(m, &m->loc[c], nl))
      return m->loc_map[ix] = c;
  m->nline += s->nline;
  c = (uint32_t)m->nloc++;
  pprof_htab_insert(&m->loc_idx, pos, h32, c);
  return m->loc_map[ix] = c;
}

/* ---- samples ------------------------------------------------------------- */

static int zero_sample(const pprof_view *v, const pprof_vsample *s) {
  uint32_t i;

  for (i = 0; i < s->nval; i++)
    if (v->value[s->val0 + i] != 0)
      return 0;
  return 1;
}

/* Writes the canonical labels of s at out (see pprof_mlabel); returns how
** many.  pprof drops a label that has neither a string nor a number/unit. */
static uint32_t canonical_labels(pprof_merge *m, const pprof_view *v,
                                 const pprof_vsample *s, pprof_mlabel *out) {
  const pprof_vlabel *l;
  pprof_mlabel x;
  uint32_t i, n = 0, first_num, j;
  int pass;

  for (pass = 0; pass < 2; pass++) {
    first_num = n;
    for (i = 0; i < s->nlab; i++) {
      l = &v->label[s->lab0 + i];
      if (pass == 0 ? (l->str == 0)
                    : (l->str != 0 || (l->num == 0 && l->unit == 0)))
        continue;
      x.key = intern(m, v, l->key);
      x.str = pass == 0 ? intern(m, v, l->str) : PPROF_NONE;
      x.unit = pass == 0 ? 0 : intern(m, v, l->unit);
      x.num = pass == 0 ? 0 : l->num;
      /* Stable insertion by key within this pass; lists are tiny. */
      for (j = n; j > first_num && out[j - 1].key > x.key; j--)
        out[j] = out[j - 1];
      out[j] = x;
      n++;
    }
  }
  return n;
}

static uint32_t sample_hash(const uint32_t *stack, uint32_t nloc,
                            const pprof_mlabel *lab, uint32_t nlab) {
  uint64_t h = pprof_hmix(4, nloc);
  uint32_t i;

  for (i = 0; i + 1 < nloc; i += 2)
    h = pprof_hmix(h, stack[i] | (uint64_t)stack[i + 1] << 32);
  if (i < nloc)
    h = pprof_hmix(h, stack[i]);
  for (i = 0; i < nlab; i++)
    h = pprof_hmix(pprof_hmix(h, lab[i].key | (uint64_t)lab[i].str << 32),
                   (uint64_t)lab[i].num ^ lab[i].unit);
  return pprof_hfinal(h);
}

static int same_sample(const pprof_merge *m, const pprof_msample *a,
                       const uint32_t *stack, uint32_t nloc,
                       const pprof_mlabel *lab, uint32_t nlab) {
  const pprof_mlabel *al;
  uint32_t i;

  if (a->nloc != nloc || a->nlab != nlab ||
      (nloc > 0 &&
       memcmp(&m->stack[a->loc0], stack, nloc * sizeof *stack) != 0))
    return 0;
  al = &m->label[a->lab0];
  for (i = 0; i < nlab; i++)
    if (al[i].key != lab[i].key || al[i].str != lab[i].str ||
        al[i].unit != lab[i].unit || al[i].num != lab[i].num)
      return 0;
  return 1;
}

static void map_sample(pprof_merge *m, const pprof_view *v,
                       const pprof_vsample *s) {
  uint32_t *stack = &m->stack[m->nstack];
  pprof_mlabel *lab = &m->label[m->nlabel];
  const uint64_t *val = &v->value[s->val0];
  int64_t *acc;
  uint32_t i, nlab, h, c;
  size_t pos;

  for (i = 0; i < s->nloc; i++)
    stack[i] = map_location(m, v, v->locix[s->loc0 + i]);
  nlab = canonical_labels(m, v, s, lab);
  h = sample_hash(stack, s->nloc, lab, nlab);
  pos = pprof_htab_start(&m->sample_idx, h);
  while ((c = pprof_htab_next(&m->sample_idx, h, &pos)) != PPROF_NONE)
    if (same_sample(m, &m->sample[c], stack, s->nloc, lab, nlab))
      break;
  if (c == PPROF_NONE) {
    c = (uint32_t)m->nsample++;
    m->sample[c].loc0 = (uint32_t)m->nstack;
    m->sample[c].nloc = s->nloc;
    m->sample[c].lab0 = (uint32_t)m->nlabel;
    m->sample[c].nlab = nlab;
    m->nstack += s->nloc;
    m->nlabel += nlab;
    if (m->nstype > 0)
      memset(&m->value[m->nvalue], 0, m->nstype * sizeof *m->value);
    m->nvalue += m->nstype;
    pprof_htab_insert(&m->sample_idx, pos, h, c);
  }
  acc = &m->value[(size_t)c * m->nstype];
  for (i = 0; i < s->nval; i++) /* wraps like Go's int64 */
    acc[i] = (int64_t)((uint64_t)acc[i] + val[i]);
}

void pprof_merge_commit(pprof_merge *m, const pprof_view *v) {
  size_t i;

  assert(m->nprofiles == 0 || m->nstype == v->nstype);
  header(m, v);
  if (m->nmap == 0 && v->nmap > 0)
    (void)map_mapping(m, v, 0);
  for (i = 0; i < v->nsample; i++)
    if (!zero_sample(v, &v->sample[i]))
      map_sample(m, v, &v->sample[i]);
}
