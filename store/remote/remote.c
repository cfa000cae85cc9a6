/*
** remote.c — the store backend that is a client of a profefe/profefs HTTP
** server (libcurl through remote_http.c, JSON through remote_json.c): its
** queries, opening, and the op table.  Per-profile operations are in
** remote_profile.c, the shared state in remote_int.h.
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
** add_service (FUSE mkdir) are remembered locally (never expire).
*/
#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "remote_int.h"
#include "remote_json.h"

#define BYTES_CACHE_MAX  (64u << 20)
#define METAS_CACHE_MAX  (16u << 20)
#define DEFAULT_TIMEOUT  10000L
#define DEFAULT_ANSWER_MAX ((size_t)256 << 20)
/* Seconds during which a derived answer (list, merge) may be reused. */
#define GENERATION_BUCKET 5

/* ---- small helpers ------------------------------------------------------- */

char *store_remote_strfmt(const char *fmt, ...) {
  va_list ap;
  char *s;
  int n;
  va_start(ap, fmt);
  n = vasprintf(&s, fmt, ap);
  va_end(ap);
  return n < 0 ? NULL : s;
}

/* profefe's own time format (UTC); the range is clamped to what it parses. */
void store_remote_time_param(int64_t t, char out[32]) {
  struct tm tm;
  time_t tt;
  if (t < 0) t = 0;
  if (t > 253402300799) t = 253402300799; /* 9999-12-31T23:59:59 */
  tt = (time_t)t;
  gmtime_r(&tt, &tm);
  strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
}

uint64_t store_remote_generation(store_remote *r) {
  struct timespec now;
  uint64_t w;
  pthread_mutex_lock(&r->mu);
  w = r->writes;
  pthread_mutex_unlock(&r->mu);
  /* Monotonic: a clock set back must not bring back an old generation. */
  clock_gettime(CLOCK_MONOTONIC, &now);
  return (uint64_t)(now.tv_sec / GENERATION_BUCKET) << 32 | (w & 0xffffffffu);
}

void store_remote_count_write(store_remote *r, int ingest) {
  pthread_mutex_lock(&r->mu);
  r->writes++;
  if (ingest) r->ingests++;
  pthread_mutex_unlock(&r->mu);
}

/* ---- answers ------------------------------------------------------------- */

