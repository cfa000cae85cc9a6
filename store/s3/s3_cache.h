/*
** s3_cache.h — private to store/s3/: a local on-disk cache of S3 objects
** (`serve --cache DIR --cache-size SIZE`), keyed by object key.
**
** Stored objects never change, so an entry never needs invalidating; but
** a key deleted (by any node) must not be served from here, so the backend
** only reads the cache for keys it just saw in a listing (merges of a
** query) or confirmed with a HEAD (get).  Each file carries its key, length
** and CRC-32: a truncated, corrupt or foreign file is a miss (and removed),
** never served.  The files take at most max_bytes together (headers
** included); the least recently used go first.  One process per directory:
** it is locked (flock) while open, so a second node is refused.
**
** Every function takes a NULL cache as "no cache" (misses, does nothing),
** so callers need no branches.  Safe to use from many threads at once.
*/
#ifndef PROFEFS_STORE_S3_CACHE_H
#define PROFEFS_STORE_S3_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct s3_cache s3_cache;

/* Opens (creating it when missing) the cache in directory dir for the
** objects of scope (the bucket and prefix: keys are taken within it),
** bounded by max_bytes (> 0), and takes its lock; files from an earlier run
** are kept (oldest first out).  STORE_IO with a reason naming dir when it cannot be
** made or read, or another process holds it (naming that pid). */
store_rc store_s3_cache_open(const char *dir, const char *scope,
                             uint64_t max_bytes, s3_cache **out, char *err);

/* Closes c (the files stay); accepts NULL. */
void store_s3_cache_close(s3_cache *c);

/* 1 when key is in the index (no file read); 0 counts as a miss. */
int store_s3_cache_has(s3_cache *c, const char *key);

/* On a hit 1 with the object in *data (malloc'd, caller frees) and *len,
** counted as a hit; else 0 (counted as a miss; a bad file is removed and
** logged), *data and *len unchanged. */
int store_s3_cache_get(s3_cache *c, const char *key, void **data, size_t *len);

/* Keeps a copy of data under key, evicting the least recently used files
** to stay within the bound.  A cache may always forget: failures (disk
** full, an object over a quarter of the bound) only skip it. */
void store_s3_cache_put(s3_cache *c, const char *key, const void *data,
                        size_t len);

/* Forgets key. */
void store_s3_cache_del(s3_cache *c, const char *key);

typedef struct s3_cache_stats {
  int64_t hits, misses, bytes;
} s3_cache_stats;

/* Counters since open and bytes held now; all -1 for a NULL cache. */
void store_s3_cache_stats(s3_cache *c, s3_cache_stats *out);

#endif /* PROFEFS_STORE_S3_CACHE_H */
