/*
** remote_int.h — private to the remote backend (remote.c, remote_profile.c):
** its state and the helpers the two files share.
**
** remote.c holds what is about queries (find, merges, services, label
** sets), opening and the op table; remote_profile.c what is about one
** profile by id (get, stat, ingest, delete) and the metadata cache.
**
** Invariants:
**   - ids are any the server answers (remote_json.h: 20 characters, or an
**     S3 key up to STORE_RJSON_ID_MAX bytes), always path-escaped in URLs;
**   - `bytes` holds, under key "P <id>" generation 0, the bytes the server
**     stored for id (profiles never change; one deleted by another client
**     may linger here); under "L|M|S <url>" the 200 answer of url at the
**     generation it is stored with;
**   - `metas` holds, under key "I <id>", what the server said about id (see
**     store_remote_meta_put); its size is -1 until learned; and, for an id
**     that is not its own FUSE name, under "D <service>\n<type>\n<name>"
**     the id;
**   - added[0..nadded) are distinct valid service names (under mu);
**   - writes only grows (under mu).
*/
#ifndef PROFEFS_STORE_REMOTE_INT_H
#define PROFEFS_STORE_REMOTE_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "remote_cache.h"
#include "remote_http.h"

typedef struct store_remote {
  char *base;            /* "http://host:port" without trailing '/' */
  int read_only;
  size_t answer_max;     /* largest answer accepted */
  store_rhttp *http;
  store_rcache *bytes;
  store_rcache *metas;
  pthread_mutex_t mu;    /* guards what follows */
  char **added;          /* services made by add_service */
  size_t nadded;
  uint64_t writes;       /* own successful ingests, deletes, add_service */
  int64_t ingests;
  int head_unsupported;  /* the server answered HEAD without a length: GET */
} store_remote;

/* asprintf that returns the string (NULL when out of memory). */
char *store_remote_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* t as profefe's query time "2006-01-02T15:04:05" (UTC), clamped to what
** it parses (years 1970..9999). */
void store_remote_time_param(int64_t t, char out[32]);

/* The generation: a few-second time bucket and the count of own writes. */
uint64_t store_remote_generation(store_remote *r);

/* Counts one own write (ingest != 0: an ingest). */
void store_remote_count_write(store_remote *r, int ingest);

/* The store_rc of a non-200 answer to request `what`, with the server's
** reason in err; on400 is what a 400 means for this request. */
store_rc store_remote_status_rc(const char *what, const store_rhttp_resp *resp,
                                store_rc on400, char *err);

/* GETs url or takes its answer from the cache under key/gen (a hit looks
** like a 200 answer); 200 answers are cached.  Fails like
** store_rhttp_request. */
store_rc store_remote_cached_get(store_remote *r, const char *key, uint64_t gen,
                                 const char *url, store_rhttp_resp *out,
                                 char *err);

/* "P <id>": the cache key of id's bytes (malloc'd; NULL when out of memory). */
char *store_remote_bytes_key(const char *id);

/* Remembers what the server said about store_meta_id(m). */
void store_remote_meta_put(store_remote *r, const store_meta *m);

/* 1 and *m (caller clears) when id's metadata is known; else 0. */
int store_remote_meta_get(store_remote *r, const char *id, store_meta *m);

/* The backend operations (the signatures of backend.h). */
store_rc store_remote_find(void *impl, const store_query *q,
                           store_meta_list *out, char *err);
store_rc store_remote_services(void *impl, char ***names, size_t *n, char *err);
store_rc store_remote_get(void *impl, const char *id, store_meta *meta,
                          void **data, size_t *len, char *err);
store_rc store_remote_stat(void *impl, const char *id, store_meta *meta,
                           char *err);
store_rc store_remote_ingest(void *impl, const char *service, meta_type type,
                             const char *labels, int64_t created_at_hint,
                             const void *data, size_t len, store_meta *out,
                             char *err);
store_rc store_remote_del(void *impl, const char *id, char *err);
store_rc store_remote_stat_named(void *impl, const char *service,
                                 meta_type type, const char *name,
                                 store_meta *meta, char *err);

#endif /* PROFEFS_STORE_REMOTE_INT_H */
