/*
** s3.c — the S3 backend: opening (URL, endpoint, credentials, region, the
** start-up check), the op table, and what works on listings: find,
** services, label sets, merges of a query, retention.
**
** Lists seek: keys of one service/type sort by their digest, whose first
** 4 bytes are created_at, so a query lists from start-after = the digest
** prefix of `from` and stops at the first key after `to`.
**
** Retention deletes keys older than the cutoff one by one; DELETE of a key
** that another node already deleted answers 204 too, so any number of
** nodes may run it at once.  It lists only what it may delete: the types a
** service has (a delimiter list), and per type the keys from the oldest up
** to the first younger than the cutoff.  A bucket lifecycle rule is the
** alternative (README).  The rollups' upkeep pass (s3_rollup.c: expired
** slots, superseded versions, the count) runs at most hourly per node.
**
** The generation (store.h) is the own-write count plus a one-second time
** bucket: other nodes' writes cannot be seen without asking S3, so caches
** of derived data live at most a second.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "s3_int.h"

#define LIST_MAX (16u << 20)  /* one ListObjectsV2 page is far smaller */
#define PAGE_MAX 1000         /* keys in a ListObjectsV2 page, at most */
#define PAGE_FIRST 100        /* ... in the first page of a time range */
#define RETAIN_FIRST 20       /* ... in the first page of a retention list */
#define ROLLUP_UPKEEP_EVERY 3600 /* seconds between a node's rollup passes */

static char *env_first(const char *a, const char *b) {
  const char *v = getenv(a);
  if ((v == NULL || v[0] == '\0') && b != NULL) v = getenv(b);
  return v != NULL && v[0] != '\0' ? (char *)v : NULL;
}

void store_s3_count_write(store_s3 *s, int ingest) {
  pthread_mutex_lock(&s->mu);
  s->writes++;
  if (ingest) s->ingests++;
  pthread_mutex_unlock(&s->mu);
}

static uint64_t s3_generation(void *impl) {
  store_s3 *s = impl;
  uint64_t w;
  pthread_mutex_lock(&s->mu);
  w = s->writes;
  pthread_mutex_unlock(&s->mu);
  return ((uint64_t)time(NULL) << 24) ^ w;
}

static store_rc s3_stats(void *impl, store_stats *out) {
  store_s3 *s = impl;
  s3_cache_stats c;
  store_s3_cache_stats(s->cache, &c);
  pthread_mutex_lock(&s->mu);
  *out = (store_stats){.profiles = -1, .bytes = -1, .disk_bytes = -1,
                       .ingests = s->ingests, .commits = -1,
                       .cache_hits = c.hits, .cache_misses = c.misses,
                       .cache_bytes = c.bytes, .rollups = s->rollups,
                       .rollup_bytes = s->rollup_bytes, .lists = s->lists,
                       .disk_avail = -1};
  pthread_mutex_unlock(&s->mu);
  return STORE_OK;
}

/* ---- listing ------------------------------------------------------------------- */

