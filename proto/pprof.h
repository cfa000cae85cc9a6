/*
** pprof.h — pprof profiles: decode (gzip or plain protobuf), validate,
** encode, and a streaming merge with the semantics of `go tool pprof -proto`.
**
** The wire format is pprof's profile.proto (proto/profile.proto, compiled by
** protoc-c at build time).  Nothing here knows about storage or transport:
** buffers in, buffers out.
**
** Errors: every function returns a pprof_rc.  Functions that take an
** err[PPROF_ERRMAX] argument write a one-line, human-readable reason there
** when they fail (err may be NULL).  The reason never starts with "malformed
** profile" — callers add their own prefix.
**
** Merge semantics (same result as `go tool pprof -proto A B ...` up to
** ordering and ids):
**   - every profile must have the same sample types (type and unit, in order)
**     and the same period type, else PPROF_EMISMATCH naming both;
**   - period = max, time_nanos = earliest non-zero, duration = sum,
**     comments = union in first-seen order, drop/keep frames and the default
**     sample type from the first profile;
**   - samples with equal location stacks, labels and numeric labels are
**     summed; samples whose values are all zero are dropped;
**   - mappings, functions, locations and strings are deduplicated with the
**     keys pprof's profile.Merge uses.
** Memory grows with the number of distinct stacks/locations/strings, never
** with the number of profiles added.
*/
#ifndef PROFEFS_PPROF_H
#define PROFEFS_PPROF_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"

#define PPROF_ERRMAX 256

typedef enum pprof_rc {
  PPROF_OK = 0,
  PPROF_EGZIP,      /* corrupt or truncated gzip stream */
  PPROF_ETOOBIG,    /* inflated size over the caller's limit */
  PPROF_EDECODE,    /* not a valid protobuf Profile message */
  PPROF_EINVALID,   /* decoded, but an index/id is out of range or inconsistent */
  PPROF_EEMPTY,     /* no samples (decode) / nothing added (merge finish) */
  PPROF_EMISMATCH,  /* merge: sample or period types differ */
  PPROF_ENOMEM,
  PPROF_EBUSY       /* the memory budget had no room (pprof_check_in) */
} pprof_rc;

/* Short constant name of rc ("truncated or corrupt gzip", ...). */
const char *pprof_strerror(pprof_rc rc);

/* ---- single profiles ----------------------------------------------------- */

typedef struct pprof_profile pprof_profile;

/* Decodes buf (gzip-compressed if it starts with the gzip magic, else plain
** protobuf), then validates it: string indices inside the string table,
** string_table[0] == "", sample location ids, location mapping and
** function ids, and line function ids all refer to existing entries (ids
** non-zero and unique), every sample has exactly one value per sample type,
** and there is at least one sample.
** max_inflate bounds the inflated size (0 = 256 MiB).
** On success returns PPROF_OK and sets *out (caller frees with pprof_free);
** on failure *out is unchanged and err says why. */
pprof_rc pprof_decode(const void *buf, size_t len, size_t max_inflate,
                      pprof_profile **out, char err[PPROF_ERRMAX]);

/* Frees p; accepts NULL. */
void pprof_free(pprof_profile *p);

/* The profile's time_nanos (0 when unset). */
int64_t pprof_time_nanos(const pprof_profile *p);

/* Number of samples. */
size_t pprof_sample_count(const pprof_profile *p);

/* Encodes p as gzip-compressed protobuf. On success *out is malloc'd
** (caller frees) and *len set; on failure both are unchanged. */
pprof_rc pprof_encode(const pprof_profile *p, void **out, size_t *len);

/* 1 when buf[0..len), the first bytes of a file, may begin a profile
** (gzip's magic, or the tag of a field of profile.proto), 0 when no
** profile starts so: the mount refuses such a first write at once. */
int pprof_may_begin(const void *buf, size_t len);

/* Decode + validate + free in one call, for ingest: returns what
** pprof_decode returns and, on success, the profile's time_nanos in
** *time_nanos (may be NULL). */
pprof_rc pprof_check(const void *buf, size_t len, size_t max_inflate,
                     int64_t *time_nanos, char err[PPROF_ERRMAX]);

