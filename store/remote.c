/*
** remote.c — the store backend that is a client of a profefe/profefs HTTP
** server (libcurl through remote_http.c, JSON through remote_json.c).
**
** It lets `profefs mount --remote URL` show a remote repository with the
** same FUSE view as a local one, and `profefs scrape --to URL` ingest into
** one.  The protocol has no "stat" and lists carry no sizes, while the FUSE
** view needs exact sizes; since stored profiles never change, their bytes
** (and what we learned of their metadata) are cached by id without expiry,
** bounded by size.  Derived answers (lists, merges, services) are cached
** under store_generation(), which here is a time bucket of a few seconds
** combined with a counter of our own writes: our writes show at once,
** other clients' writes within one bucket, and nothing stale lives longer.
**
** A plain profefe server has no DELETE and no way to create an empty
** service: delete then fails with STORE_UNSUPPORTED, and services made by
** add_service (FUSE mkdir) are remembered locally until profiles arrive.
**
** Invariants:
**   - `bytes` holds, under key "P <id>" generation 0, exactly the bytes the
**     server stores for id; under "L|M|S <url>" the answer of url at the
**     generation it is stored with;
**   - `metas` holds, under key <id>, what the server said about id (see
**     meta_pack); its size is -1 until learned;
**   - added[0..nadded) are distinct valid service names (under mu).
*/
#include <assert.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "remote_cache.h"
#include "remote_http.h"
#include "remote_json.h"

#define BYTES_CACHE_MAX  (64u << 20)
#define METAS_CACHE_MAX  (16u << 20)
#define DEFAULT_TIMEOUT  10000L
#define DEFAULT_ANSWER_MAX ((size_t)256 << 20)
/* Seconds during which a derived answer (list, merge) may be reused. */
#define GENERATION_BUCKET 5
/* How far around an id's creation second to look for its metadata. */
#define META_SEARCH_SLACK 86400

typedef struct remote {
  char *base;            /* "http://host:port" without trailing '/' */
  int read_only;
  size_t answer_max;     /* largest answer accepted */
  store_rhttp *http;
  store_rcache *bytes;
  store_rcache *metas;
  pthread_mutex_t mu;    /* guards what follows */
  char **added;
  size_t nadded;
  uint64_t writes;       /* own successful ingests and deletes */
  int64_t ingests;
  int head_unsupported;  /* the server refused HEAD once: use GET */
} remote;

/* ---- small helpers ------------------------------------------------------- */

