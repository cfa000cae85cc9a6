/*
** common.c — small helpers shared by the pprof codec and the merge: error
** formatting, array growth, byte hashing and the open-addressing hash
** index (see internal.h for its contract).
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

pprof_rc pprof_fail(pprof_rc rc, char *err, const char *fmt, ...) {
  va_list ap;

  if (err != NULL) {
    va_start(ap, fmt);
    vsnprintf(err, PPROF_ERRMAX, fmt, ap);
    va_end(ap);
  }
  return rc;
}

int pprof_grow(void *pp, size_t *cap, size_t need, size_t size) {
  void *old, *p;
  size_t n;

  assert(pp != NULL && cap != NULL && size > 0);
  if (need <= *cap)
    return 0;
  n = *cap < 16 ? 16 : *cap;
  while (n < need) {
    if (n > SIZE_MAX / 2)
      return -1;
    n *= 2;
  }
  if (n > SIZE_MAX / size)
    return -1;
  /* pp is the address of some T*; go through memcpy to stay within the
  ** aliasing rules whatever T is. */
  memcpy(&old, pp, sizeof old);
  p = realloc(old, n * size);
  if (p == NULL)
    return -1;
  memcpy(pp, &p, sizeof p);
  *cap = n;
  return 0;
}

uint32_t pprof_hash_bytes(const void *p, size_t n) {
  const unsigned char *s = p;
  uint64_t h = 0x243f6a8885a308d3ULL ^ n, w;

  while (n >= 8) {
    memcpy(&w, s, 8);
    h = pprof_hmix(h, w);
    s += 8;
    n -= 8;
  }
  w = 0;
  memcpy(&w, s, n);
  return pprof_hfinal(pprof_hmix(h, w));
}

int pprof_htab_reserve(pprof_htab *t, size_t n) {
  pprof_htab_slot *slot;
  size_t cap = t->slot ? t->mask + 1 : 0, ncap, i, pos;

  if (n <= cap / 2)
    return 0;
  ncap = cap ? cap : 64;
  while (ncap / 2 < n) {
    if (ncap > SIZE_MAX / 2 / sizeof *slot)
      return -1;
    ncap *= 2;
  }
  slot = calloc(ncap, sizeof *slot);
  if (slot == NULL)
    return -1;
  for (i = 0; i < cap; i++) {
    if (t->slot[i].ix1 == 0)
      continue;
    pos = t->slot[i].hash & (ncap - 1);
    while (slot[pos].ix1 != 0)
      pos = (pos + 1) & (ncap - 1);
    slot[pos] = t->slot[i];
  }
  free(t->slot);
  t->slot = slot;
  t->mask = ncap - 1;
  return 0;
}

void pprof_htab_free(pprof_htab *t) {
  if (t == NULL)
    return;
  free(t->slot);
  t->slot = NULL;
  t->mask = 0;
  t->n = 0;
}