/* The store_rc for a non-200 answer, with the server's reason in err.
** on400 is what a 400 means for this request. */
store_rc store_remote_status_rc(const char *what, const store_rhttp_resp *resp,
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
store_rc store_remote_cached_get(store_remote *r, const char *key, uint64_t gen,
                                 const char *url, store_rhttp_resp *out,
                                 char *err) {
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

/* ---- queries ------------------------------------------------------------- */

/* URL of path with the query of q (find and merge take the same one). */
static char *query_url(store_remote *r, const char *path, const store_query *q) {
  char from[32], to[32], limit[32] = "";
  char *svc = store_rhttp_escape(q->service), *labels = NULL, *url = NULL;

  if (svc == NULL) goto out;
  if (q->labels != NULL && q->labels[0] != 0 &&
      (labels = store_rhttp_escape(q->labels)) == NULL)
    goto out;
  store_remote_time_param(q->from, from);
  store_remote_time_param(q->to, to);
  if (q->limit > 0) snprintf(limit, sizeof limit, "&limit=%ld", q->limit);
  url = store_remote_strfmt("%s%s?service=%s&type=%s&from=%s&to=%s%s%s%s",
                            r->base, path, svc,
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

store_rc store_remote_find(void *impl, const store_query *q,
                            store_meta_list *out, char *err) {
  store_remote *r = impl;
  store_rhttp_resp resp = { 0 };
  store_meta_list l = { 0 };
  char *url = query_url(r, "/api/0/profiles", q), *key = NULL;
  store_rc rc;

  if (url == NULL || (key = store_remote_strfmt("L %s", url)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  rc = store_remote_cached_get(r, key, store_remote_generation(r), url, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 404 || resp.status == 204) { /* profefe's "nothing found" */
    *out = l;
    goto out;
  }
  if (resp.status != 200) {
    rc = store_remote_status_rc("find", &resp, STORE_INVALID, err);
    goto out;
  }
  if ((rc = store_rjson_meta_list(resp.body, resp.len, &l, err)) != STORE_OK) goto out;
  for (size_t i = 0; i < l.n; i++) {
    store_meta known;
    if (store_remote_meta_get(r, store_meta_id(&l.v[i]), &known)) {
      l.v[i].size = known.size;
      store_meta_clear(&known);
    }
    store_remote_meta_put(r, &l.v[i]);
  }
  if (l.n > 1) qsort(l.v, l.n, sizeof *l.v, meta_cmp);
  *out = l;
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  free(key);
  return rc;
}


/* ---- services ------------------------------------------------------------ */

static int name_cmp(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Appends copies of the locally added services to v[0..*n) (room for them
** was made by the caller), then sorts and removes duplicates. */
static store_rc add_local_names(store_remote *r, char **v, size_t *n, size_t room) {
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

store_rc store_remote_services(void *impl, char ***names, size_t *n, char *err) {
  store_remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char *url = store_remote_strfmt("%s/api/0/services", r->base);
  char **got = NULL, **v = NULL;
  size_t ngot = 0, nv = 0, room;
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_remote_cached_get(r, "S", store_remote_generation(r), url, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200) {
    if ((rc = store_rjson_names(resp.body, resp.len, &got, &ngot, err)) != STORE_OK)
      goto out;
  } else if (resp.status != 404 && resp.status != 204) { /* none yet */
    rc = store_remote_status_rc("services", &resp, STORE_IO, err);
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
  store_remote *r = impl;
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

/* ---- merges -------------------------------------------------------------- */

/* GETs a merge url (cached for the current generation) into *out and *len. */
static store_rc get_merge(store_remote *r, const char *url, void **out, size_t *len,
                          char *err) {
  store_rhttp_resp resp = { 0 };
  char *key = store_remote_strfmt("M %s", url);
  store_rc rc;

  if (key == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_remote_cached_get(r, key, store_remote_generation(r), url, &resp, err);
  free(key);
  if (rc != STORE_OK) return rc;
  if (resp.status == 204) { /* profefe: "profile empty" */
    store_rhttp_resp_clear(&resp);
    return store_seterr(err, STORE_NOTFOUND, "nothing found");
  }
  if (resp.status != 200) {
    rc = store_remote_status_rc("merge", &resp, STORE_MISMATCH, err);
    store_rhttp_resp_clear(&resp);
    return rc;
  }
  *out = resp.body;
  *len = resp.len;
  return STORE_OK;
}

static store_rc remote_merge(void *impl, const store_query *q, void **out,
                             size_t *len, size_t *count, char *err) {
  store_remote *r = impl;
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
    *count = store_remote_find(r, q, &l, NULL) == STORE_OK ? l.n : 0;
    store_meta_list_free(&l);
  }
  return rc;
}

static store_rc remote_merge_ids(void *impl, const char *const *ids, size_t n,
                                 void **out, size_t *len, char *err) {
  store_remote *r = impl;
  char *url = store_remote_strfmt("%s/api/0/profiles/", r->base), *e, *u;
  store_rc rc;

  /* each id path-escaped ('+' too: it joins them) */
  for (size_t i = 0; url != NULL && i < n; i++) {
    e = store_rhttp_escape(ids[i]);
    u = e != NULL ? store_remote_strfmt("%s%s%s", url, i ? "+" : "", e) : NULL;
    free(url);
    free(e);
    url = u;
  }
  if (url == NULL)
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
  else
    rc = get_merge(r, url, out, len, err);
  free(url);
  return rc;
}

/* ---- derived answers ----------------------------------------------------- */

static store_rc remote_label_sets(void *impl, const char *service,
                                  meta_type type, char ***sets, size_t *n,
                                  char *err) {
  store_remote *r = impl;
  /* All of time: label directories must exist for old profiles too. */
  store_query q = { .service = service, .type = type, .from = 0,
                    .to = (int64_t)time(NULL) + 366 * 86400 };
  store_meta_list l = { 0 };
  char **v = NULL;
  size_t k = 0, w = 0;
  store_rc rc;

  if ((rc = store_remote_find(r, &q, &l, err)) != STORE_OK) return rc;
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
  return store_remote_generation(impl);
}

static store_rc remote_stats(void *impl, store_stats *out) {
  store_remote *r = impl;
  store_stats s = { -1, -1, -1, 0, -1, -1, -1, -1, -1, -1, -1, -1 };
  pthread_mutex_lock(&r->mu);
  s.ingests = r->ingests;
  pthread_mutex_unlock(&r->mu);
  *out = s;
  return STORE_OK;
}

/* ---- opening and closing ------------------------------------------------- */

static void remote_close(void *impl) {
  store_remote *r = impl;
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
  .ingest = store_remote_ingest,
  .find = store_remote_find,
  .get = store_remote_get,
  .stat = store_remote_stat,
  .merge = remote_merge,
  .merge_ids = remote_merge_ids,
  .services = store_remote_services,
  .add_service = remote_add_service,
  .label_sets = remote_label_sets,
  .del = store_remote_del,
  .retain = NULL, /* the server runs its own retention */
  .generation = remote_generation,
  .stats = remote_stats,
  .stat_named = store_remote_stat_named,
  .id_valid = store_rjson_id_valid,
};

/* Fails early when nothing (or no profefe) answers at the URL. */
static store_rc hello(store_remote *r, char *err) {
  store_rhttp_resp resp = { 0 };
  char *url = store_remote_strfmt("%s/api/0/version", r->base);
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
  store_remote *r;
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