/* The canonical ListObjectsV2 query (parameters sorted by name). */
static char *list_query(const char *token, const char *delim,
                        const char *prefix, const char *after, int max_keys) {
  s3_buf b = {0};
  char mk[80];
  int bad = 0;
  if (token != NULL)
    bad = store_s3_buf_add(&b, "continuation-token=", 19) ||
          store_s3_buf_enc(&b, token, 0) || store_s3_buf_add(&b, "&", 1);
  if (delim != NULL)
    bad = bad || store_s3_buf_add(&b, "delimiter=", 10) ||
          store_s3_buf_enc(&b, delim, 0) || store_s3_buf_add(&b, "&", 1);
  /* url: a key with bytes XML cannot carry still lists (s3_xml.c) */
  snprintf(mk, sizeof mk, "encoding-type=url&list-type=2&max-keys=%d&prefix=",
           max_keys);
  bad = bad || store_s3_buf_add(&b, mk, strlen(mk)) ||
        store_s3_buf_enc(&b, prefix, 0);
  if (after != NULL && token == NULL)
    bad = bad || store_s3_buf_add(&b, "&start-after=", 13) ||
          store_s3_buf_enc(&b, after, 0);
  if (bad) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* One page after token (NULL: the first) into *l (cleared first). */
static store_rc list_page(store_s3 *s, const char *token, const char *delim,
                          const char *full_prefix, const char *full_after,
                          int max_keys, s3_list *l, char *err) {
  char *q = list_query(token, delim, full_prefix, full_after, max_keys);
  s3_resp r = {0};
  store_rc rc;
  if (q == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_lock(&s->mu);
  s->lists++;
  pthread_mutex_unlock(&s->mu);
  rc = store_s3_request(s, "GET", NULL, q, NULL, 0, NULL, LIST_MAX, &r, err);
  free(q);
  if (rc != STORE_OK) return rc;
  if (r.status != 200) {
    rc = store_s3_status_rc(s, "listing the bucket", &r, err);
    if (rc == STORE_NOTFOUND) rc = STORE_IO;
  } else {
    store_s3_list_clear(l);
    if (store_s3_xml_list(r.body, r.len, l) != 0)
      rc = store_seterr(err, STORE_IO, "listing the bucket: malformed answer");
  }
  store_s3_resp_clear(&r);
  return rc;
}

/* Full key (with the store's prefix) of k, malloc'd. */
static char *full(store_s3 *s, const char *k) {
  char *f = NULL;
  if (asprintf(&f, "%s%s", s->prefix, k) < 0) return NULL;
  return f;
}

typedef int (*list_fn)(const char *key, int64_t size, void *arg);
typedef int (*obj_fn)(const s3_obj *o, void *arg);

/* Lists keys (or, with delim, common prefixes: size -1) under prefix,
** first_max keys in the first page, four times more in each next one up
** to S3's 1000: a query of a short range seeks into a long history, and
** the keys a page holds beyond its end cost radosgw about 20 us each. */
static store_rc list_objs(store_s3 *s, const char *prefix, const char *after,
                          const char *delim, int first_max, obj_fn fn,
                          void *arg, char *err) {
  char *fp = full(s, prefix), *fa = after ? full(s, after) : NULL;
  size_t plen = strlen(s->prefix);
  s3_list l = {0};
  store_rc rc = STORE_OK;
  int stop = 0, max_keys = first_max;
  if (fp == NULL || (after != NULL && fa == NULL)) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  do {
    char *tok = l.next_token ? strdup(l.next_token) : NULL;
    if (l.next_token != NULL && tok == NULL) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      break;
    }
    free(l.next_token);
    l.next_token = NULL;
    rc = list_page(s, tok, delim, fp, fa, max_keys, &l, err);
    free(tok);
    max_keys = max_keys < PAGE_MAX / 4 ? 4 * max_keys : PAGE_MAX;
    if (rc != STORE_OK) break;
    for (size_t i = 0; !stop && i < l.nkeys; i++)
      if (strlen(l.keys[i]) >= plen)
        stop = fn(&(s3_obj){l.keys[i] + plen, l.sizes[i], l.mtimes[i]}, arg);
    for (size_t i = 0; !stop && i < l.nprefixes; i++)
      if (strlen(l.prefixes[i]) >= plen)
        stop = fn(&(s3_obj){l.prefixes[i] + plen, -1, -1}, arg);
  } while (!stop && l.truncated && l.next_token != NULL);
out:
  store_s3_list_clear(&l);
  free(fp);
  free(fa);
  return rc;
}

store_rc store_s3_list_objs(store_s3 *s, const char *prefix,
                            const char *start_after, const char *delim,
                            int first_max, obj_fn fn, void *arg, char *err) {
  return list_objs(s, prefix, start_after, delim, first_max, fn, arg, err);
}

/* list_all's callers want the key and size only. */
typedef struct key_fn_ctx {
  list_fn fn;
  void *arg;
} key_fn_ctx;

static int key_fn(const s3_obj *o, void *arg) {
  key_fn_ctx *c = arg;
  return c->fn(o->key, o->size, c->arg);
}

static store_rc list_all(store_s3 *s, const char *prefix, const char *after,
                         const char *delim, int first_max, list_fn fn,
                         void *arg, char *err) {
  key_fn_ctx c = {fn, arg};
  return list_objs(s, prefix, after, delim, first_max, key_fn, &c, err);
}

store_rc store_s3_list(store_s3 *s, const char *prefix, const char *start_after,
                       list_fn fn, void *arg, char *err) {
  return list_all(s, prefix, start_after, NULL, PAGE_MAX, fn, arg, err);
}

/* ---- keys this store cannot read ------------------------------------------------- */

/* FNV-1a 64 of s: only to remember which keys were logged. */
static uint64_t key_hash(const char *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  return h;
}

/* One line on stderr for key, unless it is among the last 16 logged:
** every listing of its service meets it again. */
static void unreadable(store_s3 *s, const char *key, const char *why) {
  uint64_t h = key_hash(key);
  size_t n = sizeof s->unread / sizeof s->unread[0], seen = 0;
  s3_buf shown = {0};
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; i < n && i < s->nunread; i++) seen |= s->unread[i] == h;
  if (!seen) s->unread[s->nunread++ % n] = h;
  pthread_mutex_unlock(&s->mu);
  if (seen) return;
  /* shown encoded: the key may hold control characters */
  if (store_s3_buf_enc(&shown, key, 1) == 0)
    fprintf(stderr, "s3: skipping key \"%s%s\" in bucket %s: %s\n", s->prefix,
            shown.p ? shown.p : "", s->bucket, why);
  free(shown.p);
}

