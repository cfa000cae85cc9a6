/*
** s3_int.h — private to the S3 backend (store/s3/): its state and what its
** files share.
**
**   s3.c       opening, the op table, find/services/label sets/retention
**   s3_obj.c   one profile by id: ingest, get, stat, delete, and merges
**   s3_http.c  signed requests (libcurl's SigV4), retries, parallel GETs
**   s3_xml.c   ListObjectsV2 and error answers (expat)
**   s3_key.c   profefe's key layout and the deterministic digest
**   s3_rollup.c  rollups as objects under "R0.", checked against the listing
**   s3_cache.c the optional on-disk cache of objects (s3_cache.h)
**
** The store keeps no state of its own beyond a pool of connections and
** that cache of immutable objects: every answer comes from the bucket, so
** any number of nodes can share one.
**
** Invariants:
**   - base is the URL of the bucket without a trailing '/' (path-style
**     "ENDPOINT/BUCKET", or virtual-hosted "https://BUCKET.s3.REGION...");
**   - prefix is "" or ends with '/'; every key we send or list starts with it;
**   - writes only grows (under mu);
**   - added[0..nadded), nadded <= S3_ADDED_MAX, are the distinct services
**     made empty on this node
**     (FUSE mkdir; under mu): kept in memory only, shown with the listed
**     ones, until rmdir or the end of the process (a profile in S3 is what
**     makes a service exist for every node).
*/
#ifndef PROFEFS_STORE_S3_INT_H
#define PROFEFS_STORE_S3_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "s3_cache.h"

/* Longest key S3 accepts (bytes). */
#define S3_KEY_MAX 1024

/* Most services made empty (mkdir) that one node keeps in memory. */
#define S3_ADDED_MAX 1024

typedef struct s3_pool s3_pool;

typedef struct store_s3 {
  char *base;          /* bucket URL, no trailing '/' */
  int vhost;           /* virtual-hosted: the bucket root is base + "/" */
  char *endpoint;      /* what error messages name */
  char *bucket;
  char *prefix;        /* "" or "dir/" */
  char *sigv4;         /* "aws:amz:REGION:s3" */
  char *userpwd;       /* "ACCESS:SECRET" */
  char *token_hdr;     /* "x-amz-security-token: ..." or NULL */
  long timeout_ms;
  int read_only;
  size_t max_inflate;
  budget *budget;      /* merges' fetched objects are taken from it; may be NULL */
  s3_pool *pool;
  s3_cache *cache;     /* NULL: none */
  pthread_mutex_t mu;  /* guards what follows */
  uint64_t writes;     /* own successful ingests, deletes, mkdirs */
  char **added;        /* services made by add_service */
  size_t nadded;
  int64_t ingests;
  uint64_t unread[16]; /* hashes of unreadable keys already logged */
  size_t nunread;      /* how many were logged (the ring's next slot) */
  int64_t rollups;       /* rollup objects and their bytes at the last */
  int64_t rollup_bytes;  /* upkeep pass; -1 before one */
  int64_t next_upkeep;   /* retention runs that pass from then on */
  int64_t lists;         /* ListObjectsV2 requests sent */
  int64_t superseded_grace; /* seconds (s3_rollup.c); 600 but in tests */
} store_s3;

/* ---- s3_http.c ------------------------------------------------------------ */

s3_pool *store_s3_pool_new(void);
void store_s3_pool_free(s3_pool *p);

typedef struct s3_resp {
  long status;
  char *body;              /* malloc'd, NUL-terminated, may be "" */
  size_t len;
  int64_t content_length;  /* of a HEAD / GET answer; -1 unknown */
} s3_resp;

void store_s3_resp_clear(s3_resp *r);

/* Sends one signed request: method on key (NULL: the bucket itself) with
** the canonical query (sorted, encoded; may be NULL), body (PUT) and extra
** headers ("name: value", NULL-terminated list; may be NULL).
** Retries with backoff when no answer came, on 5xx and on SlowDown.
** STORE_OK with *out filled whenever S3 answered (any status); else
** STORE_UNAVAILABLE naming the endpoint and the reason; STORE_TOOBIG for an
** answer over max_len. */
store_rc store_s3_request(store_s3 *s, const char *method, const char *key,
                          const char *query, const void *body, size_t len,
                          const char *const *headers, size_t max_len,
                          s3_resp *out, char *err);

