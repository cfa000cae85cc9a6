/*
** folded.c — folded stacks ("root;...;leaf VALUE" per distinct stack, as
** flamegraph.pl, inferno and speedscope read them) from the call tree: one
** line per node whose own value is not zero, in depth-first order with
** children by name.  A diff writes "STACK BASE TARGET" (difffolded.pl's
** format) for every node where either side is not zero.
*/
#include <inttypes.h>
#include <stdlib.h>

#include "internal.h"

#define NONE UINT32_MAX

void view_folded(const vtree *t, vbuf *b) {
  vbuf path = {NULL, 0, 0, 0};
  size_t *plen = NULL;
  uint32_t c;

  if (t->n <= 1)
    return;
  if ((plen = malloc(t->n * sizeof *plen)) == NULL) {
    b->oom = 1;
    return;
  }
  plen[0] = 0;
  /* Walk in preorder without a stack: first child, else next sibling of
  ** the nearest ancestor that has one. */
  for (c = t->first[0]; c != NONE && !b->oom && !path.oom;) {
    path.len = plen[t->parent[c]];
    if (path.len > 0)
      vbuf_put(&path, ";", 1);
    vbuf_puts(&path, pprof_stacks_name(t->st, t->name[c]));
    plen[c] = path.len;
    if (t->diff ? (t->val[c][0] != 0 || t->val[c][1] != 0)
                : t->val[c][0] != 0) {
      vbuf_put(b, path.p, path.len);
      if (t->diff)
        vbuf_printf(b, " %" PRId64 " %" PRId64 "\n", t->val[c][0],
                    t->val[c][1]);
      else
        vbuf_printf(b, " %" PRId64 "\n", t->val[c][0]);
    }
    if (t->first[c] != NONE) {
      c = t->first[c];
      continue;
    }
    while (c != 0 && t->next[c] == NONE)
      c = t->parent[c];
    c = c == 0 ? NONE : t->next[c];
  }
  if (path.oom)
    b->oom = 1;
  free(path.p);
  free(plen);
}