int store_s3_key_read(store_s3 *s, const char *key, store_meta *m) {
  if (store_s3_key_parse(key, m) == 0) return 0;
  if (strncmp(key, "P0.", 3) == 0)
    unreadable(s, key, "not a profile key profefs can read (profefe's layout, "
                       "no control characters)");
  return -1;
}

/* ---- find ---------------------------------------------------------------------- */

typedef struct find_ctx {
  store_s3 *s;
  const store_query *q;
  store_meta_list *out;
  size_t cap;
  int oom;
} find_ctx;

static int find_one(const char *key, int64_t size, void *arg) {
  find_ctx *f = arg;
  store_meta m = {0};
  if (store_s3_key_read(f->s, key, &m) != 0) return 0; /* not ours: skip */
  if (m.created_at > f->q->to) {
    store_meta_clear(&m);
    return 1; /* sorted by time: nothing after this matches */
  }
  if (m.created_at < f->q->from || strcmp(m.service, f->q->service) != 0 ||
      m.type != f->q->type || !meta_labels_match(f->q->labels, m.labels)) {
    store_meta_clear(&m);
    return 0;
  }
  m.size = size;
  if (f->out->n == f->cap) {
    size_t cap = f->cap ? 2 * f->cap : 64;
    store_meta *v = realloc(f->out->v, cap * sizeof *v);
    if (v == NULL) {
      store_meta_clear(&m);
      f->oom = 1;
      return 1;
    }
    f->out->v = v;
    f->cap = cap;
  }
  f->out->v[f->out->n++] = m;
  return f->q->limit > 0 && f->out->n >= (size_t)f->q->limit;
}

