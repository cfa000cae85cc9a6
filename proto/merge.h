/*
** merge.h — private to proto/: the state of a streaming merge
** (struct pprof_merge) shared by merge.c (adding profiles), merge_map.c
** (mapping one profile's entities into the accumulator) and merge_out.c
** (encoding the result).
**
** Entities are numbered in first-seen order; entity number i is written
** out with id i + 1, as pprof's Merge does.  A profile is added in three
** steps: decode + validate into a prep's view (prep.c, needs no
** accumulator), reserve room for everything it could add (the only step
** after validation that can fail), then commit, which cannot fail.  That
** is how a failed add leaves the accumulator exactly as it was.
**
** Invariants:
**   - strs holds every string any entity refers to; entry 0 is "";
**   - every map/fn/loc/sample is in its hash index exactly once and no two
**     are equal under pprof's merge keys (mappingKey, functionKey,
**     locationKey, sampleKey);
**   - loc[i].map is 0 or 1 + a mapping number; line[].fn a function
**     number; stack[] holds location numbers;
**   - value has nsample * nstype entries, sample i's at i * nstype;
**   - the per-profile arrays (str_map .. loc_map) are only meaningful
**     during one add.
*/
#ifndef PROFEFS_PROTO_MERGE_H
#define PROFEFS_PROTO_MERGE_H

#include "internal.h"

/* ---- interned strings (strtab.c) ---------------------------------------- */

typedef struct pprof_mstr {
  size_t off, len; /* into chars */
} pprof_mstr;

typedef struct pprof_strtab {
  char *chars;
  size_t nchars, capchars;
  pprof_mstr *ent;
  size_t n, cap;
  pprof_htab idx;
} pprof_strtab;

/* Starts a table holding "". Returns 0, or -1 when out of memory. */
int pprof_strtab_init(pprof_strtab *t);
void pprof_strtab_free(pprof_strtab *t);
/* Makes room for nstr more strings of nbytes bytes in all; 0 or -1. */
int pprof_strtab_reserve(pprof_strtab *t, size_t nstr, size_t nbytes);
/* The number of string p[0..len), added if new; needs reserved room. */
uint32_t pprof_strtab_intern(pprof_strtab *t, const char *p, size_t len);

static inline const char *pprof_strtab_ptr(const pprof_strtab *t,
                                           uint32_t ix) {
  return t->chars + t->ent[ix].off;
}

/* ---- merged entities ----------------------------------------------------- */

typedef struct pprof_mmapping {
  uint64_t start, limit, offset;
  uint32_t file, build_id; /* string numbers */
  unsigned flags;          /* PPROF_HAS_* */
} pprof_mmapping;

typedef struct pprof_mfunction {
  uint32_t name, system_name, filename;
  int64_t start_line;
} pprof_mfunction;

typedef struct pprof_mline {
  uint32_t fn;
  int64_t line, column;
} pprof_mline;

typedef struct pprof_mlocation {
  uint64_t rel; /* address minus its mapping's start (the key's address);
                   written out as rel + the merged mapping's start */
  uint32_t map;     /* 0 none, else 1 + mapping number */
  uint32_t line0, nline;
  int is_folded;
} pprof_mlocation;

/* A sample label in canonical order: string labels first, then numeric
** ones, each group stably sorted by key (so values of one key keep their
** order, as in pprof's map of lists). */
typedef struct pprof_mlabel {
  uint32_t key;
  uint32_t str; /* PPROF_NONE for a numeric label */
  uint32_t unit;
  int64_t num;
} pprof_mlabel;

typedef struct pprof_msample {
  uint32_t loc0, nloc; /* into stack */
  uint32_t lab0, nlab; /* into label */
} pprof_msample;

struct pprof_merge {
  size_t max_inflate;
  size_t nprofiles;

  /* header */
  uint32_t *stype; /* 2 * nstype string numbers: type, unit */
  size_t nstype, capstype;
  uint32_t period_type, period_unit, drop_frames, keep_frames;
  uint32_t default_sample_type;
  int64_t time_nanos, duration_nanos, period;
  uint32_t *comment;
  size_t ncomment, capcomment;
  pprof_htab comment_idx;

  pprof_strtab strs;

  pprof_mmapping *map;
  size_t nmap, capmap;
  pprof_htab map_idx;
  pprof_mfunction *fn;
  size_t nfn, capfn;
  pprof_htab fn_idx;
  pprof_mlocation *loc;
  size_t nloc, caploc;
  pprof_mline *line;
  size_t nline, capline;
  pprof_htab loc_idx;
  pprof_msample *sample;
  size_t nsample, capsample;
  uint32_t *stack;
  size_t nstack, capstack;
  pprof_mlabel *label;
  size_t nlabel, caplabel;
  int64_t *value;
  size_t nvalue, capvalue;
  pprof_htab sample_idx;

  /* scratch for one add: pprof_merge_add's prep, the id remaps */
  pprof_prep *prep;
  uint32_t *str_map;
  size_t capstr_map;
  uint32_t *map_map;
  size_t capmap_map;
  uint32_t *fn_map;
  size_t capfn_map;
  uint32_t *loc_map;
  size_t caploc_map;
};

/* ---- one profile prepared for a commit (prep.c) ------------------------- */

/* Invariant: ready is 1 only while view holds a validated profile whose
** strings point into ibuf, or, for input borrowed by pprof_merge_add, into
** the caller's buffer for the duration of that call. */
struct pprof_prep {
  size_t max_inflate;
  struct libdeflate_decompressor *dec;
  uint8_t *ibuf; /* inflated (or copied) input */
  size_t icap;
  pprof_view *view;
  int ready;
};

/* pprof_merge_prepare, but with borrow set plain protobuf input is not
** copied: the view then points into buf, which must outlive the commit. */
pprof_rc pprof_prep_run(pprof_prep *p, const void *buf, size_t len,
                        int borrow, char *err);

/* Empties p after a commit or a failure (and drops an oversized buffer). */
void pprof_prep_clear(pprof_prep *p);

/* Grows every table of m so that committing v cannot fail, and resets the
** per-profile remaps for v.  Returns PPROF_OK or PPROF_ENOMEM; m's content
** is unchanged either way. */
pprof_rc pprof_merge_reserve(pprof_merge *m, const pprof_view *v);

/* Adds the validated, compatible, reserved view v to m. Cannot fail. */
void pprof_merge_commit(pprof_merge *m, const pprof_view *v);

#endif /* PROFEFS_PROTO_MERGE_H */
