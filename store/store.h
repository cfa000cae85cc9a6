/*
** store.h — the profile repository: ingest, find, get, merge, services,
** delete, retention.
**
** A store is opened either on a local data directory (SQLite in WAL mode,
** store/sqlite/) or on a remote profefs/profefe server (HTTP via libcurl,
** store/remote/).  Front ends (httpd/, fs/) only ever see this header, so
** the same FUSE view serves a local repository and a remote one.
**
** Invariants the front ends may rely on:
**   - store_ingest returns STORE_OK only once the profile is durable (local:
**     committed with synchronous=FULL; remote: the server answered 200);
**   - stored bytes never change: store_get returns exactly what was given to
**     store_ingest, so callers may cache them by id for as long as they like;
**   - store_generation() changes whenever a profile is added or removed, so a
**     cache of derived data (merges, listings) is fresh while it is equal;
**   - every function is safe to call from many threads at once.
**
** Errors: every function returns a store_rc. Functions with an
** err[STORE_ERRMAX] argument (may be NULL) write a one-line reason on
** failure, phrased for a user ("missing service", "unknown type \"x\"",
** "malformed profile (truncated or corrupt gzip)"). OUT parameters are left
** unchanged on failure.
*/
#ifndef PROFEFS_STORE_H
#define PROFEFS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "meta.h"

#define STORE_ERRMAX 512

typedef enum store_rc {
  STORE_OK = 0,
  STORE_NOTFOUND,    /* no such id / nothing matches / no services */
  STORE_INVALID,     /* bad argument: service, type, labels, id, time */
  STORE_BADPROFILE,  /* the bytes are not a valid profile (or have no samples) */
  STORE_TOOBIG,      /* over a size limit (inflated size) */
  STORE_MISMATCH,    /* merge of profiles with different types/sample types */
  STORE_UNSUPPORTED, /* e.g. merging traces, DELETE on a server without it */
  STORE_READONLY,    /* store opened read-only */
  STORE_NOSPACE,     /* disk full */
  STORE_IO,          /* SQLite/disk/network error */
  STORE_NOMEM,
  STORE_BUSY,        /* the memory budget had no room: try again later */
  STORE_UNAVAILABLE  /* the storage service did not answer (S3 down): retry later */
} store_rc;

/* Short constant name of rc. */
const char *store_strerror(store_rc rc);

typedef struct store store;

/* ---- opening ---------------------------------------------------------------- */

typedef struct store_options {
  int read_only;        /* refuse writes with STORE_READONLY */
  size_t max_inflate;   /* decompression limit per profile; 0 = 256 MiB */
  budget *budget;       /* what checking an ingest inflates (and on S3 the
                        ** objects a merge fetches) is taken from it
                        ** (STORE_BUSY when it has no room); NULL = none;
                        ** must outlive the store */
  /* remote only: */
  long timeout_ms;      /* per request; 0 = 10000 */
  const char *user_agent;
  /* s3 only: endpoint URL; NULL = AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, AWS */
  const char *s3_endpoint;
  /* s3 only: directory of a local cache of objects (NULL = none), locked by
  ** this store while open, and its bound in bytes (0 = 1 GiB) */
  const char *s3_cache_dir;
  uint64_t s3_cache_max;
} store_options;

/* Opens (creating when missing, unless read_only) the local repository in
** directory dir, or, when dir is "s3://BUCKET[/PREFIX]", the repository in
** that S3 bucket (store/s3/: profefe's layout; credentials and region from
** the AWS_* environment; one request checks that the bucket answers and the
** credentials work, else STORE_IO / STORE_NOTFOUND / STORE_UNAVAILABLE with
** a one-line reason).  opts may be NULL for defaults.
** Fails with STORE_IO and a reason naming the directory when it cannot be
** created, read or written, the database is not a profefs store, or
** another open store (of any process) holds the directory's lock (the
** reason names that process's pid). */
store_rc store_open(const char *dir, const store_options *opts, store **out,
                    char err[STORE_ERRMAX]);