/* pprof_check with the inflated copy's memory taken from budget b (NULL:
** none) while it exists: PPROF_EBUSY when b has no room for it. */
pprof_rc pprof_check_in(const void *buf, size_t len, size_t max_inflate,
                        budget *b, int64_t *time_nanos,
                        char err[PPROF_ERRMAX]);

/* The sample types of a profile as text: "type/unit,type/unit" (cut short
** with "..." past PPROF_TYPES_MAX - 1 bytes). */
#define PPROF_TYPES_MAX 256

/* The text pprof_check_types writes for a profile of the one sample type
** type/unit (those a converter builds). */
void pprof_types_of(const char *type, const char *unit,
                    char out[PPROF_TYPES_MAX]);

/* pprof_check_in that also writes the profile's sample types into types
** (may be NULL), so that a caller can check them against a declared kind
** without decoding the profile twice. */
pprof_rc pprof_check_types(const void *buf, size_t len, size_t max_inflate,
                           budget *b, int64_t *time_nanos,
                           char types[PPROF_TYPES_MAX],
                           char err[PPROF_ERRMAX]);

/* ---- gzip, for compressed request bodies ----------------------------------- */

/* Inflates the gzip stream in into *out (malloc'd, caller frees) and
** *outlen, never more than limit bytes (PPROF_ETOOBIG), the output's memory
** taken from budget b (NULL: none; PPROF_EBUSY when it has no room) and
** added to *held, which the caller gives back (budget_release) once it
** freed *out, also on failure.  PPROF_EGZIP for a corrupt stream.  OUT
** parameters other than *held unchanged on failure. */
pprof_rc pprof_decompress(const void *in, size_t len, size_t limit, budget *b,
                          void **out, size_t *outlen, size_t *held,
                          char err[PPROF_ERRMAX]);

/* ---- streaming merge --------------------------------------------------------- */

typedef struct pprof_merge pprof_merge;

/* Creates an empty accumulator. max_inflate as for pprof_decode.
** Returns NULL when out of memory. Free with pprof_merge_free. */
pprof_merge *pprof_merge_new(size_t max_inflate);

/* Frees m; accepts NULL. */
void pprof_merge_free(pprof_merge *m);

/* Decodes one profile (gzip or plain) and adds it to m.  A profile with no
** samples is accepted here (it still contributes its header).  On failure
** m is unchanged (the profile is not partly added) and err says why;
** PPROF_EMISMATCH names both sample type lists. */
pprof_rc pprof_merge_add(pprof_merge *m, const void *buf, size_t len,
                         char err[PPROF_ERRMAX]);

/* Number of profiles added so far. */
size_t pprof_merge_count(const pprof_merge *m);

/* Encodes the merged profile as gzip protobuf into *out (malloc'd, caller
** frees) and *len.  m stays valid and may take more profiles afterwards.
** PPROF_EEMPTY when nothing was added. */
pprof_rc pprof_merge_result(pprof_merge *m, void **out, size_t *len,
                            char err[PPROF_ERRMAX]);

/* ---- merging in two steps (prepare, then commit) -----------------------------
**
** pprof_merge_add is pprof_merge_prepare followed by pprof_merge_commit_prep.
** The split lets a caller run the expensive, independent part (inflate,
** decode, validate: about two thirds of the cost) for the next profiles on
** other threads while one thread commits into the accumulator.  Committing
** the same profiles in the same order gives the same bytes as
** pprof_merge_add, whatever thread prepared them.
**
** Thread safety: a pprof_prep is used by one thread at a time, and a
** pprof_merge too; a pprof_prep is never tied to an accumulator, and
** preparing touches no shared state, so different preps may be prepared
** concurrently with each other and with a commit of another prep. */

typedef struct pprof_prep pprof_prep;

/* Creates an empty prep (decompressor and reusable buffers for one profile
** at a time).  max_inflate as for pprof_decode.  NULL when out of memory.
** Free with pprof_prep_free. */
pprof_prep *pprof_prep_new(size_t max_inflate);

/* Frees p; accepts NULL. */
void pprof_prep_free(pprof_prep *p);

