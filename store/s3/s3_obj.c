/*
** s3_obj.c — the S3 backend's operations on profiles by id (the id is the
** object key, relative to the store's prefix): ingest, get, stat, delete,
** and merges of a list of keys.
**
** Ingest answers only after S3 answered the PUT (durable).  It gets bytes
** that store.c has already checked, inside the memory budget, and a
** created_at already resolved from them: nothing here inflates them again
** (a second, unbudgeted inflate doubled an S3 node's peak).  Its metadata
** (x-amz-meta-service, -type, -labels, -created_at) is what profefe writes;
** we never read it back, since the key says everything.  A value that is
** not printable ASCII (a UTF-8 service name) is sent RFC 2047-encoded, as
** AWS itself returns such values: raw, AWS refuses the request.
**
** The PUT carries If-None-Match: *, so an object is never replaced: when
** the key exists (412), the stored bytes are read back and compared.  The
** same bytes are a repeat (a retry, another node) and answer with the
** key; other bytes under the same key (a crafted collision, or a foreign
** writer) are refused and the stored object stays as it was.
**
** Merges fetch up to MERGE_INFLIGHT objects at once (curl multi) and add
** each to the merge pipeline (store/mergepipe.h: a second thread decodes)
** in key (= time) order as soon as it and the ones before it arrived, so
** memory holds the accumulator, at most MERGE_INFLIGHT fetched profiles and
** the pipeline's slots, and the same query merges to the same bytes on
** every node.
**
** With a cache (--cache), objects read and written are kept on local disk;
** it serves a merge of a query (whose listing just showed the keys) and a
** get once a HEAD showed the key still exists, never a deleted key.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "mergepipe.h"
#include "s3_int.h"

#define MERGE_INFLIGHT 16

/* "x-amz-meta-NAME: VALUE" (malloc'd), NULL when out of memory; a VALUE
** with bytes outside printable ASCII as "=?UTF-8?B?<base64>?=". */
static char *header(const char *name, const char *value) {
  size_t n = strlen(value);
  unsigned char *b64 = NULL;
  char *h = NULL;
  int plain = 1;
  for (const unsigned char *p = (const unsigned char *)value; *p; p++)
    plain &= *p >= 0x20 && *p < 0x7f;
  if (plain) {
    if (asprintf(&h, "x-amz-meta-%s: %s", name, value) < 0) h = NULL;
    return h;
  }
  if ((b64 = malloc(4 * (n / 3 + 1) + 1)) == NULL) return NULL;
  EVP_EncodeBlock(b64, (const unsigned char *)value, (int)n);
  if (asprintf(&h, "x-amz-meta-%s: =?UTF-8?B?%s?=", name, b64) < 0) h = NULL;
  free(b64);
  return h;
}

/* After a 412 to the conditional PUT of key: STORE_OK when the object
** there holds exactly data, else why not (other bytes: STORE_INVALID). */
static store_rc same_stored(store_s3 *s, const char *key, const void *data,
                            size_t len, char *err) {
  s3_resp r = {0};
  store_rc rc = store_s3_request(s, "GET", key, NULL, NULL, 0, NULL, len + 1,
                                 &r, err);
  if (rc == STORE_TOOBIG || (rc == STORE_OK && r.status == 200 &&
                             (r.len != len || memcmp(r.body, data, len) != 0)))
    rc = store_seterr(err, STORE_INVALID,
                      "another profile is already stored under key %s%s: "
                      "not overwritten", s->prefix, key);
  else if (rc == STORE_OK && r.status != 200)
    rc = store_s3_status_rc(s, "reading back the stored profile", &r, err);
  store_s3_resp_clear(&r);
  return rc;
}

/* 1 when key parses back to the canonical labels it was made of. */
static int key_reads_back(const char *key, const char *labels) {
  store_meta m = {0};
  int ok;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  if (store_s3_key_parse(key, &m) != 0) return 0;
  ok = strcmp(m.labels, labels) == 0;
  store_meta_clear(&m);
  return ok;
}