/* Opens a remote repository: base_url like "http://host:10100".  Does one
** request (GET /api/0/version) to fail early when nothing answers. */
store_rc store_open_remote(const char *base_url, const store_options *opts,
                           store **out, char err[STORE_ERRMAX]);

/* Flushes pending commits and closes; accepts NULL. */
void store_close(store *st);

/* 1 when the store is remote (front ends pick default windows from it). */
int store_is_remote(const store *st);

/* ---- metadata ------------------------------------------------------------------ */

/* What store_ingest did: a repeat of a stored profile (ingest is
** idempotent) answers with that profile, which the caller did not make and
** must not take for its own (the FUSE view deletes only what its writes
** created).  UNKNOWN is 0, so that every other call's metas say nothing. */
typedef enum store_ingested {
  STORE_INGESTED_UNKNOWN = 0, /* not an ingest, or the backend cannot tell
                              ** (a remote server that does not say) */
  STORE_INGESTED_NEW,         /* this call stored the profile */
  STORE_INGESTED_EXISTING     /* it was stored already; nothing changed */
} store_ingested;

typedef struct store_meta {
  char id[META_ID_LEN + 1]; /* the id, or on S3 the digest (FUSE names) */
  char *key;           /* S3: the object key, which is the id there; else NULL */
  char *service;       /* malloc'd */
  meta_type type;
  char *labels;        /* canonical label string (meta.h), malloc'd, "" if none */
  int64_t created_at;  /* unix seconds, UTC */
  int64_t size;        /* bytes as stored; -1 when unknown (remote lists) */
  store_ingested ingested; /* set by store_ingest only */
} store_meta;

/* Frees the strings of m (not m itself); accepts NULL. */
void store_meta_clear(store_meta *m);

/* The id of m as clients see it: m->key when set, else m->id. */
const char *store_meta_id(const store_meta *m);

/* 1 when id has the shape of an id of st (20 characters of base32hex, or on
** S3 an object key of profefe's layout). */
int store_id_valid(const store *st, const char *id);

typedef struct store_meta_list {
  size_t n;
  store_meta *v;
} store_meta_list;

/* Frees every entry and the array; accepts NULL. */
void store_meta_list_free(store_meta_list *l);

/* ---- queries ------------------------------------------------------------------- */

typedef struct store_query {
  const char *service;   /* required */
  meta_type type;        /* required */
  const char *labels;    /* canonical filter (subset match); NULL/"" = all */
  int64_t from, to;      /* inclusive, unix seconds */
  long limit;            /* > 0: at most this many, oldest first; 0 = all */
  int exact;             /* store_find: the profiles whose label set is
                         ** labels exactly (a FUSE label directory; ""
                         ** then means those without labels); a backend
                         ** may return a superset (what labels matches):
                         ** callers that need exactness check */
} store_query;

/* ---- operations ----------------------------------------------------------------- */

/* Stores one profile.  labels must be canonical (meta_labels_parse).
** For every type but META_TRACE the bytes are decoded and validated first
** (STORE_BADPROFILE / STORE_TOOBIG with the reason).  created_at is the
** profile's time_nanos when > 0, else created_at_hint when > 0, else now.
** On success fills *out (caller clears with store_meta_clear; out may be
** NULL), out->ingested saying whether this call stored the profile or
** found it stored already, and the profile is durable.
** The service is created if it did not exist. */
store_rc store_ingest(store *st, const char *service, meta_type type,
                      const char *labels, int64_t created_at_hint,
                      const void *data, size_t len, store_meta *out,
                      char err[STORE_ERRMAX]);

/* store_ingest of a pprof that profefs built itself from another format
** (the OTLP door's conversions), valid by construction: it is not decoded
** again.  types are its sample types as pprof_check_types writes them,
** time_nanos its time_nanos (the time it is filed at when > 0, else now).
** The caller answers for both and for its validity, which its own tests
** check (pprof_check_types takes what it builds); the type is checked
** against types as store_ingest checks it.  Fails as store_ingest does. */
store_rc store_ingest_built(store *st, const char *service, meta_type type,
                            const char *labels, const char *types,
                            int64_t time_nanos, const void *data, size_t len,
                            store_meta *out, char err[STORE_ERRMAX]);

