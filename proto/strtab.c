/*
** strtab.c — the merge's interned string table: every distinct string once,
** numbered in first-seen order, "" always number 0.
**
** Invariants: chars holds the bytes of all strings back to back (offsets,
** not pointers, so the arena may move when it grows); idx indexes every
** entry by its hash; entry numbers never change.
** Interning cannot fail once pprof_strtab_reserve() made room, which is
** what lets the merge commit a profile without a failure path.
*/
#include <assert.h>
#include <stdlib.h>

#include "merge.h"

int pprof_strtab_init(pprof_strtab *t) {
  memset(t, 0, sizeof *t);
  if (pprof_strtab_reserve(t, 1, 1))  /* chars never NULL: no NULL+0 */
    return -1;
  (void)pprof_strtab_intern(t, "", 0);
  return 0;
}

void pprof_strtab_free(pprof_strtab *t) {
  if (t == NULL)
    return;
  free(t->chars);
  free(t->ent);
  pprof_htab_free(&t->idx);
}

int pprof_strtab_reserve(pprof_strtab *t, size_t nstr, size_t nbytes) {
  if (t->n + nstr >= UINT32_MAX)
    return -1;
  if (PPROF_ROOM(t->ent, t->n, t->cap, nstr) ||
      PPROF_ROOM(t->chars, t->nchars, t->capchars, nbytes) ||
      pprof_htab_reserve(&t->idx, t->n + nstr))
    return -1;
  return 0;
}

uint32_t pprof_strtab_intern(pprof_strtab *t, const char *p, size_t len) {
  uint32_t h = pprof_hash_bytes(p, len), ix;
  size_t pos = pprof_htab_start(&t->idx, h);
  pprof_mstr *e;

  while ((ix = pprof_htab_next(&t->idx, h, &pos)) != PPROF_NONE) {
    e = &t->ent[ix];
    if (e->len == len && memcmp(t->chars + e->off, p, len) == 0)
      return ix;
  }
  assert(t->n < t->cap && t->nchars + len <= t->capchars);
  ix = (uint32_t)t->n++;
  e = &t->ent[ix];
  e->off = t->nchars;
  e->len = len;
  if (len > 0)
    memcpy(t->chars + t->nchars, p, len);
  t->nchars += len;
  pprof_htab_insert(&t->idx, pos, h, ix);
  return ix;
}