static char *strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strfmt(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;
  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* profefe's own time format (UTC); the range is clamped to what it parses. */
static void time_param(int64_t t, char out[32]) {
  struct tm tm;
  time_t tt;
  if (t < 0) t = 0;
  if (t > 253402300799) t = 253402300799; /* 9999-12-31T23:59:59 */
  tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
}

/* The creation second that ids (profefs and profefe/xid alike) begin with. */
static int64_t id_time(const char *id) {
  uint64_t v = 0;
  /* 4 bytes = 32 bits = the first 6.4 base32hex digits: take 7 (35 bits). */
  for (int i = 0; i < 7; i++) {
    char c = id[i];
    v = v << 5 | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return (int64_t)(v >> 3);
}

static uint64_t generation(remote *r) {
  uint64_t w;
  pthread_mutex_lock(&r->mu);
  w = r->writes;
  pthread_mutex_unlock(&r->mu);
  return (uint64_t)(time(NULL) / GENERATION_BUCKET) << 32 | (w & 0xffffffffu);
}

static void count_write(remote *r, int ingest) {
  pthread_mutex_lock(&r->mu);
  r->writes++;
  if (ingest) r->ingests++;
  pthread_mutex_unlock(&r->mu);
}

/* ---- metadata cache ---------------------------------------------------------- */

/* A meta is kept as "<created_at> <size> <type> <labels>\n<service>": the
** canonical labels have no space or newline, a service no newline. */
static void meta_put(remote *r, const store_meta *m) {
  char *s = strfmt("%" PRId64 " %" PRId64 " %d %s\n%s", m->created_at, m->size,
                   (int)m->type, m->labels, m->service);
  if (s == NULL) return;
  store_rcache_put(r->metas, m->id, 0, s, strlen(s));
  free(s);
}

/* 1 and *m (caller clears) when id's metadata is known; else 0. */
static int meta_get(remote *r, const char *id, store_meta *m) {
  void *data;
  size_t len;
  char *s, *end, *nl, *sp;
  long long created, size;
  long type;
  int ok = 0;

  if (!store_rcache_get(r->metas, id, 0, &data, &len)) return 0;
  s = data;
  created = strtoll(s, &end, 10);
  size = strtoll(end, &end, 10);
  type = strtol(end, &end, 10);
  nl = strchr(end, '\n');
  if (*end == ' ' && nl != NULL && type >= 0 && type < META_NTYPES) {
    sp = end + 1;
    memset(m, 0, sizeof *m);
    memcpy(m->id, id, META_ID_LEN + 1);
    m->created_at = created;
    m->size = size;
    m->type = (meta_type)type;
    m->labels = strndup(sp, (size_t)(nl - sp));
    m->service = strdup(nl + 1);
    ok = m->labels != NULL && m->service != NULL;
    if (!ok) store_meta_clear(m);
  }
  free(data);
  return ok;
}

/* Records a size learned for id, keeping what else is known. */
static void meta_set_size(remote *r, const char *id, int64_t size) {
  store_meta m;
  if (!meta_get(r, id, &m)) return;
  if (m.size != size) {
    m.size = size;
    meta_put(r, &m);
  }
  store_meta_clear(&m);
}

/* ---- answers ----------------------------------------------------------------- */

/* The store_rc for a non-200 answer, with the server's reason in err.
** on400 is what a 400 means for this request. */
static store_rc status_rc(const char *what, const store_rhttp_resp *resp,
                          store_rc on400, char *err) {
  char *msg = store_rjson_error(resp->body, resp->len);
  const char *why = msg != NULL ? msg : "";
  store_rc rc;

  switch (resp->status) {
    case 400: rc = on400; break;
    case 403: rc = STORE_READONLY; break;
    case 404: rc = STORE_NOTFOUND; break;
    case 405: rc = STORE_UNSUPPORTED; break;
    case 413: rc = STORE_TOOBIG; break;
    case 507: rc = STORE_NOSPACE; break;
    default: rc = STORE_IO; break;
  }
  /* A 400 is either about the request or about the profiles: tell them
  ** apart by the reason (profefs says "bad request: ..." for the former). */
  if (rc == STORE_MISMATCH && strstr(why, "sample type") == NULL &&
      strstr(why, "mismatch") == NULL)
    rc = STORE_INVALID;
  if (rc == STORE_BADPROFILE && strncmp(why, "bad request", 11) == 0)
    rc = STORE_INVALID;
  if (rc == STORE_IO)
    fprintf(stderr, "remote: %s: server answered %ld %s\n", what, resp->status, why);
  if (msg != NULL)
    store_seterr(err, rc, "%s", why);
  else
    store_seterr(err, rc, "%s: remote server answered %ld", what, resp->status);
  free(msg);
  return rc;
}

/* GETs url, or takes it from the cache under key/gen; stores 200 answers
** there.  A hit looks like a 200 answer. */
static store_rc cached_get(remote *r, const char *key, uint64_t gen,
                           const char *url, store_rhttp_resp *out, char *err) {
  void *data;
  size_t len;
  store_rc rc;

  if (store_rcache_get(r->bytes, key, gen, &data, &len)) {
    out->status = 200;
    out->body = data;
    out->len = len;
    out->content_length = (int64_t)len;
    return STORE_OK;
  }
  rc = store_rhttp_request(r->http, "GET", url, NULL, 0, r->answer_max, out, err);
  if (rc == STORE_OK && out->status == 200)
    store_rcache_put(r->bytes, key, gen, out->body, out->len);
  return rc;
}

/* ---- queries ------------------------------------------------------------------- */

/* URL of path with the query of q (find and merge take the same one). */
static char *query_url(remote *r, const char *path, const store_query *q) {
  char from[32], to[32], limit[32] = "";
  char *svc = store_rhttp_escape(q->service), *labels = NULL, *url = NULL;

  if (svc == NULL) goto out;
  if (q->labels != NULL && q->labels[0] != 0 &&
      (labels = store_rhttp_escape(q->labels)) == NULL)
    goto out;
  time_param(q->from, from);
  time_param(q->to, to);
  if (q->limit > 0) snprintf(limit, sizeof limit, "&limit=%ld", q->limit);
  url = strfmt("%s%s?service=%s&type=%s&from=%s&to=%s%s%s%s", r->base, path, svc,
               meta_type_name(q->type), from, to, labels ? "&labels=" : "",
               labels ? labels : "", limit);
out:
  free(svc);
  free(labels);
  return url;
}

static int meta_cmp(const void *a, const void *b) {
  const store_meta *x = a, *y = b;
  if (x->created_at != y->created_at) return x->created_at < y->created_at ? -1 : 1;
  return strcmp(x->id, y->id);
}

static store_rc remote_find(void *impl, const store_query *q,
                            store_meta_list *out, char *err) {
  remote *r = impl;
  store_rhttp_resp resp = { 0 };
  store_meta_list l = { 0 };
  char *url = query_url(r, "/api/0/profiles", q), *key = NULL;
  store_rc rc;

  if (url == NULL || (key = strfmt("L %s", url)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = cached_get(r, key, generation(r), url, &resp, err)) != STORE_OK) goto out;
  if (resp.status == 404 || resp.status == 204) { /* profefe's "nothing found" */
    *out = l;
    goto out;
  }
  if (resp.status != 200) {
    rc = status_rc("find", &resp, STORE_INVALID, err);
    goto out;
  }
  if ((rc = store_rjson_meta_list(resp.body, resp.len, &l, err)) != STORE_OK) goto out;
  for (size_t i = 0; i < l.n; i++) {
    store_meta known;
    if (meta_get(r, l.v[i].id, &known)) {
      l.v[i].size = known.size;
      store_meta_clear(&known);
    }
    meta_put(r, &l.v[i]);
  }
  if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, meta_cmp);
  *out = l;
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  free(key);
  return rc;
}


/* ---- services ------------------------------------------------------------------ */

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends copies of the locally added services to v[0..*n) (room for them
** was made by the caller), then sorts and removes duplicates. */
static store_rc add_local_names(remote *r, char **v, size_t *n, size_t room) {
  size_t k = *n, w = 0;
  store_rc rc = STORE_OK;

  pthread_mutex_lock(&r->mu);
  for (size_t i = 0; i < r->nadded && k < room; i++) {
    if ((v[k] = strdup(r->added[i])) == NULL) {
      rc = STORE_NOMEM;
      break;
    }
    k++;
  }
  pthread_mutex_unlock(&r->mu);
  if (k > 1) qsort(v, k, sizeof *v, name_cmp);
  for (size_t i = 0; i < k; i++) {
    if (w > 0 && strcmp(v[w - 1], v[i]) == 0)
      free(v[i]);
    else
      v[w++] = v[i];
  }
  *n = w;
  return rc;
}

static store_rc remote_services(void *impl, char ***names, size_t *n, char *err) {
  remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char **got = NULL, **v = NULL, *url = strfmt("%s/api/0/services", r->base);
  size_t ngot = 0, nv = 0, room;
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = cached_get(r, "S", generation(r), url, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200) {
    if ((rc = store_rjson_names(resp.body, resp.len, &got, &ngot, err)) != STORE_OK)
      goto out;
  } else if (resp.status != 404 && resp.status != 204) { /* none yet */
    rc = status_rc("services", &resp, STORE_IO, err);
    goto out;
  }
  pthread_mutex_lock(&r->mu);
  room = ngot + r->nadded;
  pthread_mutex_unlock(&r->mu);
  if ((v = calloc(room + 1, sizeof *v)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  for (; nv < ngot; nv++) {
    v[nv] = got[nv];
    got[nv] = NULL;
  }
  if ((rc = add_local_names(r, v, &nv, room)) != STORE_OK) {
    store_seterr(err, rc, "out of memory");
    goto out;
  }
  *names = v;
  *n = nv;
  v = NULL;
out:
  if (v != NULL) store_names_free(v, nv);
  store_names_free(got, ngot);
  store_rhttp_resp_clear(&resp);
  free(url);
  return rc;
}

static store_rc remote_add_service(void *impl, const char *service, char *err) {
  remote *r = impl;
  store_rc rc = STORE_OK;
  char **v;
  size_t i;

  if (r->read_only) return store_seterr(err, STORE_READONLY, "read-only mount");
  pthread_mutex_lock(&r->mu);
  for (i = 0; i < r->nadded && strcmp(r->added[i], service) != 0; i++) {
  }
  if (i == r->nadded) {
    if ((v = realloc(r->added, (r->nadded + 1) * sizeof *v)) == NULL ||
        (v[r->nadded] = strdup(service)) == NULL) {
      if (v != NULL) r->added = v;
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
    } else {
      r->added = v;
      r->nadded++;
      r->writes++; /* listings must show it at once */
    }
  }
  pthread_mutex_unlock(&r->mu);
  return rc;
}

/* ---- single profiles ----------------------------------------------------------- */

/* Looks for id's metadata when the cache does not have it: the protocol
** cannot ask by id, so search each service and type around the second the
** id was made.  Every meta seen on the way is cached, so a directory's
** worth of misses costs one search.  STORE_NOTFOUND when not found. */
static store_rc meta_search(remote *r, const char *id, store_meta *m, char *err) {
  char **svcs = NULL;
  size_t nsvcs = 0;
  int64_t t = id_time(id);
  store_rc rc;

  if ((rc = remote_services(r, &svcs, &nsvcs, err)) != STORE_OK) return rc;
  rc = STORE_NOTFOUND;
  for (size_t i = 0; i < nsvcs && rc == STORE_NOTFOUND; i++) {
    for (int ty = 0; ty < META_NTYPES && rc == STORE_NOTFOUND; ty++) {
      store_query q = { .service = svcs[i], .type = (meta_type)ty,
                        .from = t - META_SEARCH_SLACK, .to = t + META_SEARCH_SLACK };
      store_meta_list l = { 0 };
      store_rc frc = remote_find(r, &q, &l, err);
      store_meta_list_free(&l);
      if (frc == STORE_IO) {
        rc = frc;
      } else if (meta_get(r, id, m)) {
        rc = STORE_OK;
      }
    }
  }
  store_names_free(svcs, nsvcs);
  if (rc == STORE_NOTFOUND)
    store_seterr(err, rc, "profile %s not found on the remote server", id);
  return rc;
}

/* The stored bytes of id, from the cache or the server. */
static store_rc fetch_bytes(remote *r, const char *id, store_rhttp_resp *resp,
                            char *err) {
  char key[META_ID_LEN + 3], *url = strfmt("%s/api/0/profiles/%s", r->base, id);
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  snprintf(key, sizeof key, "P %s", id);
  rc = cached_get(r, key, 0, url, resp, err);
  if (rc == STORE_OK && resp->status != 200) {
    rc = status_rc("get", resp, STORE_INVALID, err);
    store_rhttp_resp_clear(resp);
  }
  free(url);
  if (rc == STORE_OK) meta_set_size(r, id, (int64_t)resp->len);
  return rc;
}

/* Asks the server (not the cache) whether id exists: HEAD when it can,
** else GET.  Sets *size to its length. */
static store_rc probe(remote *r, const char *id, int64_t *size, char *err) {
  char *url = strfmt("%s/api/0/profiles/%s", r->base, id);
  store_rhttp_resp resp = { 0 };
  int use_head;
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_lock(&r->mu);
  use_head = !r->head_unsupported;
  pthread_mutex_unlock(&r->mu);
  if (use_head) {
    rc = store_rhttp_request(r->http, "HEAD", url, NULL, 0, 0, &resp, err);
    if (rc != STORE_OK) goto out;
    if (resp.status == 200 && resp.content_length >= 0) {
      *size = resp.content_length;
      goto out;
    }
    if (resp.status == 404) {
      rc = store_seterr(err, STORE_NOTFOUND, "profile %s not found", id);
      goto out;
    }
    /* A plain profefe answers HEAD with 405 (or without a length): from
    ** now on just GET. */
    pthread_mutex_lock(&r->mu);
    r->head_unsupported = 1;
    pthread_mutex_unlock(&r->mu);
    store_rhttp_resp_clear(&resp);
  }
  rc = store_rhttp_request(r->http, "GET", url, NULL, 0, r->answer_max, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200) {
    char key[META_ID_LEN + 3];
    snprintf(key, sizeof key, "P %s", id);
    store_rcache_put(r->bytes, key, 0, resp.body, resp.len);
    *size = (int64_t)resp.len;
  } else {
    rc = status_rc("get", &resp, STORE_INVALID, err);
  }
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  return rc;
}

static store_rc remote_get(void *impl, const char *id, store_meta *meta,
                           void **data, size_t *len, char *err) {
  remote *r = impl;
  store_rhttp_resp resp = { 0 };
  store_meta m;
  store_rc rc;

  if ((rc = fetch_bytes(r, id, &resp, err)) != STORE_OK) return rc;
  if (meta != NULL) {
    if (!meta_get(r, id, &m) && (rc = meta_search(r, id, &m, err)) != STORE_OK) {
      store_rhttp_resp_clear(&resp);
      return rc;
    }
    m.size = (int64_t)resp.len;
    *meta = m;
  }
  *data = resp.body;
  *len = resp.len;
  return STORE_OK;
}

static store_rc remote_stat(void *impl, const char *id, store_meta *meta,
                            char *err) {
  remote *r = impl;
  char key[META_ID_LEN + 3];
  store_meta m;
  void *data;
  size_t len;
  store_rc rc;

  if (!meta_get(r, id, &m) && (rc = meta_search(r, id, &m, err)) != STORE_OK)
    return rc;
  if (m.size < 0) {
    snprintf(key, sizeof key, "P %s", id);
    if (store_rcache_get(r->bytes, key, 0, &data, &len)) {
      m.size = (int64_t)len;
      free(data);
    } else if ((rc = probe(r, id, &m.size, err)) != STORE_OK) {
      store_meta_clear(&m);
      return rc;
    }
    meta_set_size(r, id, m.size);
  }
  *meta = m;
  return STORE_OK;
}

/* ---- merges ---------------------------------------------------------------------- */

/* GETs a merge url (cached for the current generation) into *out and *len. */
static store_rc get_merge(remote *r, const char *url, void **out, size_t *len,
                          char *err) {
  store_rhttp_resp resp = { 0 };
  char *key = strfmt("M %s", url);
  store_rc rc;

  if (key == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = cached_get(r, key, generation(r), url, &resp, err);
  free(key);
  if (rc != STORE_OK) return rc;
  if (resp.status == 204) { /* profefe: "profile empty" */
    store_rhttp_resp_clear(&resp);
    return store_seterr(err, STORE_NOTFOUND, "nothing found");
  }
  if (resp.status != 200) {
    rc = status_rc("merge", &resp, STORE_MISMATCH, err);
    store_rhttp_resp_clear(&resp);
    return rc;
  }
  *out = resp.body;
  *len = resp.len;
  return STORE_OK;
}

static store_rc remote_merge(void *impl, const store_query *q, void **out,
                             size_t *len, size_t *count, char *err) {
  remote *r = impl;
  char *url;
  store_rc rc;

  if (q->type == META_TRACE)
    return store_seterr(err, STORE_UNSUPPORTED, "traces cannot be merged");
  if ((url = query_url(r, "/api/0/profiles/merge", q)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = get_merge(r, url, out, len, err);
  free(url);
  if (rc == STORE_OK && count != NULL) {
    /* The answer does not say how many were merged; the list does (and
    ** is cached for this generation, like the merge). */
    store_meta_list l = { 0 };
    *count = remote_find(r, q, &l, NULL) == STORE_OK ? l.n : 0;
    store_meta_list_free(&l);
  }
  return rc;
}

static store_rc remote_merge_ids(void *impl, const char *const *ids, size_t n,
                                 void **out, size_t *len, char *err) {
  remote *r = impl;
  size_t blen = strlen(r->base), cap = blen + 32 + n * (META_ID_LEN + 1);
  char *url = malloc(cap);
  size_t at;
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  at = (size_t)snprintf(url, cap, "%s/api/0/profiles/", r->base);
  for (size_t i = 0; i < n; i++)
    at += (size_t)snprintf(url + at, cap - at, "%s%s", i ? "+" : "", ids[i]);
  rc = get_merge(r, url, out, len, err);
  free(url);
  return rc;
}

/* ---- writes ------------------------------------------------------------------------ */

static store_rc remote_ingest(void *impl, const char *service, meta_type type,
                              const char *labels, int64_t created_at_hint,
                              const void *data, size_t len, store_meta *out,
                              char *err) {
  remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char *svc = NULL, *lab = NULL, *url = NULL, created[64] = "";
  char key[META_ID_LEN + 3];
  store_meta m;
  store_rc rc;

  if (r->read_only) return store_seterr(err, STORE_READONLY, "read-only store");
  if ((svc = store_rhttp_escape(service)) == NULL ||
      (labels != NULL && labels[0] != 0 && (lab = store_rhttp_escape(labels)) == NULL)) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if (created_at_hint > 0) {
    memcpy(created, "&created_at=", 12);
    time_param(created_at_hint, created + 12);
  }
  url = strfmt("%s/api/0/profiles?service=%s&type=%s%s%s%s", r->base, svc,
               meta_type_name(type), lab ? "&labels=" : "", lab ? lab : "", created);
  if (url == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  rc = store_rhttp_request(r->http, "POST", url, data, len, 1 << 20, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status != 200) {
    rc = status_rc("ingest", &resp, STORE_BADPROFILE, err);
    goto out;
  }
  if ((rc = store_rjson_meta(resp.body, resp.len, &m, err)) != STORE_OK) goto out;
  m.size = (int64_t)len;
  meta_put(r, &m);
  snprintf(key, sizeof key, "P %s", m.id);
  store_rcache_put(r->bytes, key, 0, data, len);
  count_write(r, 1);
  if (out != NULL)
    *out = m;
  else
    store_meta_clear(&m);
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  free(svc);
  free(lab);
  return rc;
}

static void forget(remote *r, const char *id) {
  char key[META_ID_LEN + 3];
  snprintf(key, sizeof key, "P %s", id);
  store_rcache_del(r->bytes, key);
  store_rcache_del(r->metas, id);
}

static store_rc remote_del(void *impl, const char *id, char *err) {
  remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char *url = strfmt("%s/api/0/profiles/%s", r->base, id);
  int64_t size;
  store_rc rc;

  if (r->read_only) return store_seterr(err, STORE_READONLY, "read-only store");
  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_rhttp_request(r->http, "DELETE", url, NULL, 0, 1 << 20, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200 && store_rjson_is_code(resp.body, resp.len, 200)) {
    forget(r, id);
    count_write(r, 0);
  } else if (resp.status == 200 || resp.status == 404 || resp.status == 405 ||
             resp.status == 501) {
    /* A plain profefe has no DELETE: it serves DELETE like GET (200 with
    ** the profile's bytes, or 404 for an unknown id) or refuses it.  Only
    ** a JSON {"code":200} means deleted; otherwise tell "cannot delete"
    ** from a real unknown id by asking for the profile. */
    rc = probe(r, id, &size, err);
    if (rc == STORE_OK)
      rc = store_seterr(err, STORE_UNSUPPORTED,
                        "the remote server does not support deleting profiles");
    if (rc == STORE_NOTFOUND) forget(r, id);
  } else {
    rc = status_rc("delete", &resp, STORE_INVALID, err);
  }
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  return rc;
}

/* ---- derived answers ---------------------------------------------------------------- */

static store_rc remote_label_sets(void *impl, const char *service,
                                  meta_type type, char ***sets, size_t *n,
                                  char *err) {
  remote *r = impl;
  /* All of time: label directories must exist for old profiles too. */
  store_query q = { .service = service, .type = type, .from = 0,
                    .to = (int64_t)time(NULL) + 366 * 86400 };
  store_meta_list l = { 0 };
  char **v = NULL;
  size_t k = 0, w = 0;
  store_rc rc;

  if ((rc = remote_find(r, &q, &l, err)) != STORE_OK) return rc;
  if (l.n > 0 && (v = calloc(l.n, sizeof *v)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < l.n; i++) {
    if (l.v[i].labels[0] == 0) continue;
    v[k++] = l.v[i].labels;  /* moved: the list entry no longer owns it */
    l.v[i].labels = NULL;
  }
  if (k > 1) qsort(v, k, sizeof *v, name_cmp);
  for (size_t i = 0; i < k; i++) {
    if (w > 0 && strcmp(v[w - 1], v[i]) == 0)
      free(v[i]);
    else
      v[w++] = v[i];
  }
  *sets = v;
  *n = w;
out:
  store_meta_list_free(&l);
  return rc;
}

static uint64_t remote_generation(void *impl) {
  return generation(impl);
}

static store_rc remote_stats(void *impl, store_stats *out) {
  remote *r = impl;
  store_stats s = { -1, -1, -1, 0, -1 };
  pthread_mutex_lock(&r->mu);
  s.ingests = r->ingests;
  pthread_mutex_unlock(&r->mu);
  *out = s;
  return STORE_OK;
}

/* ---- opening and closing -------------------------------------------------------------- */

static void remote_close(void *impl) {
  remote *r = impl;
  if (r == NULL) return;
  store_rhttp_free(r->http);
  store_rcache_free(r->bytes);
  store_rcache_free(r->metas);
  store_names_free(r->added, r->nadded);
  pthread_mutex_destroy(&r->mu);
  free(r->base);
  free(r);
}

static const store_backend_ops remote_ops = {
  .name = "remote",
  .close = remote_close,
  .ingest = remote_ingest,
  .find = remote_find,
  .get = remote_get,
  .stat = remote_stat,
  .merge = remote_merge,
  .merge_ids = remote_merge_ids,
  .services = remote_services,
  .add_service = remote_add_service,
  .label_sets = remote_label_sets,
  .del = remote_del,
  .retain = NULL, /* the server runs its own retention */
  .generation = remote_generation,
  .stats = remote_stats,
};

/* Fails early when nothing (or no profefe) answers at the URL. */
static store_rc hello(remote *r, char *err) {
  store_rhttp_resp resp = { 0 };
  char *url = strfmt("%s/api/0/version", r->base);
  char why[STORE_ERRMAX];
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_rhttp_request(r->http, "GET", url, NULL, 0, 1 << 20, &resp, why);
  if (rc != STORE_OK)
    store_seterr(err, rc, "cannot reach %s (%s)", r->base, why);
  else if (resp.status != 200)
    rc = store_seterr(err, STORE_IO, "%s does not look like a profefe server "
                      "(GET /api/0/version answered %ld)", r->base, resp.status);
  store_rhttp_resp_clear(&resp);
  free(url);
  return rc;
}

store_rc store_remote_open(const char *base_url, const store_options *opts,
                           const store_backend_ops **ops, void **impl,
                           char *err) {
  static const store_options defaults = { 0 };
  remote *r;
  size_t n;
  store_rc rc;

  assert(base_url != NULL && ops != NULL && impl != NULL);
  if (opts == NULL) opts = &defaults;
  if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
    return store_seterr(err, STORE_INVALID,
                        "remote URL must start with http:// or https:// (got \"%s\")",
                        base_url);
  if ((r = calloc(1, sizeof *r)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_init(&r->mu, NULL);
  r->read_only = opts->read_only;
  r->answer_max = opts->max_inflate > DEFAULT_ANSWER_MAX ? opts->max_inflate
                                                         : DEFAULT_ANSWER_MAX;
  r->base = strdup(base_url);
  r->http = store_rhttp_new(opts->timeout_ms > 0 ? opts->timeout_ms : DEFAULT_TIMEOUT,
                            opts->user_agent ? opts->user_agent : "profefs");
  r->bytes = store_rcache_new(BYTES_CACHE_MAX);
  r->metas = store_rcache_new(METAS_CACHE_MAX);
  if (r->base == NULL || r->http == NULL || r->bytes == NULL || r->metas == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto fail;
  }
  n = strlen(r->base);
  while (n > 0 && r->base[n - 1] == '/') r->base[--n] = 0;
  if ((rc = hello(r, err)) != STORE_OK) goto fail;
  *ops = &remote_ops;
  *impl = r;
  return STORE_OK;
fail:
  remote_close(r);
  return rc;
}