/* For store_ingest_picked: given the profile's sample types
** ("type/unit,type/unit", as pprof_check_types writes them), sets *type
** (not META_TRACE) and may set *labels to the canonical label set to store
** instead of the one passed (malloc'd; the store frees it).  Returns 0, or
** -1 when out of memory. */
typedef int (*store_pick_fn)(const char *types, void *arg, meta_type *type,
                             char **labels);

/* store_ingest of a pprof whose type follows from its sample types (the
** doors of other agents, which send no type): pick chooses it once the
** profile is decoded, so that it is decoded once.  Fails as store_ingest
** does, and with STORE_NOMEM when pick does. */
store_rc store_ingest_picked(store *st, const char *service,
                             store_pick_fn pick, void *arg,
                             const char *labels, int64_t created_at_hint,
                             const void *data, size_t len, store_meta *out,
                             char err[STORE_ERRMAX]);

/* 1 when data[0..len), the first bytes of a profile to be ingested as
** type, may begin one that store_ingest takes (anything may begin a
** META_TRACE), 0 when no such profile begins so: the mount refuses such a
** first write at once, where a shell still sees the error. */
int store_may_begin(meta_type type, const void *data, size_t len);

/* Finds profiles matching q, sorted by created_at then id.
** STORE_OK with an empty list when nothing matches.
** *out is owned by the caller (store_meta_list_free). */
store_rc store_find(store *st, const store_query *q, store_meta_list *out,
                    char err[STORE_ERRMAX]);

/* Returns the stored bytes of id in *data (malloc'd, caller frees), *len,
** and the metadata in *meta when meta is not NULL (caller clears).
** STORE_INVALID for a malformed id, STORE_NOTFOUND for an unknown one. */
store_rc store_get(store *st, const char *id, store_meta *meta, void **data,
                   size_t *len, char err[STORE_ERRMAX]);

/* Metadata of one id without the bytes (FUSE getattr). */
store_rc store_stat(store *st, const char *id, store_meta *meta,
                    char err[STORE_ERRMAX]);

/* Metadata of the profile that the FUSE view names by service, type and
** digest (meta.id): where the id is longer than the digest (S3: the object
** key), this finds it; elsewhere it is store_stat(digest).  The caller
** then uses store_meta_id(meta) for store_get / store_delete. */
store_rc store_stat_named(store *st, const char *service, meta_type type,
                          const char *digest, store_meta *meta,
                          char err[STORE_ERRMAX]);

/* Merges every profile matching q (streaming) into one gzip pprof in *out
** (malloc'd, caller frees).  STORE_NOTFOUND when nothing matches,
** STORE_UNSUPPORTED for META_TRACE, STORE_MISMATCH when sample types differ.
** *count (may be NULL) receives the number of profiles merged. */
store_rc store_merge(store *st, const store_query *q, void **out, size_t *len,
                     size_t *count, char err[STORE_ERRMAX]);

/* Writes into err (not NULL: else a no-op) why q matches no profile, for
** a user: the range asked for and, where the backend can tell cheaply
** (local), what the service holds of that type ("no cpu profiles of api
** from A to B; api holds 12 cpu profiles from C to D").  store_merge does
** this itself on STORE_NOTFOUND; front ends call it when a cheaper look-up
** found nothing.  Never fails: without the counts the text names the range
** only. */
void store_explain_empty(store *st, const store_query *q,
                         char err[STORE_ERRMAX]);

/* Merges the named profiles.  They must all exist (STORE_NOTFOUND naming the
** missing id) and have one type (STORE_INVALID otherwise); traces cannot be
** merged (STORE_UNSUPPORTED). */
store_rc store_merge_ids(store *st, const char *const *ids, size_t n,
                         void **out, size_t *len, char err[STORE_ERRMAX]);

/* Sorted service names in *names (array and strings malloc'd; free with
** store_names_free).  STORE_OK with *n == 0 when there are none. */
store_rc store_services(store *st, char ***names, size_t *n,
                        char err[STORE_ERRMAX]);
