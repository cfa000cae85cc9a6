/*
** backend.h — private to store/: the operation table behind a `store`.
**
** store.c holds the public entry points; each checks its arguments
** (asserting documented preconditions, validating user input such as ids
** and service names) and then calls the backend through this table.
** sqlite/local.c (SQLite), remote/remote.c (HTTP client) and s3/s3.c (S3)
** each provide one table.
** A backend may leave an entry NULL: the call then fails with
** STORE_UNSUPPORTED.
*/
#ifndef PROFEFS_STORE_BACKEND_H
#define PROFEFS_STORE_BACKEND_H

#include "store.h"

/* ingest gets bytes that store.c has checked (a pprof profile of the
** declared type, unless META_TRACE) and created_at_hint already resolved
** from the profile's time_nanos; it must be idempotent: the same bytes,
** service, type, labels and created_at stored once, a repeat answering
** with the first id; out->ingested says which of the two happened
** (UNKNOWN only when the backend cannot know). */
typedef struct store_backend_ops {
  const char *name; /* "local" / "remote" / "s3" */
  void (*close)(void *impl);
  store_rc (*ingest)(void *impl, const char *service, meta_type type,
                     const char *labels, int64_t created_at_hint,
                     const void *data, size_t len, store_meta *out, char *err);
  store_rc (*find)(void *impl, const store_query *q, store_meta_list *out,
                   char *err);
  store_rc (*get)(void *impl, const char *id, store_meta *meta, void **data,
                  size_t *len, char *err);
  store_rc (*stat)(void *impl, const char *id, store_meta *meta, char *err);
  store_rc (*merge)(void *impl, const store_query *q, void **out, size_t *len,
                    size_t *count, char *err);
  store_rc (*merge_ids)(void *impl, const char *const *ids, size_t n,
                        void **out, size_t *len, char *err);
  store_rc (*services)(void *impl, char ***names, size_t *n, char *err);
  store_rc (*add_service)(void *impl, const char *service, char *err);
  store_rc (*remove_service)(void *impl, const char *service, char *err);
  store_rc (*label_sets)(void *impl, const char *service, meta_type type,
                         char ***sets, size_t *n, char *err);
  store_rc (*del)(void *impl, const char *id, char *err);
  store_rc (*retain)(void *impl, int64_t cutoff, size_t *deleted, char *err);
  uint64_t (*generation)(void *impl);
  store_rc (*stats)(void *impl, store_stats *out);
  store_rc (*maintain)(void *impl, size_t *built, char *err);
  /* store_stat_named where the id is not the digest (may be NULL) */
  store_rc (*stat_named)(void *impl, const char *service, meta_type type,
                         const char *digest, store_meta *meta, char *err);
  /* store_has_labels by index (may be NULL: store.c lists label sets) */
  store_rc (*has_labels)(void *impl, const char *service, meta_type type,
                         const char *labels, int exact, char *err);
  /* store_label_keys (key NULL) and store_label_values by index (may be
  ** NULL: store.c lists label sets or profiles) */
  store_rc (*label_names)(void *impl, const char *service, meta_type type,
                          const char *key, int64_t from, int64_t to,
                          char ***out, size_t *n, char *err);
  /* how many profiles of service/type there are and the created_at of the
  ** first and last (0 and 0 when none); store_explain_empty (may be NULL) */
  store_rc (*span)(void *impl, const char *service, meta_type type,
                   int64_t *count, int64_t *first, int64_t *last, char *err);
  /* ids other than meta_id_valid's that this backend takes (may be NULL) */
  int (*id_valid)(const char *id);
} store_backend_ops;

/* Constructors used by store_open / store_open_remote. */
store_rc store_local_open(const char *dir, const store_options *opts,
                          const store_backend_ops **ops, void **impl,
                          char *err);
store_rc store_remote_open(const char *base_url, const store_options *opts,
                           const store_backend_ops **ops, void **impl,
                           char *err);
store_rc store_s3_open(const char *url, const store_options *opts,
                       const store_backend_ops **ops, void **impl, char *err);

/* Appends a copy of name to the array *v of *n names (room for *cap),
** growing it: 0, or -1 out of memory (*v, *n, *cap then as they were,
** but for a bigger *v). */
int store_names_add(char ***v, size_t *n, size_t *cap, const char *name);

/* printf into err (STORE_ERRMAX bytes) when err is not NULL; returns rc so
** backends can write `return store_seterr(err, STORE_IO, "...", ...)`. */
store_rc store_seterr(char *err, store_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* PROFEFS_STORE_BACKEND_H */