/* The store_rc of a non-2xx answer to `what`, with S3's code and message in
** err: 404 STORE_NOTFOUND, 5xx, 429 and SlowDown STORE_UNAVAILABLE (503
** with Retry-After over HTTP), else STORE_IO. */
store_rc store_s3_status_rc(store_s3 *s, const char *what, const s3_resp *r,
                            char *err);

/* GETs keys[0..n) with up to `inflight` requests at once and calls
** fn(i, body, len, arg) for each answer in key order (on the calling
** thread, one at a time), holding at most `inflight` answers, whose
** buffers are taken from s->budget (STORE_BUSY when it has no room).  fn returns STORE_OK to go on.  The first
** failure (fn's, or a key's) stops everything and is returned. */
typedef store_rc (*s3_fetch_fn)(size_t i, const void *body, size_t len,
                                void *arg, char *err);
store_rc store_s3_fetch_many(store_s3 *s, const char *const *keys, size_t n,
                             size_t inflight, size_t max_len, s3_fetch_fn fn,
                             void *arg, char *err);

/* store_s3_fetch_many through the cache (s3_obj.c): keys it holds are read
** from there and fetched ones kept; fn still sees every key in order.  Only
** for keys a listing just showed (a deleted key must not be served). */
store_rc store_s3_fetch_cached(store_s3 *s, const char *const *keys, size_t n,
                               size_t inflight, size_t max_len, s3_fetch_fn fn,
                               void *arg, char *err);

/* Appends s percent-encoded as SigV4 wants (unreserved kept; '/' kept when
** keep_slash) to buf; 0, or -1 when out of memory. */
typedef struct s3_buf {
  char *p;
  size_t len, cap;
} s3_buf;
int store_s3_buf_add(s3_buf *b, const char *s, size_t n);
int store_s3_buf_enc(s3_buf *b, const char *s, int keep_slash);

/* ---- s3_xml.c -------------------------------------------------------------- */

typedef struct s3_list {
  char **keys;          /* Contents/Key, in order */
  int64_t *sizes;       /* Contents/Size */
  int64_t *mtimes;      /* Contents/LastModified, unix seconds; -1 unknown */
  size_t nkeys;
  char **prefixes;      /* CommonPrefixes/Prefix */
  size_t nprefixes;
  int truncated;
  char *next_token;     /* NextContinuationToken, or NULL */
} s3_list;

void store_s3_list_clear(s3_list *l);

/* Parses a ListObjectsV2 answer and appends to *l; -1 on malformed XML or
** out of memory. */
int store_s3_xml_list(const char *xml, size_t len, s3_list *l);

/* Code and Message of an S3 error answer into code/msg (may be ""). */
void store_s3_xml_error(const char *xml, size_t len, char *code,
                        size_t code_cap, char *msg, size_t msg_cap);

/* ---- s3_key.c -------------------------------------------------------------- */

/* profefe's number of type t (cpu 1 ... other 127, trace 128). */
int store_s3_type_num(meta_type t);

/* The key (without the store's prefix) of a profile: "P0.<service>/<num>/
** <digest>[,<labels raw>]"; malloc'd, NULL when out of memory.  labels is
** canonical; written raw (unescaped) as profefe does. */
char *store_s3_key(const char *service, meta_type type, const char *digest,
                   const char *labels);

/* "P0.<service>/<num>/" (malloc'd). */
char *store_s3_key_dir(const char *service, meta_type type);

/* Parses a key (without the store's prefix) into m (id = key, service,
** type, labels canonical, created_at from the digest, size -1).
** 0, or -1 when it is not a profile key of profefe's layout. */
int store_s3_key_parse(const char *key, store_meta *m);

/* The digest of a profile: created_at's seconds, then the first 8 bytes of
** the SHA-256 of (bytes, service, type, labels, created_at), so the same
** profile ingested twice gets the same key.  0, or -1 (out untouched) when
** OpenSSL fails (out of memory). */
int store_s3_digest(int64_t created_at, const char *service, meta_type type,
                     const char *labels, const void *data, size_t len,
                     char out[META_ID_LEN + 1]);

