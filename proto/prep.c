/*
** prep.c — the first half of adding a profile to a merge: inflate (or
** copy), decode and validate one profile into a reusable view, without an
** accumulator, so that it may run on another thread than the commit
** (pprof.h, "merging in two steps").  merge.c's pprof_merge_commit_prep is
** the second half.  struct pprof_prep and its invariant are in merge.h.
*/
#include <assert.h>
#include <libdeflate.h>
#include <stdlib.h>

#include "merge.h"

/* An input buffer bigger than this is not kept between profiles. */
#define KEEP_IBUF ((size_t)8 << 20)

pprof_prep *pprof_prep_new(size_t max_inflate) {
  pprof_prep *p = calloc(1, sizeof *p);

  if (p == NULL)
    return NULL;
  p->max_inflate = max_inflate ? max_inflate : PPROF_DEFAULT_INFLATE;
  if ((p->view = pprof_view_new()) == NULL ||
      (p->dec = libdeflate_alloc_decompressor()) == NULL) {
    pprof_prep_free(p);
    return NULL;
  }
  return p;
}

void pprof_prep_free(pprof_prep *p) {
  if (p == NULL)
    return;
  if (p->dec != NULL)
    libdeflate_free_decompressor(p->dec);
  free(p->ibuf);
  pprof_view_free(p->view);
  free(p);
}

int pprof_prep_ready(const pprof_prep *p) {
  assert(p != NULL);
  return p->ready;
}

void pprof_prep_clear(pprof_prep *p) {
  p->ready = 0;
  if (p->icap > KEEP_IBUF) {
    free(p->ibuf);
    p->ibuf = NULL;
    p->icap = 0;
  }
}

pprof_rc pprof_prep_run(pprof_prep *p, const void *buf, size_t len,
                        int borrow, char *err) {
  const uint8_t *data = buf;
  size_t dlen = len;
  pprof_rc rc;

  assert(p != NULL && (buf != NULL || len == 0));
  p->ready = 0;
  if (pprof_is_gzip(buf, len)) {
    rc = pprof_gunzip(p->dec, buf, len, p->max_inflate, &p->ibuf, &p->icap,
                      &dlen, NULL, NULL, err);
    if (rc != PPROF_OK)
      goto out;
    data = p->ibuf;
  } else if (!borrow && len > 0) {
    if (pprof_grow(&p->ibuf, &p->icap, len, 1)) {
      rc = pprof_fail(PPROF_ENOMEM, err, "out of memory");
      goto out;
    }
    memcpy(p->ibuf, buf, len);
    data = p->ibuf;
  }
  if ((rc = pprof_view_parse(p->view, data, dlen, err)) != PPROF_OK ||
      (rc = pprof_view_validate(p->view, err)) != PPROF_OK)
    goto out;
  p->ready = 1;
out:
  if (rc != PPROF_OK)
    pprof_prep_clear(p);
  return rc;
}

pprof_rc pprof_merge_prepare(pprof_prep *p, const void *buf, size_t len,
                             char err[PPROF_ERRMAX]) {
  return pprof_prep_run(p, buf, len, 0, err);
}