/* Keys of one second sort by the rest of the digest and then the labels,
** which is the order store.h promises (created_at, then id).  first_max:
** the keys of the first page (list_all). */
static store_rc find_keys(void *impl, const store_query *q, int first_max,
                          store_meta_list *out, char *err) {
  store_s3 *s = impl;
  char floor[META_ID_LEN + 1], *dir = store_s3_key_dir(q->service, q->type);
  char *after = NULL;
  store_meta_list l = {0};
  find_ctx f = {.s = s, .q = q, .out = &l};
  store_rc rc;
  if (dir == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  store_s3_digest_floor(q->from, floor);
  floor[META_ID_LEN - 1] = '\0'; /* 19 characters: below every key of `from` */
  if (asprintf(&after, "%s%s", dir, floor) < 0) after = NULL;
  if (after == NULL) {
    free(dir);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  if (q->limit > 0 && q->limit < first_max) first_max = (int)q->limit;
  rc = list_all(s, dir, after, NULL, first_max, find_one, &f, err);
  if (rc == STORE_OK && f.oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  if (rc == STORE_OK)
    *out = l;
  else
    store_meta_list_free(&l);
  free(dir);
  free(after);
  return rc;
}

/* A list (HTTP, FUSE) is often a short range in a long history. */
static store_rc s3_find(void *impl, const store_query *q, store_meta_list *out,
                        char *err) {
  return find_keys(impl, q, PAGE_FIRST, out, err);
}

/* Rollups (s3_rollup.c) stand in for the finished slots of the range.
** A merge lists every key of its range (rollups are checked against
** them), so full pages from the first: small ones would only add
** requests. */
static store_rc s3_merge(void *impl, const store_query *q, void **out,
                         size_t *len, size_t *count, char *err) {
  store_meta_list l = {0};
  store_rc rc = find_keys(impl, q, PAGE_MAX, &l, err);
  if (rc != STORE_OK) return rc;
  if (l.n == 0)
    rc = store_seterr(err, STORE_NOTFOUND, "no profiles found");
  else
    rc = store_s3_rollup_merge(impl, q, &l, out, len, err);
  if (rc == STORE_OK && count != NULL) *count = l.n;
  store_meta_list_free(&l);
  return rc;
}

typedef struct named_ctx {
  store_s3 *s;
  const char *digest;
  store_meta *m;
  int found;
} named_ctx;

static int named_one(const char *key, int64_t size, void *arg) {
  named_ctx *c = arg;
  store_meta m = {0};
  if (store_s3_key_read(c->s, key, &m) != 0) return 0;
  if (strcmp(m.id, c->digest) != 0) {
    store_meta_clear(&m);
    return 0;
  }
  m.size = size;
  *c->m = m;
  c->found = 1;
  return 1;
}

/* The key of a FUSE name: one list of the keys that start with the digest. */
static store_rc s3_stat_named(void *impl, const char *service, meta_type type,
                              const char *digest, store_meta *meta, char *err) {
  char *dir = store_s3_key_dir(service, type), *prefix = NULL;
  store_meta m = {0};
  named_ctx c = {.s = impl, .digest = digest, .m = &m};
  store_rc rc;
  if (dir != NULL && asprintf(&prefix, "%s%s", dir, digest) < 0) prefix = NULL;
  if (prefix == NULL) {
    free(dir);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  rc = store_s3_list(impl, prefix, NULL, named_one, &c, err);
  if (rc == STORE_OK && !c.found)
    rc = store_seterr(err, STORE_NOTFOUND, "profile %s not found", digest);
  if (rc == STORE_OK) *meta = m;
  free(dir);
  free(prefix);
  return rc;
}

/* ---- services and label sets ------------------------------------------------------- */

typedef struct names_ctx {
  store_s3 *s;     /* logs unreadable keys */
  char **v;
  size_t n, cap;
  int oom;
} names_ctx;

static int names_add(names_ctx *c, const char *s, size_t n) {
  char *d;
  if (c->n == c->cap) {
    size_t cap = c->cap ? 2 * c->cap : 32;
    char **v = realloc(c->v, cap * sizeof *v);
    if (v == NULL) return c->oom = 1;
    c->v = v;
    c->cap = cap;
  }
  if ((d = strndup(s, n)) == NULL) return c->oom = 1;
  c->v[c->n++] = d;
  return 0;
}

static int service_one(const char *prefix, int64_t size, void *arg) {
  names_ctx *c = arg;
  size_t n = strlen(prefix);
  char *name;
  int valid;
  (void)size;
  /* "P0.<service>/" */
  if (n < 5 || strncmp(prefix, "P0.", 3) != 0 || prefix[n - 1] != '/') return 0;
  if ((name = strndup(prefix + 3, n - 4)) == NULL) return c->oom = 1;
  valid = meta_service_valid(name);
  free(name);
  if (!valid) {
    unreadable(c->s, prefix, "not a service name");
    return 0;
  }
  return names_add(c, prefix + 3, n - 4);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static store_rc names_done(names_ctx *c, store_rc rc, char ***names, size_t *n,
                           char *err) {
  if (rc == STORE_OK && c->oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  if (rc != STORE_OK) {
    store_names_free(c->v, c->n);
    return rc;
  }
  if (c->n > 1) qsort(c->v, c->n, sizeof *c->v, cmp_str); /* v may be NULL */
  size_t w = 0;
  for (size_t i = 0; i < c->n; i++) {
    if (w > 0 && strcmp(c->v[w - 1], c->v[i]) == 0)
      free(c->v[i]);
    else
      c->v[w++] = c->v[i];
  }
  *names = c->v;
  *n = w;
  return STORE_OK;
}

static store_rc s3_services(void *impl, char ***names, size_t *n, char *err) {
  store_s3 *s = impl;
  names_ctx c = {.s = s};
  store_rc rc = list_all(impl, "P0.", NULL, "/", PAGE_MAX, service_one, &c, err);
  pthread_mutex_lock(&s->mu);
  for (size_t i = 0; rc == STORE_OK && i < s->nadded; i++)
    names_add(&c, s->added[i], strlen(s->added[i]));
  pthread_mutex_unlock(&s->mu);
  return names_done(&c, rc, names, n, err);
}

/* The index of service in added, or nadded; under mu. */
static size_t added_at(store_s3 *s, const char *service) {
  size_t i = 0;
  while (i < s->nadded && strcmp(s->added[i], service) != 0) i++;
  return i;
}

/* An empty service lives in this node's memory until a profile of it is in
** S3 (as on a profefe server, where services are what the keys say). */
static store_rc s3_add_service(void *impl, const char *service, char *err) {
  store_s3 *s = impl;
  store_rc rc = STORE_OK;
  char **v, *d;
  pthread_mutex_lock(&s->mu);
  if (added_at(s, service) == s->nadded && s->nadded >= S3_ADDED_MAX) {
    rc = store_seterr(err, STORE_NOSPACE,
                      "at most %d empty services made on one node (write a "
                      "profile into one, or remove one)", S3_ADDED_MAX);
  } else if (added_at(s, service) == s->nadded) {
    v = realloc(s->added, (s->nadded + 1) * sizeof *v);
    if (v != NULL) s->added = v;
    if (v == NULL || (d = strdup(service)) == NULL) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
    } else {
      s->added[s->nadded++] = d;
      s->writes++; /* listings must show it at once */
    }
  }
  pthread_mutex_unlock(&s->mu);
  return rc;
}

static int any_one(const char *key, int64_t size, void *arg) {
  (void)key;
  (void)size;
  *(int *)arg = 1;
  return 1;
}

static store_rc s3_remove_service(void *impl, const char *service, char *err) {
  store_s3 *s = impl;
  char *dir = NULL;
  int any = 0, was = 0;
  store_rc rc;
  if (asprintf(&dir, "P0.%s/", service) < 0) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_s3_list(s, dir, NULL, any_one, &any, err);
  free(dir);
  if (rc != STORE_OK) return rc;
  if (any)
    return store_seterr(err, STORE_INVALID, "service \"%s\" still holds profiles", service);
  pthread_mutex_lock(&s->mu);
  size_t i = added_at(s, service);
  if ((was = i < s->nadded)) {
    free(s->added[i]);
    s->added[i] = s->added[--s->nadded];
    s->writes++;
  }
  pthread_mutex_unlock(&s->mu);
  return was ? STORE_OK : store_seterr(err, STORE_NOTFOUND, "no service \"%s\"", service);
}

static int labels_one(const char *key, int64_t size, void *arg) {
  names_ctx *c = arg;
  store_meta m = {0};
  int stop;
  (void)size;
  if (store_s3_key_read(c->s, key, &m) != 0) return 0;
  stop = names_add(c, m.labels, strlen(m.labels));
  store_meta_clear(&m);
  return stop;
}

static store_rc s3_label_sets(void *impl, const char *service, meta_type type,
                              char ***sets, size_t *n, char *err) {
  names_ctx c = {.s = impl};
  char *dir = store_s3_key_dir(service, type);
  store_rc rc;
  if (dir == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_s3_list(impl, dir, NULL, labels_one, &c, err);
  free(dir);
  return names_done(&c, rc, sets, n, err);
}

/* ---- retention ------------------------------------------------------------------- */

typedef struct old_ctx {
  int64_t cutoff;
  names_ctx keys;
} old_ctx;

static int old_one(const char *key, int64_t size, void *arg) {
  old_ctx *o = arg;
  store_meta m = {0};
  (void)size;
  if (store_s3_key_read(o->keys.s, key, &m) != 0) return 0;
  int64_t t = m.created_at;
  store_meta_clear(&m);
  if (t >= o->cutoff) return 1;
  return names_add(&o->keys, key, strlen(key));
}

/* Deletes the keys of dir ("P0.<service>/<num>/") older than cutoff;
** *deleted counts them.  Keys sort by created_at, so the list starts at
** the oldest and stops at the first younger one, after a small first page
** (RETAIN_FIRST keys).  A key that cannot be deleted is skipped, the first
** error kept: the others still go. */
static store_rc retain_dir(store_s3 *s, const char *dir, int64_t cutoff,
                           size_t *deleted, char *err) {
  old_ctx o = {.cutoff = cutoff, .keys = {.s = s}};
  char kerr[STORE_ERRMAX];
  store_rc rc = list_all(s, dir, NULL, NULL, RETAIN_FIRST, old_one, &o, err);
  if (rc == STORE_OK && o.keys.oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  for (size_t k = 0; rc == STORE_OK && k < o.keys.n; k++) {
    s3_resp r = {0};
    store_rc krc = store_s3_request(s, "DELETE", o.keys.v[k], NULL, NULL, 0,
                                    NULL, 1 << 16, &r, kerr);
    if (krc == STORE_OK && r.status / 100 != 2 && r.status != 404)
      krc = store_s3_status_rc(s, "retention", &r, kerr);
    if (krc == STORE_OK)
      (*deleted)++;
    else if (rc == STORE_OK)
      rc = store_seterr(err, krc, "%s", kerr);
    store_s3_resp_clear(&r);
  }
  if (o.keys.n > 0) store_s3_count_write(s, 0);
  store_names_free(o.keys.v, o.keys.n);
  return rc;
}

static int dir_one(const char *prefix, int64_t size, void *arg) {
  (void)size;
  return names_add(arg, prefix, strlen(prefix));
}

/* The types of service ("P0.<service>/<num>/", the ones it has: one
** delimiter list), each pruned by retain_dir; the first failure kept. */
static store_rc retain_service(store_s3 *s, const char *service,
                               int64_t cutoff, size_t *deleted, char *err) {
  names_ctx types = {.s = s};
  char *dir = NULL, derr[STORE_ERRMAX];
  store_rc rc, drc;
  if (asprintf(&dir, "P0.%s/", service) < 0) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = list_all(s, dir, NULL, "/", PAGE_MAX, dir_one, &types, err);
  if (rc == STORE_OK && types.oom) rc = store_seterr(err, STORE_NOMEM, "out of memory");
  for (size_t t = 0; rc == STORE_OK && t < types.n; t++) {
    drc = retain_dir(s, types.v[t], cutoff, deleted, derr);
    if (drc != STORE_OK && rc == STORE_OK) rc = store_seterr(err, drc, "%s", derr);
  }
  store_names_free(types.v, types.n);
  free(dir);
  return rc;
}

/* 1 when this node takes the retention pass of the current minute: the
** first node to PUT "S0.retention/<minute>" with If-None-Match: * gets it,
** the others (412, or 409 from AWS for a concurrent one) skip that minute,
** so a bucket sees about one pass a minute however many nodes run
** retention.  A store that does not take the condition (any other answer)
** or that cannot be reached lets every node pass, as before; the marker of
** two minutes ago is deleted.  profefe and our own listings look under
** "P0." and "R0." only: nobody sees these. */
static int retention_lease(store_s3 *s, int64_t now) {
  const char *const hdr[] = {"If-None-Match: *", NULL};
  char key[64], err[STORE_ERRMAX];
  s3_resp r = {0};
  int mine = 1;
  snprintf(key, sizeof key, "S0.retention/%lld", (long long)(now / 60));
  if (store_s3_request(s, "PUT", key, NULL, "", 0, hdr, 1 << 16, &r, err) == STORE_OK)
    mine = r.status != 412 && r.status != 409;
  store_s3_resp_clear(&r);
  if (mine) {
    snprintf(key, sizeof key, "S0.retention/%lld", (long long)(now / 60 - 2));
    if (store_s3_request(s, "DELETE", key, NULL, NULL, 0, NULL, 1 << 16, &r, err) == STORE_OK)
      store_s3_resp_clear(&r);
  }
  return mine;
}

/* Every service and type is pruned even when one fails (a key S3 refuses,
** a listing that errs): the first failure is what the pass answers.  A
** pass costs one list of the services, one of each service's types and
** one small page per type when nothing expired; the rollups' upkeep (a
** list of all of them) runs at most every ROLLUP_UPKEEP_EVERY, since
** their slots are hours. */
static store_rc s3_retain(void *impl, int64_t cutoff, size_t *deleted,
                          char *err) {
  store_s3 *s = impl;
  char **svcs = NULL, derr[STORE_ERRMAX];
  size_t nsvc = 0, total = 0;
  int64_t now = (int64_t)time(NULL);
  int upkeep;
  store_rc rc, drc;
  if (!retention_lease(s, now)) { /* another node has this minute's pass */
    if (deleted != NULL) *deleted = 0;
    return STORE_OK;
  }
  rc = s3_services(impl, &svcs, &nsvc, err);
  for (size_t i = 0; rc != STORE_NOMEM && svcs != NULL && i < nsvc; i++) {
    drc = retain_service(s, svcs[i], cutoff, &total, derr);
    if (drc != STORE_OK && rc == STORE_OK) rc = store_seterr(err, drc, "%s", derr);
  }
  store_names_free(svcs, nsvc);
  pthread_mutex_lock(&s->mu);
  if ((upkeep = now >= s->next_upkeep)) s->next_upkeep = now + ROLLUP_UPKEEP_EVERY;
  pthread_mutex_unlock(&s->mu);
  if (upkeep) {
    drc = store_s3_rollup_upkeep(s, cutoff, derr);
    if (drc != STORE_OK && rc == STORE_OK) rc = store_seterr(err, drc, "%s", derr);
  }
  if (rc != STORE_OK) {
    snprintf(derr, sizeof derr, "%s", err != NULL ? err : "");
    return store_seterr(err, rc, "%s (the rest of the pass went on: %zu deleted)",
                        derr, total);
  }
  if (deleted != NULL) *deleted = total;
  return STORE_OK;
}

/* Upkeep on demand: the rollups' pass without retention. */
static store_rc s3_maintain(void *impl, size_t *built, char *err) {
  store_rc rc = store_s3_rollup_upkeep(impl, 0, err);
  if (rc == STORE_OK && built != NULL) *built = 0;
  return rc;
}

/* ---- opening ----------------------------------------------------------------------- */

static void s3_close(void *impl) {
  store_s3 *s = impl;
  if (s == NULL) return;
  store_s3_pool_free(s->pool);
  store_s3_cache_close(s->cache);
  store_names_free(s->added, s->nadded);
  pthread_mutex_destroy(&s->mu);
  free(s->base);
  free(s->endpoint);
  free(s->bucket);
  free(s->prefix);
  free(s->sigv4);
  free(s->userpwd);
  free(s->token_hdr);
  free(s);
}

static const store_backend_ops s3_ops = {
  .name = "s3",
  .close = s3_close,
  .ingest = store_s3_ingest,
  .find = s3_find,
  .get = store_s3_get,
  .stat = store_s3_stat,
  .merge = s3_merge,
  .merge_ids = store_s3_merge_ids,
  .services = s3_services,
  .add_service = s3_add_service,
  .remove_service = s3_remove_service,
  .label_sets = s3_label_sets,
  .del = store_s3_del,
  .retain = s3_retain,
  .generation = s3_generation,
  .stats = s3_stats,
  .maintain = s3_maintain,
  .stat_named = s3_stat_named,
  .id_valid = store_s3_id_valid,
};

static int bucket_valid(const char *b, size_t n) {
  if (n < 3 || n > 63) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') ||
          b[i] == '-' || b[i] == '.' || b[i] == '_'))
      return 0;
  return 1;
}

/* Parses "s3://BUCKET[/PREFIX]" into s->bucket and s->prefix ("" or "p/"). */
static store_rc parse_url(store_s3 *s, const char *url, char *err) {
  const char *b = url + 5, *slash = strchr(b, '/');
  size_t bn = slash ? (size_t)(slash - b) : strlen(b);
  const char *p = slash ? slash + 1 : "";
  size_t pn = strlen(p);
  while (pn > 0 && p[pn - 1] == '/') pn--;
  if (!bucket_valid(b, bn))
    return store_seterr(err, STORE_INVALID, "%s: invalid bucket name", url);
  if ((s->bucket = strndup(b, bn)) == NULL ||
      asprintf(&s->prefix, "%.*s%s", (int)pn, p, pn ? "/" : "") < 0) {
    s->prefix = NULL;
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  return STORE_OK;
}

/* Where requests go: --s3-endpoint, AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL
** (path-style, as profefe does), else AWS itself (virtual-hosted). */
static store_rc make_base(store_s3 *s, const store_options *opts,
                          const char *region, char *err) {
  const char *ep = opts && opts->s3_endpoint ? opts->s3_endpoint
                                             : env_first("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL");
  int rc;
  if (ep != NULL) {
    size_t n = strlen(ep);
    while (n > 0 && ep[n - 1] == '/') n--;
    if (strncmp(ep, "http://", 7) != 0 && strncmp(ep, "https://", 8) != 0)
      return store_seterr(err, STORE_INVALID, "invalid S3 endpoint \"%s\" (want http:// or https://)", ep);
    rc = asprintf(&s->base, "%.*s/%s", (int)n, ep, s->bucket);
    if (rc >= 0) rc = asprintf(&s->endpoint, "%.*s", (int)n, ep);
  } else {
    /* "a.b" would be a sub-domain the *.s3 certificate does not cover, "a_b"
    ** no host name at all: AWS serves them path-style only */
    if (strpbrk(s->bucket, "._") != NULL)
      return store_seterr(err, STORE_INVALID,
                          "S3 bucket \"%s\": a name with '.' or '_' cannot be "
                          "reached virtual-hosted over HTTPS; for path-style "
                          "addressing pass --s3-endpoint https://s3.%s.amazonaws.com",
                          s->bucket, region);
    s->vhost = 1;
    rc = asprintf(&s->base, "https://%s.s3.%s.amazonaws.com", s->bucket, region);
    if (rc >= 0) rc = asprintf(&s->endpoint, "https://s3.%s.amazonaws.com", region);
  }
  if (rc < 0) {
    s->base = s->endpoint = NULL;
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  return STORE_OK;
}

/* One list request: the bucket answers and the credentials work. */
static store_rc check_bucket(store_s3 *s, char *err) {
  s3_resp r = {0};
  char code[64], msg[256];
  store_rc rc = store_s3_request(s, "GET", NULL, "list-type=2&max-keys=1", NULL,
                                 0, NULL, LIST_MAX, &r, err);
  if (rc != STORE_OK) return rc;
  store_s3_xml_error(r.body, r.len, code, sizeof code, msg, sizeof msg);
  if (r.status == 200)
    rc = STORE_OK;
  else if (r.status == 404)
    rc = store_seterr(err, STORE_NOTFOUND, "S3 bucket \"%s\" does not exist at %s",
                      s->bucket, s->endpoint);
  else if (r.status == 403)
    rc = store_seterr(err, STORE_IO,
                      "S3 at %s refused the credentials for bucket \"%s\" (%s%s%s)",
                      s->endpoint, s->bucket, code[0] ? code : "403",
                      msg[0] ? ": " : "", msg);
  else
    rc = store_s3_status_rc(s, "checking the bucket", &r, err);
  store_s3_resp_clear(&r);
  return rc;
}

store_rc store_s3_open(const char *url, const store_options *opts,
                       const store_backend_ops **ops, void **impl, char *err) {
  const char *region = env_first("AWS_REGION", "AWS_DEFAULT_REGION");
  const char *key = env_first("AWS_ACCESS_KEY_ID", NULL);
  const char *secret = env_first("AWS_SECRET_ACCESS_KEY", NULL);
  const char *token = env_first("AWS_SESSION_TOKEN", NULL);
  store_s3 *s = calloc(1, sizeof *s);
  store_rc rc;

  if (s == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_init(&s->mu, NULL);
  s->rollups = s->rollup_bytes = -1;
  s->superseded_grace = 600;
  if (getenv("PROFEFS_TEST_SUPERSEDED_GRACE") != NULL) /* tests only */
    s->superseded_grace = strtoll(getenv("PROFEFS_TEST_SUPERSEDED_GRACE"), NULL, 10);
  if (region == NULL) region = "us-east-1";
  s->read_only = opts != NULL && opts->read_only;
  s->max_inflate = opts && opts->max_inflate ? opts->max_inflate : (256u << 20);
  s->budget = opts != NULL ? opts->budget : NULL;
  s->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
  if ((rc = parse_url(s, url, err)) != STORE_OK ||
      (rc = make_base(s, opts, region, err)) != STORE_OK)
    goto fail;
  if (key == NULL || secret == NULL) {
    rc = store_seterr(err, STORE_INVALID,
                      "%s: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set", url);
    goto fail;
  }
  if (asprintf(&s->sigv4, "aws:amz:%s:s3", region) < 0) s->sigv4 = NULL;
  if (asprintf(&s->userpwd, "%s:%s", key, secret) < 0) s->userpwd = NULL;
  if (token != NULL && asprintf(&s->token_hdr, "x-amz-security-token: %s", token) < 0)
    s->token_hdr = NULL;
  if (s->sigv4 == NULL || s->userpwd == NULL || (token && !s->token_hdr) ||
      (s->pool = store_s3_pool_new()) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto fail;
  }
  if ((rc = check_bucket(s, err)) != STORE_OK) goto fail;
  if (opts != NULL && opts->s3_cache_dir != NULL) {
    /* scope: the bucket's URL and the prefix, as "http://ep/bucket/prefix/" */
    char *scope = NULL;
    if (asprintf(&scope, "%s/%s", s->base, s->prefix) < 0) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto fail;
    }
    rc = store_s3_cache_open(opts->s3_cache_dir, scope,
                             opts->s3_cache_max ? opts->s3_cache_max : (uint64_t)1 << 30,
                             &s->cache, err);
    free(scope);
    if (rc != STORE_OK) goto fail;
  }
  *ops = &s3_ops;
  *impl = s;
  return STORE_OK;
fail:
  s3_close(s);
  return rc;
}
