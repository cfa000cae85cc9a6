/*
** internal.h — private to view/: the output buffer, and the call tree
** (stacks.c builds it, folded/svg/top read it).
**
**   view.c    formats, dispatch, the buffer
**   tree.c    the call tree of one sample type (and the per-function
**             flat/cum of top)
**   folded.c  folded stacks
**   svg.c     the flame graph
**   top.c     the top table (text and JSON)
**
** The tree: node 0 is the root (no frame); every other node is one frame
** under its parent, unique per (parent, name).  val[k] is the value of the
** stacks ending exactly at the node (self) and tot[k] that of every stack
** through it, for k = 0 (one profile, or a diff's base as a positive
** number) and k = 1 (a diff's target).  Children are in first[]/next[]
** order, sorted by name once built.
*/
#ifndef PROFEFS_VIEW_INTERNAL_H
#define PROFEFS_VIEW_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "pprof.h"
#include "view.h"

/* Sums and negations of sample values wrap around as the merge's do
** (proto/merge_map.c): a hostile profile's values are any int64, and
** signed overflow would be undefined behaviour. */
static inline int64_t view_add(int64_t a, int64_t b) {
  return (int64_t)((uint64_t)a + (uint64_t)b);
}
static inline int64_t view_neg(int64_t a) {
  return (int64_t)(0 - (uint64_t)a);
}

/* ---- buffer (view.c) ------------------------------------------------------ */

/* A growing output text.  oom is set once an append failed; later appends
** do nothing, and the caller checks it once at the end. */
typedef struct vbuf {
  char *p;
  size_t len, cap;
  int oom;
} vbuf;

void vbuf_put(vbuf *b, const char *s, size_t n);
void vbuf_puts(vbuf *b, const char *s);
void vbuf_printf(vbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* s with &, <, >, " escaped for XML text and attributes (bytes < 0x20
** become '?', as XML 1.0 cannot hold them). */
void vbuf_xml(vbuf *b, const char *s);
/* s as the inside of a JSON string. */
void vbuf_json(vbuf *b, const char *s);

/* ---- the call tree (tree.c) ----------------------------------------------- */

typedef struct vtree {
  const pprof_stacks *st;
  size_t type;    /* sample type index */
  int diff;       /* 1: val/tot[0] is the base, [1] the target */
  size_t n, cap;  /* nodes */
  uint32_t *name; /* frame name number (root: unused) */
  uint32_t *parent, *first, *next;
  uint32_t *depth;
  int64_t (*val)[2], (*tot)[2];
  /* (parent, name) -> node */
  uint32_t *hslot;
  size_t hmask;
} vtree;

/* Builds the tree of st for sample type t; diff as above (samples with
** pprof_stacks_is_base go to side 0, negated back).  0, or -1 when out of
** memory (t then empty; free it anyway). */
int vtree_build(vtree *t, const pprof_stacks *st, size_t type, int diff);
void vtree_free(vtree *t);

/* The sample type named sample (NULL/"": the default) in *type: 0, or -1
** with a reason in err naming the types there are. */
int view_pick_type(const pprof_stacks *st, const char *sample, size_t *type,
                   char *err);

/* pprof's measurement.ScaledLabel(v, unit, "auto") into out: "1.20s",
** "512kB", "42" (top.c). */
void view_label(int64_t v, const char *unit, char out[64]);

/* ---- the views ------------------------------------------------------------ */

void view_folded(const vtree *t, vbuf *b);
void view_svg(const vtree *t, const char *title, vbuf *b);
/* Top: json selects the JSON rows instead of pprof's text. */
int view_top(const pprof_stacks *st, size_t type, int json, vbuf *b);

#endif /* PROFEFS_VIEW_INTERNAL_H */
