/*
** internal.h — private to proto/: the decoded "view" of one profile, the
** gzip helpers, string hashing and the small containers the codec and the
** merge share.  Nothing outside proto/ includes this file.
**
** The view
** --------
** pprof_view is a flat, zero-copy decoding of one Profile message produced
** by wire.c and checked by validate.c.  Strings point into the (inflated)
** input buffer, which must outlive the view's use.  Every array is reused
** across pprof_view_parse() calls (capacity is kept), so decoding profile
** after profile into one view does no allocation once it has warmed up.
**
** Invariants after pprof_view_validate() returned PPROF_OK:
**   - nstr >= 1 and str[0] is empty; every string index field is in
**     [0, nstr);
**   - mapping, function and location ids are non-zero and unique;
**   - loc[i].map is 0 (no mapping) or 1 + the index of its mapping;
**   - line[j].fn is the index of its function;
**   - locix[k] is the index of the location named by locid[k];
**   - every sample has exactly nstype values.
*/
#ifndef PROFEFS_PROTO_INTERNAL_H
#define PROFEFS_PROTO_INTERNAL_H

#include <stdint.h>
#include <stddef.h>
#include <string.h>

#include "pprof.h"

#define PPROF_NONE UINT32_MAX

/* Writes a formatted reason into err (PPROF_ERRMAX bytes) unless err is
** NULL, and returns rc, so that `return pprof_fail(rc, err, ...)` reads
** naturally. */
pprof_rc pprof_fail(pprof_rc rc, char *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Grows an array so that it holds at least need elements: pp is the address
** of the array's pointer (some T **, elements of size bytes) and *cap its
** capacity.  Returns 0, or -1 when out of memory or on size overflow,
** leaving the array and *cap unchanged. */
int pprof_grow(void *pp, size_t *cap, size_t need, size_t size);

/* Evaluates to 0 when array a (n used, cap allocated) has room for k more
** elements, growing it if needed; -1 when out of memory. */
#define PPROF_ROOM(a, n, cap, k) \
  ((n) + (k) <= (cap) ? 0 : pprof_grow(&(a), &(cap), (n) + (k), sizeof *(a)))

/* ---- hashing ---------------------------------------------------------- */

static inline uint64_t pprof_hmix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}

static inline uint32_t pprof_hfinal(uint64_t h) {
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return (uint32_t)h;
}

/* Hash of n bytes at p. */
uint32_t pprof_hash_bytes(const void *p, size_t n);

/* Open-addressing hash index (linear probing, power-of-two size, load
** factor <= 1/2).  It stores entity numbers and their hashes only; the
** caller owns the entities and does the key comparison, which keeps one
** generic table for strings, mappings, functions, locations and samples.
** Lookup:
**     size_t pos = pprof_htab_start(t, h);
**     for (uint32_t ix; (ix = pprof_htab_next(t, h, &pos)) != PPROF_NONE;)
**       if (equal(ix)) return ix;
**     pprof_htab_insert(t, pos, h, new_ix);   // pos is now an empty slot
*/
typedef struct pprof_htab_slot {
  uint32_t hash;
  uint32_t ix1; /* entity number + 1; 0 = empty */
} pprof_htab_slot;

typedef struct pprof_htab {
  pprof_htab_slot *slot;
  size_t mask; /* capacity - 1; capacity is 0 before the first reserve */
  size_t n;
} pprof_htab;

/* Makes sure n entries fit with load <= 1/2, rehashing if needed.
** Returns 0, or -1 when out of memory (t unchanged). */
int pprof_htab_reserve(pprof_htab *t, size_t n);
void pprof_htab_free(pprof_htab *t);

static inline size_t pprof_htab_start(const pprof_htab *t, uint32_t h) {
  return h & t->mask;
}

static inline uint32_t pprof_htab_next(const pprof_htab *t, uint32_t h,
                                       size_t *pos) {
  for (;;) {
    const pprof_htab_slot *s = &t->slot[*pos];
    if (s->ix1 == 0)
      return PPROF_NONE;
    *pos = (*pos + 1) & t->mask;
    if (s->hash == h)
      return s->ix1 - 1;
  }
}

/* pos must be the slot where the lookup above stopped; the table must have
** been reserved for one more entry. */
static inline void pprof_htab_insert(pprof_htab *t, size_t pos, uint32_t h,
                                     uint32_t ix) {
  t->slot[pos].hash = h;
  t->slot[pos].ix1 = ix + 1;
  t->n++;
}

/* ---- gzip (gzip.c) ------------------------------------------------------ */

struct libdeflate_decompressor;

/* 1 when buf starts with the gzip magic. */
int pprof_is_gzip(const void *buf, size_t len);

/* Inflates the gzip stream in (one or more members) into *buf, a malloc'd
** buffer of capacity *cap that is reused and grown as needed (may start
** NULL/0; it stays the caller's to free, success or not).  Never produces
** more than limit bytes: PPROF_ETOOBIG once the output would exceed it;
** PPROF_EGZIP for a corrupt, truncated or trailing-garbage stream.  On
** success sets *outlen.  d is from libdeflate_alloc_decompressor().
** Growth of *buf is taken from budget b (NULL: none) and added to *held,
** which the caller gives back once it freed *buf, also on failure;
** PPROF_EBUSY when b has no room. */
pprof_rc pprof_gunzip(struct libdeflate_decompressor *d, const void *in,
                      size_t len, size_t limit, uint8_t **buf, size_t *cap,
                      size_t *outlen, budget *b, size_t *held, char *err);

