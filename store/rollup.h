/*
** rollup.h — private to store/: the rollup policy every backend follows,
** whatever it keeps rollups in (SQLite rows, S3 objects).
**
** A rollup is the merge of the profiles of one service and type whose
** created_at falls in one slot of time and whose labels match one filter
** (a canonical label string, "" for all), in (created_at, id) order.  Slots
** are aligned on the epoch, at STORE_ROLLUP_LEVELS levels: hours, days
** (UTC) and weeks (of 7 days from a Thursday).  A slot that starts at or
** before the epoch has none (so that times are never negative there).
**
** Because merging is sequential, merging the rollups and the raw profiles
** of consecutive pieces of a range in time order gives the bytes of the
** profile-by-profile merge of that range: store_rollup_plan picks the
** pieces.  A rollup is exact only as long as no profile of its slot that
** matches its filter was added or removed since it was built; backends
** invalidate it in the same transaction (SQLite) or check it against the
** listing (S3).
**
** Which rollups to build for a slot (store_rollup_filters): "", every
** single pair of a key with few values in the slot (at most
** STORE_ROLLUP_FEW_VALUES: region, dc, host of a small fleet) and, when
** the slot holds few label sets (at most STORE_ROLLUP_FEW_SETS), every
** whole set, so that a query without labels, by such a label, or by a
** whole label set of a small fleet reads few pieces.  A key with many
** values (pod, instance: a new one every deploy) gets none, and nor do
** whole sets then: their rollups would multiply storage and upkeep by the
** number of pods, while a pod's own profiles are few and read through the
** label index.  Rollups of fewer than two profiles are not worth keeping.
*/
#ifndef PROFEFS_STORE_ROLLUP_H
#define PROFEFS_STORE_ROLLUP_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"

#define STORE_ROLLUP_LEVELS 3 /* 0 hour, 1 day, 2 week */
#define STORE_ROLLUP_GRACE 300 /* seconds after a slot's end before it is
                                  built: late profiles mostly come before */
#define STORE_ROLLUP_MAX_FILTERS 1024 /* per slot, the most populous first */
#define STORE_ROLLUP_FEW_VALUES 64 /* a key with more in a slot: no rollups */
#define STORE_ROLLUP_FEW_SETS 64   /* a slot with more sets: no whole sets */

/* The length in seconds of a slot of level (0 <= level < LEVELS). */
int64_t store_rollup_span(int level);

/* The start of the slot of level holding time t. */
int64_t store_rollup_slot(int level, int64_t t);

/* 1 when the slot of level starting at start may have rollups (it starts
** after the epoch and is aligned). */
int store_rollup_slot_valid(int level, int64_t start);

/* 1 when the slot has ended STORE_ROLLUP_GRACE seconds before now. */
int store_rollup_due(int level, int64_t start, int64_t now);

/* A rollup the backend holds for the query's filter. */
typedef struct store_rollup_have {
  int level;
  int64_t start;
} store_rollup_have;

/* A piece of a plan: a rollup (level >= 0, from = its start, to = its
** end) or the raw profiles of [from, to] (level -1). */
typedef struct store_rollup_piece {
  int level;
  int64_t from, to;
} store_rollup_piece;

/* Covers [from, to] with pieces in time order: at each point the biggest
** rollup of have[] (levels <= top only) that starts there and ends within
** the range, raw profiles up to the next such rollup.  have[] may be in
** any order and hold rollups outside the range; it is sorted in place.
** *out is malloc'd (free it); STORE_NOMEM on failure, *out unchanged. */
store_rc store_rollup_plan(int64_t from, int64_t to, int top,
                           store_rollup_have *have, size_t nhave,
                           store_rollup_piece **out, size_t *n, char *err);

/* The filters worth a rollup in a slot whose profiles carry the n distinct
** canonical label sets sets[] (counts[i] profiles each): "", each pair of
** a key with few values and, when n is small, each whole set of several
** pairs (see the top of the file), with the number of profiles each
** matches (exact for "" and pairs, a lower bound for whole sets, which
** supersets match too), most populous first (ties by filter), at most
** STORE_ROLLUP_MAX_FILTERS.  The builder counts the members of each and
** keeps those of 2 or more.  *out: malloc'd strings in a malloc'd array
** (store_names_free), *nout; *out_counts malloc'd.  STORE_NOMEM. */
store_rc store_rollup_filters(const char *const *sets, const int64_t *counts,
                              size_t n, char ***out, int64_t **out_counts,
                              size_t *nout, char *err);

/* 1 when a backend that keeps rollups for the filters of the queries it
** answers (S3) should use or build one for filter: "", a single pair, or
** a whole label set that a profile of the range carries (whole_set != 0)
** -- the filters store_rollup_filters picks.  Any other filter merges
** the profiles themselves, so that a client cannot multiply the rollups
** stored by asking for merges with new filters. */
int store_rollup_filter_kept(const char *filter, int whole_set);

/* A digest of the members of a rollup, fed each profile id in order:
** two filters of one slot with equal (count, digest) hold the same
** profiles, hence the same bytes.  Start from STORE_ROLLUP_DIGEST0. */
#define STORE_ROLLUP_DIGEST0 UINT64_C(14695981039346656037)
uint64_t store_rollup_digest(uint64_t d, const char *id);

#endif /* PROFEFS_STORE_ROLLUP_H */