/* Inflates (if gzip), decodes and validates buf into p, replacing what p
** held, with the checks of pprof_merge_add (a profile without samples is
** accepted).  p keeps no reference to buf: plain protobuf input is copied.
** On failure p holds nothing, and the error (rc, err) is the one
** pprof_merge_add would report for this profile — except PPROF_EMISMATCH,
** which needs an accumulator and only pprof_merge_commit_prep reports. */
pprof_rc pprof_merge_prepare(pprof_prep *p, const void *buf, size_t len,
                             char err[PPROF_ERRMAX]);

/* 1 when p holds a prepared profile (prepared successfully, not committed
** yet). */
int pprof_prep_ready(const pprof_prep *p);

/* Adds the profile prepared in p to m: checks that it is compatible with
** what m holds (PPROF_EMISMATCH, naming both type lists) and makes room
** (PPROF_ENOMEM).  On failure m is unchanged.  Either way p holds nothing
** afterwards (it may be prepared again).  Precondition: pprof_prep_ready(p). */
pprof_rc pprof_merge_commit_prep(pprof_merge *m, pprof_prep *p,
                                 char err[PPROF_ERRMAX]);

/* ---- building a profile from call stacks ------------------------------------------
**
** For the ingest doors whose input is stacks of frame names rather than a
** pprof (Pyroscope's folded and lines formats; a converter of another
** format may use it too).  The result is a real pprof: one Function per
** distinct (name, file), one Location with one Line per distinct
** (function, line), one Sample per distinct stack with the values added
** for it summed; ids in first-seen order, so the same input gives the
** same bytes.  Memory grows with the distinct strings, frames and stacks,
** and is taken from the budget given at creation. */

typedef struct pprof_builder pprof_builder;

/* One frame of a stack; name (name_len > 0 bytes, not NUL-terminated) is
** required, file may be NULL with file_len 0, line 0 when unknown. */
typedef struct pprof_frame {
  const char *name;
  size_t name_len;
  const char *file;
  size_t file_len;
  int64_t line;
} pprof_frame;

/* An empty profile whose memory is taken from b (NULL: none; b must
** outlive the builder).  NULL when out of memory or b has no room. */
pprof_builder *pprof_builder_new(budget *b);

/* Frees b and gives its memory back to the budget; accepts NULL. */
void pprof_builder_free(pprof_builder *b);

/* Makes room at once for about stacks distinct stacks of frames frames in
** all, distinct of them distinct, and bytes of names (an estimate: more
** still fits, growing), so that adding them allocates little more.
** PPROF_ENOMEM / PPROF_EBUSY. */
pprof_rc pprof_builder_reserve(pprof_builder *b, size_t stacks,
                               size_t frames, size_t distinct, size_t bytes);

/* Appends a sample type (at most 8), before any sample is added.
** PPROF_EINVALID past 8; PPROF_ENOMEM / PPROF_EBUSY. */
pprof_rc pprof_builder_sample_type(pprof_builder *b, const char *type,
                                   const char *unit);

/* Sets the period type and period.  PPROF_ENOMEM / PPROF_EBUSY. */
pprof_rc pprof_builder_period(pprof_builder *b, const char *type,
                              const char *unit, int64_t period);

/* Sets time_nanos and duration_nanos (0: unset). */
void pprof_builder_time(pprof_builder *b, int64_t time_nanos,
                        int64_t duration_nanos);

/* Adds one stack of n frames, frames[0] the root (the order of folded
** stacks), with one value per sample type; a stack seen before has its
** values added to the earlier ones.  Fails with PPROF_EINVALID (no sample
** type yet, no frame, an empty name), PPROF_ETOOBIG, PPROF_ENOMEM or
** PPROF_EBUSY (the budget had no room) and err says why; the samples
** added before are kept either way. */
pprof_rc pprof_builder_add(pprof_builder *b, const pprof_frame *frames,
                           size_t n, const int64_t *values,
                           char err[PPROF_ERRMAX]);

/* Number of distinct stacks added. */
size_t pprof_builder_count(const pprof_builder *b);

