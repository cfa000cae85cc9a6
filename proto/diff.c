/*
** diff.c — pprof_diff: the profile of `go tool pprof -diff_base BASE
** TARGET`, made with the streaming merge.
**
** pprof's driver labels every base sample pprof::base=true, scales the base
** by -1 and merges [target, base].  Here the base is prepared like any
** merged profile, then its view is rewritten in place before the commit:
** values negated, the label appended to every sample (two strings added to
** the view's string table; they point to static storage, which the commit
** copies).  Labels keep base and target samples of one stack apart, so
** nothing cancels out, as in pprof.
*/
#include <assert.h>
#include <stdlib.h>

#include "merge.h"

static const char BASE_KEY[] = "pprof::base";
static const char BASE_VAL[] = "true";

/* Negates v's values and labels every sample pprof::base=true.  0, or -1
** when out of memory (v then unchanged but for nothing that matters: its
** arrays only grew). */
static int mark_base(pprof_view *v) {
  size_t i, j, n = 0, k, cap = v->nlabel + v->nsample + 1;
  pprof_vlabel *lab;

  if (PPROF_ROOM(v->str, v->nstr, v->capstr, 2))
    return -1;
  if ((lab = malloc(cap * sizeof *lab)) == NULL)
    return -1;
  k = v->nstr;
  v->str[k].p = BASE_KEY;
  v->str[k].len = sizeof BASE_KEY - 1;
  v->str[k + 1].p = BASE_VAL;
  v->str[k + 1].len = sizeof BASE_VAL - 1;
  v->nstr += 2;
  v->str_bytes += sizeof BASE_KEY + sizeof BASE_VAL - 2;
  for (i = 0; i < v->nsample; i++) {
    pprof_vsample *s = &v->sample[i];
    for (j = 0; j < s->nlab; j++)
      lab[n + j] = v->label[s->lab0 + j];
    lab[n + s->nlab].key = (int64_t)k;
    lab[n + s->nlab].str = (int64_t)k + 1;
    lab[n + s->nlab].num = 0;
    lab[n + s->nlab].unit = 0;
    s->lab0 = (uint32_t)n;
    s->nlab++;
    n += s->nlab;
  }
  for (i = 0; i < v->nvalue; i++)
    v->value[i] = (uint64_t)0 - v->value[i];
  free(v->label);
  v->label = lab;
  v->nlabel = n;
  v->caplabel = cap;
  return 0;
}

pprof_rc pprof_diff(const void *base, size_t blen, const void *target,
                    size_t tlen, size_t max_inflate, void **out, size_t *len,
                    char err[PPROF_ERRMAX]) {
  pprof_merge *m = NULL;
  pprof_prep *p = NULL;
  pprof_rc rc;

  assert(base != NULL && target != NULL && out != NULL && len != NULL);
  if ((m = pprof_merge_new(max_inflate)) == NULL ||
      (p = pprof_prep_new(max_inflate)) == NULL) {
    rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
    goto out;
  }
  if ((rc = pprof_merge_add(m, target, tlen, err)) != PPROF_OK ||
      (rc = pprof_prep_run(p, base, blen, 0, err)) != PPROF_OK)
    goto out;
  if (mark_base(p->view)) {
    pprof_prep_clear(p);
    rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
    goto out;
  }
  if ((rc = pprof_merge_commit_prep(m, p, err)) != PPROF_OK)
    goto out;
  rc = pprof_merge_result(m, out, len, err);
out:
  pprof_prep_free(p);
  pprof_merge_free(m);
  return rc;
}