/* store_s3_key_parse, and when key (listed under "P0.") is not one this
** store can read, a line on stderr the first time it is seen (a ring of
** the last 16 such keys), so a foreign key is skipped, not fatal. */
int store_s3_key_read(store_s3 *s, const char *key, store_meta *m);

/* The 20-character xid for second t with the given 8 trailing bytes set to
** zero (a lower bound of every digest of second t). */
void store_s3_digest_floor(int64_t t, char out[META_ID_LEN + 1]);

/* 1 when id can be a key of this layout (shape only). */
int store_s3_id_valid(const char *id);

/* ---- s3.c / s3_obj.c: the operations ------------------------------------------ */

/* Lists every key under prefix (after start_after when not NULL), calling
** fn(key, size, arg) in key order; fn returns 1 to stop early, 0 to go on. */
store_rc store_s3_list(store_s3 *s, const char *prefix, const char *start_after,
                       int (*fn)(const char *key, int64_t size, void *arg),
                       void *arg, char *err);

/* One listed object: key without the store's prefix (or, with a
** delimiter, a common prefix: size and mtime -1), size, LastModified. */
typedef struct s3_obj {
  const char *key;
  int64_t size;
  int64_t mtime; /* unix seconds; -1 when S3 did not say */
} s3_obj;

/* store_s3_list with a delimiter (may be NULL), first_max keys in the
** first page (more in each next one: a list that stops early costs one
** small page) and each object's LastModified. */
store_rc store_s3_list_objs(store_s3 *s, const char *prefix,
                            const char *start_after, const char *delim,
                            int first_max,
                            int (*fn)(const s3_obj *o, void *arg), void *arg,
                            char *err);

void store_s3_count_write(store_s3 *s, int ingest);

store_rc store_s3_ingest(void *impl, const char *service, meta_type type,
                         const char *labels, int64_t created_at_hint,
                         const void *data, size_t len, store_meta *out,
                         char *err);
store_rc store_s3_get(void *impl, const char *id, store_meta *meta, void **data,
                      size_t *len, char *err);
store_rc store_s3_stat(void *impl, const char *id, store_meta *meta, char *err);
store_rc store_s3_del(void *impl, const char *id, char *err);
/* Merges the objects keys[0..n) in that order; cached != 0 lets the cache
** serve them (only for keys known to exist now: a listing showed them). */
store_rc store_s3_merge_keys(store_s3 *s, const char *const *keys, size_t n,
                             int cached, void **out, size_t *len, char *err);
store_rc store_s3_merge_ids(void *impl, const char *const *ids, size_t n,
                            void **out, size_t *len, char *err);

/* ---- s3_rollup.c ----------------------------------------------------------- */

/* The merge of q, whose profiles l lists (in key order, l->n > 0): valid
** rollups of q's filter stand in for the profiles of their slots, and the
** finished slots of the range that have none get one built from the rows
** fetched.  The bytes are those of merging l's profiles in order.  Fails
** as store_s3_merge_keys; a rollup that cannot be stored is only skipped. */
store_rc store_s3_rollup_merge(store_s3 *s, const store_query *q,
                               const store_meta_list *l, void **out,
                               size_t *len, char *err);

/* One pass over every rollup of the store: deletes those of slots that
** ended before cutoff (0: none) and the old versions of a slot once the
** newest is 10 minutes old, and counts what stays into s->rollups and
** s->rollup_bytes.  A failed listing is returned; a failed delete only
** leaves that object to the next pass. */
store_rc store_s3_rollup_upkeep(store_s3 *s, int64_t cutoff, char *err);

/* Drops the rollups of the slots of m (every level, every filter that m's
** labels match): they hold a profile that was just deleted.  Best effort:
** what S3 refuses stays, stale, and is never used (merges check rollups
** against their listing). */
void store_s3_rollup_forget(store_s3 *s, const store_meta *m);

#endif /* PROFEFS_STORE_S3_INT_H */