/* Encodes the profile as protobuf, gzip-compressed when gzip is set, into
** *out (malloc'd, caller frees) and *len; PPROF_EEMPTY when no stack was
** added, PPROF_ENOMEM; on failure *out and *len are unchanged.  b stays as
** it was. */
pprof_rc pprof_builder_encode(const pprof_builder *b, int gzip, void **out,
                              size_t *len, char err[PPROF_ERRMAX]);

/* ---- stacks: a profile read back for views (stacks.c) ------------------------
**
** What flame graphs, folded stacks and top tables need of a profile: its
** sample types, and per sample its values and its stack as function names,
** root first, the lines of inlined functions as frames of their own
** (outermost first, as `go tool pprof -traces` shows them).  A location
** without lines, or whose function has no name, is the frame "0x<address>"
** (lowercase hex).  Frame names are deduplicated: equal names have one
** number.  A pprof_stacks owns copies of everything (the input buffer may
** be freed); it is read-only once decoded, so threads may share it. */

typedef struct pprof_stacks pprof_stacks;

/* Inflates, decodes and validates buf as pprof_decode does (an empty
** profile is accepted).  On success *out is set (free with
** pprof_stacks_free); on failure *out is unchanged and err says why. */
pprof_rc pprof_stacks_decode(const void *buf, size_t len, size_t max_inflate,
                             pprof_stacks **out, char err[PPROF_ERRMAX]);

/* Frees s; accepts NULL. */
void pprof_stacks_free(pprof_stacks *s);

/* Number of sample types, and type i's name and unit ("cpu",
** "nanoseconds"); the strings belong to s. */
size_t pprof_stacks_ntypes(const pprof_stacks *s);
const char *pprof_stacks_type(const pprof_stacks *s, size_t i);
const char *pprof_stacks_unit(const pprof_stacks *s, size_t i);

/* The sample type pprof shows by default: the one named by
** default_sample_type, else the last.  Precondition: ntypes > 0. */
size_t pprof_stacks_default_type(const pprof_stacks *s);

/* Header fields (0 when unset). */
int64_t pprof_stacks_time_nanos(const pprof_stacks *s);
/* The file and build id of the first mapping, and comment i ("" / NULL
** when missing; the strings belong to s). */
const char *pprof_stacks_main_file(const pprof_stacks *s);
const char *pprof_stacks_build_id(const pprof_stacks *s);
const char *pprof_stacks_comment(const pprof_stacks *s, size_t i);
int64_t pprof_stacks_duration_nanos(const pprof_stacks *s);

/* A frame number with this bit set is a line of an inlined call (not the
** outermost line of its location); mask it off for pprof_stacks_name. */
#define PPROF_FRAME_INLINED 0x80000000u

/* Number of samples; sample i's frames (numbers for pprof_stacks_name,
** root first) in *n and the returned array (belongs to s); its value of
** sample type t; 1 when it carries the label pprof::base (a sample of the
** base side of a diff, whose values are negated). */
size_t pprof_stacks_nsamples(const pprof_stacks *s);
const uint32_t *pprof_stacks_frames(const pprof_stacks *s, size_t i,
                                    size_t *n);
int64_t pprof_stacks_value(const pprof_stacks *s, size_t i, size_t t);
int pprof_stacks_is_base(const pprof_stacks *s, size_t i);

/* Number of distinct frame names, and name k (NUL-terminated, belongs to
** s). */
size_t pprof_stacks_nnames(const pprof_stacks *s);
const char *pprof_stacks_name(const pprof_stacks *s, uint32_t k);

/* ---- diff (diff.c) -----------------------------------------------------------
**
** The profile `go tool pprof -diff_base BASE TARGET` reads: target's
** samples, then base's with their values negated and the label
** pprof::base=true (which pprof uses for the total of percentages), merged
** with pprof_merge's semantics.  Sample and period types must match
** (PPROF_EMISMATCH naming both).  On success *out (malloc'd gzip pprof,
** caller frees) and *len are set; else they are unchanged. */
pprof_rc pprof_diff(const void *base, size_t blen, const void *target,
                    size_t tlen, size_t max_inflate, void **out, size_t *len,
                    char err[PPROF_ERRMAX]);

#endif /* PROFEFS_PPROF_H */
