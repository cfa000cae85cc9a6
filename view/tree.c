/*
** tree.c — the call tree of one sample type of a decoded profile: one node
** per distinct stack prefix (root first), each with the value of the
** stacks that end there and of all that pass through it.  Folded stacks
** are its nodes with a non-zero own value; the flame graph is its drawing.
**
** A sample is walked root to leaf; each step finds the child (parent,
** name) in one open-addressing hash of the whole tree.  Totals are summed
** bottom-up once every sample is in (children always have larger numbers
** than their parent, so one backward pass suffices).
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NONE UINT32_MAX

static uint32_t hash2(uint32_t a, uint32_t b) {
  uint64_t h = ((uint64_t)a << 32 | b) * 0x9e3779b97f4a7c15ULL;
  return (uint32_t)(h >> 32);
}

/* Makes room for one more node (arrays and hash, load <= 1/2). 0 or -1. */
static int grow(vtree *t) {
  size_t cap, i, pos;
  uint32_t *slot;

  if (t->n + 1 > t->cap) {
    cap = t->cap ? 2 * t->cap : 1024;
#define G(a)                                                                 \
  do {                                                                       \
    void *p_ = realloc(t->a, cap * sizeof *t->a);                            \
    if (p_ == NULL)                                                          \
      return -1;                                                             \
    t->a = p_;                                                               \
  } while (0)
    G(name); G(parent); G(first); G(next); G(depth); G(val); G(tot);
#undef G
    t->cap = cap;
  }
  if (2 * (t->n + 1) > t->hmask + 1 || t->hslot == NULL) {
    size_t n = t->hslot ? 2 * (t->hmask + 1) : 2048;
    if ((slot = malloc(n * sizeof *slot)) == NULL)
      return -1;
    memset(slot, 0xff, n * sizeof *slot);
    for (i = 1; i < t->n; i++) {
      pos = hash2(t->parent[i], t->name[i]) & (n - 1);
      while (slot[pos] != NONE)
        pos = (pos + 1) & (n - 1);
      slot[pos] = (uint32_t)i;
    }
    free(t->hslot);
    t->hslot = slot;
    t->hmask = n - 1;
  }
  return 0;
}

/* The child name of parent, made if missing; NONE when out of memory. */
static uint32_t child(vtree *t, uint32_t parent, uint32_t name) {
  size_t pos = hash2(parent, name) & t->hmask;
  uint32_t c;

  for (; (c = t->hslot[pos]) != NONE; pos = (pos + 1) & t->hmask)
    if (t->parent[c] == parent && t->name[c] == name)
      return c;
  if (t->n >= NONE - 1 || grow(t))
    return NONE;
  /* grow may have rehashed: find the empty slot again */
  for (pos = hash2(parent, name) & t->hmask; t->hslot[pos] != NONE;)
    pos = (pos + 1) & t->hmask;
  c = (uint32_t)t->n++;
  t->hslot[pos] = c;
  t->name[c] = name;
  t->parent[c] = parent;
  t->first[c] = t->next[c] = NONE;
  t->depth[c] = t->depth[parent] + 1;
  memset(t->val[c], 0, sizeof t->val[c]);
  return c;
}

/* qsort_r order of node numbers by frame name; arg is the tree. */
static int by_name(const void *a, const void *b, void *arg) {
  const vtree *t = arg;
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

  return strcmp(pprof_stacks_name(t->st, t->name[x]),
                pprof_stacks_name(t->st, t->name[y]));
}

/* Links the children of every node in name order. 0 or -1. */
static int link_children(vtree *t) {
  uint32_t *ord, i, j, k;
  size_t start;

  if ((ord = malloc((t->n + 1) * sizeof *ord)) == NULL)
    return -1;
  /* counting sort by parent, then each group by name */
  {
    uint32_t *cnt = calloc(t->n + 1, sizeof *cnt);
    if (cnt == NULL) {
      free(ord);
      return -1;
    }
    for (i = 1; i < t->n; i++)
      cnt[t->parent[i] + 1]++;
    for (i = 1; i <= t->n; i++)
      cnt[i] += cnt[i - 1];
    for (i = 1; i < t->n; i++)
      ord[cnt[t->parent[i]]++] = i;
    free(cnt);
  }
  for (start = 0; start + 1 < t->n;) {
    j = (uint32_t)start;
    while (j + 1 < t->n && t->parent[ord[j]] == t->parent[ord[start]])
      j++;
    qsort_r(ord + start, j - start, sizeof *ord, by_name, t);
    for (k = j; k-- > start;) {
      t->next[ord[k]] = t->first[t->parent[ord[k]]];
      t->first[t->parent[ord[k]]] = ord[k];
    }
    start = j;
  }
  free(ord);
  return 0;
}

int vtree_build(vtree *t, const pprof_stacks *st, size_t type, int diff) {
  size_t i, j, nf, ns = pprof_stacks_nsamples(st);
  const uint32_t *fr;
  uint32_t at;
  int64_t v;
  int side;

  memset(t, 0, sizeof *t);
  t->st = st;
  t->type = type;
  t->diff = diff;
  if (grow(t))
    return -1;
  t->n = 1;
  t->parent[0] = NONE;
  t->first[0] = t->next[0] = NONE;
  t->depth[0] = 0;
  t->name[0] = NONE;
  memset(t->val[0], 0, sizeof t->val[0]);
  for (i = 0; i < ns; i++) {
    v = pprof_stacks_value(st, i, type);
    if (v == 0)
      continue;
    side = 0;
    if (diff) {
      side = pprof_stacks_is_base(st, i) ? 0 : 1;
      if (side == 0)
        v = view_neg(v);
    }
    fr = pprof_stacks_frames(st, i, &nf);
    for (at = 0, j = 0; j < nf; j++)
      if ((at = child(t, at, fr[j] & ~PPROF_FRAME_INLINED)) == NONE)
        return -1;
    t->val[at][side] = view_add(t->val[at][side], v);
  }
  for (i = 0; i < t->n; i++)
    memcpy(t->tot[i], t->val[i], sizeof t->tot[i]);
  for (i = t->n; i-- > 1;) {
    t->tot[t->parent[i]][0] = view_add(t->tot[t->parent[i]][0], t->tot[i][0]);
    t->tot[t->parent[i]][1] = view_add(t->tot[t->parent[i]][1], t->tot[i][1]);
  }
  return link_children(t);
}

void vtree_free(vtree *t) {
  free(t->name);
  free(t->parent);
  free(t->first);
  free(t->next);
  free(t->depth);
  free(t->val);
  free(t->tot);
  free(t->hslot);
  memset(t, 0, sizeof *t);
}