/* Compresses in as one gzip member into a malloc'd *out / *outlen, at
** libdeflate's level (PPROF_GZIP_MERGE for what proto/ makes: merges are
** read often; PPROF_GZIP_FAST for what converters hand to ingest: at level
** 1 a CPU profile is 3% larger and costs less than half the CPU of 6). */
#define PPROF_GZIP_MERGE 6
#define PPROF_GZIP_FAST 1
pprof_rc pprof_gzip(const void *in, size_t len, int level, void **out,
                    size_t *outlen);

/* Default inflate limit when callers pass 0. */
#define PPROF_DEFAULT_INFLATE ((size_t)256 << 20)

/* ---- the view (wire.c, validate.c) ------------------------------------- */

typedef struct pprof_vstr {
  const char *p;
  size_t len;
} pprof_vstr;

typedef struct pprof_vtype {
  int64_t type, unit; /* string indices */
} pprof_vtype;

typedef struct pprof_vsample {
  uint32_t loc0, nloc; /* into locid / locix */
  uint32_t val0, nval; /* into value */
  uint32_t lab0, nlab; /* into label */
} pprof_vsample;

typedef struct pprof_vlabel {
  int64_t key, str, num, unit;
} pprof_vlabel;

#define PPROF_HAS_FUNCTIONS 1
#define PPROF_HAS_FILENAMES 2
#define PPROF_HAS_LINE_NUMBERS 4
#define PPROF_HAS_INLINE_FRAMES 8

typedef struct pprof_vmapping {
  uint64_t id, start, limit, offset;
  int64_t file, build_id; /* string indices */
  unsigned flags;         /* PPROF_HAS_* */
} pprof_vmapping;

typedef struct pprof_vline {
  uint64_t function_id;
  int64_t line, column;
  uint32_t fn; /* resolved by validate: index into fn */
} pprof_vline;

typedef struct pprof_vlocation {
  uint64_t id, mapping_id, address;
  uint32_t line0, nline; /* into line */
  uint32_t map;          /* resolved: 0 none, else 1 + mapping index */
  int is_folded;
} pprof_vlocation;

typedef struct pprof_vfunction {
  uint64_t id;
  int64_t name, system_name, filename; /* string indices */
  int64_t start_line;
} pprof_vfunction;

/* Id -> index map for one kind of entity of one profile: identity when the
** ids are 1..n in order (what Go writes), else a dense array or a hash. */
typedef struct pprof_idmap {
  int mode;
  size_t n;
  uint32_t *dense; /* mode dense: id -> index + 1 */
  size_t dense_cap;
  uint64_t dense_max; /* mode dense: largest id of this profile; entries
                      ** past it are stale (left from an earlier one) */
  uint64_t *keys; /* mode hash: 0 = empty (ids are non-zero) */
  uint32_t *vals;
  size_t hcap;
} pprof_idmap;

typedef struct pprof_view {
  /* header */
  pprof_vtype *stype;
  size_t nstype, capstype;
  pprof_vtype period_type;
  int64_t drop_frames, keep_frames, time_nanos, duration_nanos, period;
  int64_t default_sample_type;
  uint64_t *comment; /* string indices, as read (see value) */
  size_t ncomment, capcomment;
  int time_seen;

  pprof_vstr *str;
  size_t nstr, capstr;
  size_t str_bytes; /* sum of the string lengths */

  pprof_vsample *sample;
  size_t nsample, capsample;
  uint64_t *locid;
  uint32_t *locix;
  size_t nlocid, caplocid, caplocix;
  uint64_t *value; /* int64 values as read: (int64_t)value[i] */
  size_t nvalue, capvalue;
  pprof_vlabel *label;
  size_t nlabel, caplabel;

  pprof_vmapping *map;
  size_t nmap, capmap;
  pprof_vlocation *loc;
  size_t nloc, caploc;
  pprof_vline *line;
  size_t nline, capline;
  pprof_vfunction *fn;
  size_t nfn, capfn;

  pprof_idmap map_ids, fn_ids, loc_ids;
} pprof_view;

/* Creates an empty view; NULL when out of memory. */
pprof_view *pprof_view_new(void);
void pprof_view_free(pprof_view *v);

/* Decodes the protobuf Profile message in buf into v (whose previous
** content is discarded).  Fails with PPROF_EDECODE (not well-formed
** protobuf, or not a Profile) or PPROF_ENOMEM. */
pprof_rc pprof_view_parse(pprof_view *v, const uint8_t *buf, size_t len,
                          char *err);

/* Checks and resolves a parsed view (see the invariants above).  Fails with
** PPROF_EINVALID, PPROF_EDECODE (no string table) or PPROF_ENOMEM.
** Does not require samples. */
pprof_rc pprof_view_validate(pprof_view *v, char *err);

/* Looks id up in m: its index, or PPROF_NONE. */
uint32_t pprof_idmap_get(const pprof_idmap *m, uint64_t id);
void pprof_idmap_free(pprof_idmap *m);

/* ---- encode (encode.c) ------------------------------------------------ */

struct Perftools__Profiles__Profile;

/* Packs msg and gzips it into a malloc'd *out / *len. */
pprof_rc pprof_pack_gzip(const struct Perftools__Profiles__Profile *msg,
                         void **out, size_t *len);

#endif /* PROFEFS_PROTO_INTERNAL_H */