store_rc store_s3_ingest(void *impl, const char *service, meta_type type,
                         const char *labels, int64_t created_at_hint,
                         const void *data, size_t len, store_meta *out,
                         char *err) {
  store_s3 *s = impl;
  char digest[META_ID_LEN + 1], when[META_TIME_MAX];
  char *key = NULL, *h[6] = {0};
  int64_t created_at = created_at_hint > 0 ? created_at_hint : (int64_t)time(NULL);
  store_meta m = {0};
  s3_resp r = {0};
  store_rc rc;

  if (store_s3_digest(created_at, service, type, labels, data, len, digest) != 0 ||
      (key = store_s3_key(service, type, digest, labels)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  /* Only what reads back as the same profile may be stored: a raw ',',
  ** '=', '/' or '%' in a label would list under other labels or not at all,
  ** and a control character would make an id no client can send back. */
  if (!key_reads_back(key, labels)) {
    rc = store_seterr(err, STORE_INVALID,
                      "labels \"%.64s\" cannot be written in profefe's S3 key "
                      "(',', '=', '/', '%%' or a control character in a key or value)",
                      labels);
    goto out;
  }
  if (strlen(s->prefix) + strlen(key) > S3_KEY_MAX) {
    rc = store_seterr(err, STORE_INVALID,
                      "service and labels too long for an S3 key (%zu bytes, at most %d)",
                      strlen(s->prefix) + strlen(key), S3_KEY_MAX);
    goto out;
  }
  meta_time_format(created_at, when);
  /* canonical labels: printable ASCII only, safe in a header */
  /* no labels: no header (curl would sign an empty one it does not send) */
  if ((h[0] = strdup("If-None-Match: *")) == NULL ||
      (h[1] = header("service", service)) == NULL ||
      (h[2] = header("type", meta_type_name(type))) == NULL ||
      (h[3] = header("created_at", when)) == NULL ||
      (labels[0] && (h[4] = header("labels", labels)) == NULL)) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  rc = store_s3_request(s, "PUT", key, NULL, data, len, (const char *const *)h,
                        1 << 16, &r, err);
  /* 412: the key is there; 409: AWS saw a concurrent conditional PUT of it */
  if (rc == STORE_OK && (r.status == 412 || r.status == 409))
    rc = same_stored(s, key, data, len, err);
  else if (rc == STORE_OK && r.status != 200)
    rc = store_s3_status_rc(s, "storing the profile", &r, err);
  if (rc != STORE_OK) goto out;
  store_s3_count_write(s, 1);
  store_s3_cache_put(s->cache, key, data, len);
  if (out != NULL) {
    if (store_s3_key_parse(key, &m) != 0) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto out;
    }
    m.size = (int64_t)len;
    /* A 412 (or 409) says the key, so this very profile, was stored
    ** already, by whoever: not the caller's own (store.h).  A retried PUT
    ** whose first try landed unanswered reads so too: kept, never lost. */
    m.ingested = r.status == 200 ? STORE_INGESTED_NEW : STORE_INGESTED_EXISTING;
    *out = m;
  }
out:
  for (int i = 0; i < 5; i++) free(h[i]);
  free(key);
  store_s3_resp_clear(&r);
  return rc;
}

static store_rc parse_id(const char *id, store_meta *m, char *err) {
  if (store_s3_key_parse(id, m) != 0)
    return store_seterr(err, STORE_NOTFOUND, "profile %s not found", id);
  return STORE_OK;
}

/* GET of one object: its bytes (malloc'd) or why not. */
static store_rc fetch(store_s3 *s, const char *id, void **data, size_t *len,
                      char *err) {
  s3_resp r = {0};
  store_rc rc = store_s3_request(s, "GET", id, NULL, NULL, 0, NULL, s->max_inflate, &r, err);
  if (rc == STORE_TOOBIG) /* stored, so not the client's fault: 500 */
    rc = store_seterr(err, STORE_IO, "stored profile %s is over %zu bytes "
                      "(--max-inflate)", id, s->max_inflate);
  if (rc == STORE_OK && r.status != 200) {
    char what[S3_KEY_MAX + 16];
    snprintf(what, sizeof what, "profile %s", id);
    rc = store_s3_status_rc(s, what, &r, err);
  }
  if (rc != STORE_OK) {
    store_s3_resp_clear(&r);
    return rc;
  }
  store_s3_cache_put(s->cache, id, r.body, r.len);
  *data = r.body;
  *len = r.len;
  return STORE_OK;
}

static store_rc head(store_s3 *s, const char *id, int64_t *size, char *err);

store_rc store_s3_get(void *impl, const char *id, store_meta *meta, void **data,
                      size_t *len, char *err) {
  store_s3 *s = impl;
  store_meta m = {0};
  int64_t size;
  void *d = NULL;
  size_t n = 0;
  store_rc rc = parse_id(id, &m, err);
  if (rc != STORE_OK) return rc;
  /* a cached object only once S3 says its key still exists */
  if (store_s3_cache_has(s->cache, id)) {
    rc = head(s, id, &size, err);
    if (rc == STORE_NOTFOUND) store_s3_cache_del(s->cache, id);
    if (rc == STORE_OK && !store_s3_cache_get(s->cache, id, &d, &n)) d = NULL;
    if (d != NULL && size >= 0 && (uint64_t)size != n) { /* not S3's object */
      free(d);
      d = NULL;
    }
  }
  if (rc == STORE_OK && d == NULL) rc = fetch(s, id, &d, &n, err);
  if (rc != STORE_OK) {
    store_meta_clear(&m);
    return rc;
  }
  m.size = (int64_t)n;
  *data = d;
  *len = n;
  if (meta != NULL)
    *meta = m;
  else
    store_meta_clear(&m);
  return STORE_OK;
}

/* HEAD id: STORE_OK with its size, STORE_NOTFOUND, or why not. */
static store_rc head(store_s3 *s, const char *id, int64_t *size, char *err) {
  s3_resp r = {0};
  store_rc rc = store_s3_request(s, "HEAD", id, NULL, NULL, 0, NULL, 1 << 16, &r, err);
  if (rc == STORE_OK && r.status != 200) {
    char what[S3_KEY_MAX + 16];
    snprintf(what, sizeof what, "profile %s", id);
    rc = store_s3_status_rc(s, what, &r, err);
  }
  if (rc == STORE_OK) *size = r.content_length;
  store_s3_resp_clear(&r);
  return rc;
}

store_rc store_s3_stat(void *impl, const char *id, store_meta *meta, char *err) {
  store_meta m = {0};
  int64_t size = -1;
  store_rc rc = parse_id(id, &m, err);
  if (rc == STORE_OK) rc = head(impl, id, &size, err);
  if (rc != STORE_OK) {
    store_meta_clear(&m);
    return rc;
  }
  m.size = size;
  *meta = m;
  return STORE_OK;
}

store_rc store_s3_del(void *impl, const char *id, char *err) {
  store_s3 *s = impl;
  store_meta m = {0};
  int64_t size;
  s3_resp r = {0};
  store_rc rc = parse_id(id, &m, err);
  /* S3 answers 204 for a key that is not there: ask first, for a 404 */
  if (rc == STORE_OK) rc = head(s, id, &size, err);
  if (rc == STORE_OK)
    rc = store_s3_request(s, "DELETE", id, NULL, NULL, 0, NULL, 1 << 16, &r, err);
  if (rc == STORE_OK && r.status / 100 != 2)
    rc = store_s3_status_rc(s, "deleting the profile", &r, err);
  if (rc == STORE_OK) {
    store_s3_count_write(s, 0);
    /* the rollups of its slots hold it: stale from now on, gone */
    store_s3_rollup_forget(s, &m);
  }
  if (rc == STORE_OK || rc == STORE_NOTFOUND) store_s3_cache_del(s->cache, id);
  store_meta_clear(&m);
  store_s3_resp_clear(&r);
  return rc;
}

/* ---- merges ------------------------------------------------------------------------ */

/* ---- fetching through the cache ------------------------------------------------ */

typedef struct cached_ctx {
  store_s3 *s;
  const char *const *keys;
  size_t *miss;        /* the index in keys of each key fetched */
  size_t next;         /* fn has seen keys[0..next) */
  s3_fetch_fn fn;
  void *arg;
} cached_ctx;

/* Hands fn the cached keys before keys[end] (fetching one the cache lost
** meanwhile). */
static store_rc deliver_cached(cached_ctx *c, size_t end, char *err) {
  store_rc rc = STORE_OK;
  while (rc == STORE_OK && c->next < end) {
    void *d = NULL;
    size_t n = 0;
    if (!store_s3_cache_get(c->s->cache, c->keys[c->next], &d, &n) &&
        (rc = fetch(c->s, c->keys[c->next], &d, &n, err)) != STORE_OK)
      break;
    rc = c->fn(c->next, d, n, c->arg, err);
    c->next++;
    free(d);
  }
  return rc;
}

static store_rc on_fetched(size_t j, const void *body, size_t len, void *arg,
                           char *err) {
  cached_ctx *c = arg;
  size_t i = c->miss[j];
  store_rc rc = deliver_cached(c, i, err);
  if (rc != STORE_OK) return rc;
  store_s3_cache_put(c->s->cache, c->keys[i], body, len);
  c->next = i + 1;
  return c->fn(i, body, len, c->arg, err);
}

store_rc store_s3_fetch_cached(store_s3 *s, const char *const *keys, size_t n,
                               size_t inflight, size_t max_len, s3_fetch_fn fn,
                               void *arg, char *err) {
  cached_ctx c = {.s = s, .keys = keys, .fn = fn, .arg = arg};
  const char **fetch_keys = NULL;
  size_t nfetch = 0;
  store_rc rc = STORE_OK;

  if (s->cache == NULL)
    return store_s3_fetch_many(s, keys, n, inflight, max_len, fn, arg, err);
  if ((c.miss = malloc((n ? n : 1) * sizeof *c.miss)) == NULL ||
      (fetch_keys = malloc((n ? n : 1) * sizeof *fetch_keys)) == NULL) {
    free(c.miss);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  for (size_t i = 0; i < n; i++) {
    if (store_s3_cache_has(s->cache, keys[i])) continue;
    c.miss[nfetch] = i;
    fetch_keys[nfetch++] = keys[i];
  }
  if (nfetch > 0)
    rc = store_s3_fetch_many(s, fetch_keys, nfetch, inflight, max_len,
                             on_fetched, &c, err);
  if (rc == STORE_OK) rc = deliver_cached(&c, n, err);
  free(fetch_keys);
  free(c.miss);
  return rc;
}

/* ---- merges ------------------------------------------------------------------------ */

typedef struct merge_ctx {
  store_mergepipe *pipe;
  const char *const *keys;
  int failed; /* the pipe failed: it only accepts store_mergepipe_free */
} merge_ctx;

static store_rc push_one(size_t i, const void *body, size_t len, void *arg,
                         char *err) {
  merge_ctx *c = arg;
  store_rc rc = store_mergepipe_push(c->pipe, "stored profile", c->keys[i],
                                     body, len, err);
  c->failed = rc != STORE_OK;
  return rc;
}

/* The fetches run on this thread, the merge on it and (store/mergepipe.c)
** on a second one that decodes the next profiles. */
store_rc store_s3_merge_keys(store_s3 *s, const char *const *keys, size_t n,
                             int cached, void **out, size_t *len, char *err) {
  merge_ctx c = {.keys = keys};
  store_rc rc = store_mergepipe_new(s->max_inflate, 2, &c.pipe, err);
  if (rc != STORE_OK) return rc;
  rc = (cached ? store_s3_fetch_cached : store_s3_fetch_many)(
      s, keys, n, MERGE_INFLIGHT, s->max_inflate, push_one, &c, err);
  if (rc != STORE_OK && !c.failed) {
    /* an earlier profile's failure comes first, as when merging one by one */
    store_rc d = store_mergepipe_drain(c.pipe, err);
    if (d != STORE_OK) rc = d;
  } else if (rc == STORE_OK) {
    rc = store_mergepipe_finish(c.pipe, out, len, err);
  }
  store_mergepipe_free(c.pipe);
  return rc;
}

store_rc store_s3_merge_ids(void *impl, const char *const *ids, size_t n,
                            void **out, size_t *len, char *err) {
  store_rc rc = STORE_OK;
  int type = -1;
  for (size_t i = 0; rc == STORE_OK && i < n; i++) {
    store_meta m = {0};
    if ((rc = parse_id(ids[i], &m, err)) != STORE_OK) break;
    if (type >= 0 && (int)m.type != type)
      rc = store_seterr(err, STORE_INVALID, "profiles of different types cannot be merged");
    else if (m.type == META_TRACE)
      rc = store_seterr(err, STORE_UNSUPPORTED, "traces cannot be merged");
    type = (int)m.type;
    store_meta_clear(&m);
  }
  if (rc != STORE_OK) return rc;
  /* named keys may have been deleted since: S3, not the cache */
  return store_s3_merge_keys(impl, ids, n, 0, out, len, err);
}