void store_names_free(char **names, size_t n);

/* Creates an empty service (FUSE mkdir).  STORE_OK when it already exists;
** STORE_INVALID for an invalid name. */
store_rc store_add_service(store *st, const char *service,
                           char err[STORE_ERRMAX]);

/* Removes a service that holds no profiles (FUSE rmdir).  STORE_NOTFOUND
** when there is no such service, STORE_INVALID (naming the service) when it
** still holds profiles. */
store_rc store_remove_service(store *st, const char *service,
                              char err[STORE_ERRMAX]);

/* Distinct canonical label sets of the profiles of service/type
** (FUSE lists them as label directories), sorted. Caller frees with
** store_names_free. */
store_rc store_label_sets(store *st, const char *service, meta_type type,
                          char ***sets, size_t *n, char err[STORE_ERRMAX]);

/* STORE_OK when a profile of service/type has the canonical label set
** labels (exact) or one that the filter labels matches (!exact),
** STORE_NOTFOUND when none does.  The local store answers from its index
** (one look-up, whatever the number of label sets); others list the
** label sets. */
store_rc store_has_labels(store *st, const char *service, meta_type type,
                          const char *labels, int exact,
                          char err[STORE_ERRMAX]);

/* The label keys of the profiles of service/type (store_label_keys), or
** the values of key among those created in [from, to]
** (store_label_values), unescaped and sorted by their canonical text, in
** *out (free with store_names_free); STORE_OK with *n == 0 when there are
** none.  The local store seeks its index once per name returned; others
** list the label sets (keys) or the range's profiles (values). */
store_rc store_label_keys(store *st, const char *service, meta_type type,
                          char ***out, size_t *n, char err[STORE_ERRMAX]);
store_rc store_label_values(store *st, const char *service, meta_type type,
                            const char *key, int64_t from, int64_t to,
                            char ***out, size_t *n, char err[STORE_ERRMAX]);

/* Deletes one profile. STORE_NOTFOUND for an unknown id. */
store_rc store_delete(store *st, const char *id, char err[STORE_ERRMAX]);

/* Deletes every profile whose created_at < cutoff and reclaims the space
** (incremental vacuum). *deleted (may be NULL) gets the count. */
store_rc store_retain(store *st, int64_t cutoff, size_t *deleted,
                      char err[STORE_ERRMAX]);

/* Changes whenever a profile is added or deleted (see invariants). */
uint64_t store_generation(store *st);

/* Numbers for /debug/metrics.  Fields a backend cannot know are -1. */
typedef struct store_stats {
  int64_t profiles;      /* stored profiles */
  int64_t bytes;         /* sum of stored profile sizes */
  int64_t disk_bytes;    /* size of the database files */
  int64_t ingests;       /* successful ingests since open */
  int64_t commits;       /* group commits since open */
  int64_t cache_hits;    /* objects read from the local cache (S3 --cache) */
  int64_t cache_misses;  /* objects the cache did not have */
  int64_t cache_bytes;   /* bytes the cache holds now */
  int64_t rollups;       /* rollup objects (S3: at its last upkeep pass) */
  int64_t rollup_bytes;  /* ... and their bytes */
  int64_t lists;         /* S3: list requests sent since open */
  int64_t disk_avail;    /* bytes free for the store on its disk; -1 when
                         ** unknown or unbounded (S3, remote) */
} store_stats;
store_rc store_get_stats(store *st, store_stats *out);

/* Does now the upkeep that a backend otherwise does in the background on
** its own schedule.  Local: builds the hourly rollups (the merge of one
** hour of one service/type/label set) that make merges of long ranges
** fast; *built (may be NULL) gets how many were written.  Never needed for
** correctness (merges give the same profile with or without rollups); for
** tests, benchmarks and tools.  S3: the rollups' upkeep pass (old
** versions deleted, counted for store_get_stats), which retention also
** runs every hour.  STORE_READONLY on a read-only store, STORE_UNSUPPORTED
** on a remote one. */
store_rc store_maintain(store *st, size_t *built, char err[STORE_ERRMAX]);

#endif /* PROFEFS_STORE_H */
