/*
** api.c — routing and the endpoints of the profefe API (DESIGN.md, "HTTP
** API"): checks the query, calls the store, and turns the answer into a
** reply.  Error strings follow profefe's ("bad request: ...", "nothing
** found", "malformed profile (...)"); httpd_status_of() is the only place
** where a store_rc becomes an HTTP status.
**
** Handlers run in the connection's own thread and may block on the store.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <microhttpd.h>

#include "internal.h"

#define PROFILES_PATH "/api/0/profiles"
#define MALFORMED "malformed profile"

unsigned httpd_status_of(store_rc rc)
{
  switch (rc) {
  case STORE_OK:
    return 200;
  case STORE_NOTFOUND:
    return 404;
  case STORE_INVALID:
  case STORE_BADPROFILE:
  case STORE_MISMATCH:
  case STORE_TOOBIG: /* the inflated profile is over the store's limit */
    return 400;
  case STORE_UNSUPPORTED:
    return 405;
  case STORE_READONLY:
    return 403;
  case STORE_NOSPACE:
    return 507;
  case STORE_BUSY:
  case STORE_UNAVAILABLE: /* S3 down: the client may retry */
    return 503;
  case STORE_IO:
  case STORE_NOMEM:
  default:
    return 500;
  }
}

/* The error reply of a failed store call, phrased like profefe's.  The
** reason of a server-side failure (5xx) goes to the log only: it names the
** server's files (the data directory, the database), which are none of a
** client's business; the client gets a fixed text per kind. */
static void reply_store_error(httpd_reply *out, store_rc rc, const char *err)
{
  unsigned status = httpd_status_of(rc);
  const char *why = (err != NULL && *err) ? err : store_strerror(rc);

  if (status >= 500)
    fprintf(stderr, "httpd: %u: %s\n", status, why);
  switch (rc) {
  case STORE_NOSPACE:
    httpd_reply_error(out, status, "cannot store: no space left on the "
                                   "server's disk");
    break;
  case STORE_BUSY:
    httpd_reply_error(out, status, "server busy: memory budget exhausted, "
                                   "retry later");
    break;
  case STORE_NOMEM:
    httpd_reply_error(out, status, "server out of memory");
    break;
  case STORE_IO:
    httpd_reply_error(out, status, "internal error: the store failed (the "
                                   "server's log has the reason)");
    break;
  case STORE_NOTFOUND: /* profefe's words, then what was not there */
    if (err != NULL && *err)
      httpd_reply_error(out, status, "nothing found: %s", err);
    else
      httpd_reply_error(out, status, "nothing found");
    break;
  case STORE_INVALID:
    httpd_reply_error(out, status, "bad request: %s", why);
    break;
  case STORE_BADPROFILE:
  case STORE_TOOBIG:
    if (strncmp(why, MALFORMED, strlen(MALFORMED)) == 0)
      httpd_reply_error(out, status, "%s", why);
    else
      httpd_reply_error(out, status, MALFORMED " (%s)", why);
    break;
  default:
    httpd_reply_error(out, status, "%s", why);
    break;
  }
}

void httpd_reply_store_error(httpd_reply *out, store_rc rc, const char *err)
{
  reply_store_error(out, rc, err);
}

/* ---- query parameters ------------------------------------------------------- */

/* The non-empty argument key, or NULL after replying 400. */
static const char *required_arg(httpd_req *r, const char *key,
                                httpd_reply *out)
{
  const char *v = httpd_req_arg(r, key);

  if (v == NULL || *v == '\0') {
    httpd_reply_error(out, 400, "bad request: missing \"%s\"", key);
    return NULL;
  }
  return v;
}

/* service and type (both required); 0, or -1 after replying 400. */
static int service_type_args(httpd_req *r, const char **service,
                             meta_type *type, httpd_reply *out)
{
  const char *s, *t, *why;
  int ty;

  if ((s = required_arg(r, "service", out)) == NULL ||
      (t = required_arg(r, "type", out)) == NULL)
    return -1;
  if ((why = meta_service_why(s)) != NULL) {
    httpd_reply_error(out, 400, "bad request: invalid service \"%.64s%s\": %s",
                      s, strlen(s) > 64 ? "..." : "", why);
    return -1;
  }
  if ((ty = meta_type_parse(t)) < 0) {
    httpd_reply_error(out, 400, "bad request: unknown type \"%s\"", t);
    return -1;
  }
  *service = s;
  *type = (meta_type)ty;
  return 0;
}

/* meta_labels_foreach callback: 1 at the first key or value (as unescaped
** by meta) that is not UTF-8. */
static int label_not_utf8(const char *key, const char *value, void *arg)
{
  (void)arg;
  return !httpd_utf8_valid(key, strlen(key)) ||
         !httpd_utf8_valid(value, strlen(value));
}

/* The canonical labels of the optional argument "labels" in *labels
** (malloc'd, "" when absent); 0, or -1 after replying 400. */
static int labels_arg(httpd_req *r, char **labels, httpd_reply *out)
{
  char why[META_ERRMAX] = "", *canon = NULL;
  const char *v = httpd_req_arg(r, "labels");

  if (meta_labels_parse(v ? v : "", &canon, why) != 0) {
    if (why[0] != '\0') /* meta's reason quotes the labels */
      httpd_reply_error(out, 400, "bad request: invalid labels: %s", why);
    else
      httpd_reply_error(out, 400, "bad request: invalid labels \"%s\"", v);
    return -1;
  }
  /* the query was UTF-8 (req_check), but a %-escape inside a label may not
  ** be, and JSON replies could not carry it */
  if (meta_labels_foreach(canon, label_not_utf8, NULL) != 0) {
    httpd_reply_error(out, 400, "bad request: invalid labels \"%s\" "
                      "(not UTF-8 once unescaped)", v);
    free(canon);
    return -1;
  }
  *labels = canon;
  return 0;
}

/* The time argument key (required when required is set, else 0 when
** absent); 0, or -1 after replying 400. */
static int time_arg(httpd_req *r, const char *key, int required,
                    int64_t *out_t, httpd_reply *out)
{
  const char *v = httpd_req_arg(r, key);

  if (!required && (v == NULL || *v == '\0')) {
    *out_t = 0;
    return 0;
  }
  if (required && required_arg(r, key, out) == NULL)
    return -1;
  if (meta_time_parse(v, (int64_t)time(NULL), out_t) != 0) {
    httpd_reply_error(out, 400, "bad request: invalid %s \"%s\"", key, v);
    return -1;
  }
  return 0;
}

/* The query of GET /api/0/profiles and /merge in q; q->labels points to
** *labels (caller frees).  0, or -1 after replying 400. */
static int query_args(httpd_req *r, store_query *q, char **labels,
                      httpd_reply *out)
{
  const char *lim;
  char *end;
  long n = 0;

  memset(q, 0, sizeof *q);
  if (service_type_args(r, &q->service, &q->type, out) ||
      time_arg(r, "from", 1, &q->from, out) ||
      time_arg(r, "to", 1, &q->to, out))
    return -1;
  if (q->from > q->to) {
    httpd_reply_error(out, 400, "bad request: \"from\" is after \"to\"");
    return -1;
  }
  lim = httpd_req_arg(r, "limit");
  if (lim != NULL && *lim != '\0') {
    errno = 0;
    n = strtol(lim, &end, 10);
    if (errno != 0 || *end != '\0' || n < 0) {
      httpd_reply_error(out, 400, "bad request: invalid limit \"%s\"", lim);
      return -1;
    }
  }
  q->limit = n;
  if (labels_arg(r, labels, out))
    return -1;
  q->labels = *labels;
  return 0;
}

/* ---- handlers ------------------------------------------------------------------ */

/* POST /api/0/profiles, called with the headers: checks the query and keeps
** it in r; a bad query is answered once the body has been read. */
static void ingest_begin(httpd_req *r)
{
  const char *service;
  meta_type type;

  if (service_type_args(r, &service, &type, &r->reply) ||
      labels_arg(r, &r->labels, &r->reply) ||
      time_arg(r, "created_at", 0, &r->created_at, &r->reply))
    return;
  r->type = (int)type;
  if ((r->service = strdup(service)) == NULL)
    httpd_reply_error(&r->reply, 500, "out of memory");
}

/* POST /api/0/profiles, called with the whole body. */
static void api_ingest(httpd_req *r, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "";
  store_meta m;
  store_rc rc;

  memset(&m, 0, sizeof m);
  rc = store_ingest(httpd_store(r->h), r->service, (meta_type)r->type,
                    r->labels, r->created_at, r->body, r->len, &m, err);
  if (rc != STORE_OK) {
    reply_store_error(out, rc, err);
    return;
  }
  httpd_metrics_ingest(httpd_get_metrics(r->h), r->len);
  httpd_reply_json(out, 200, httpd_json_meta(&m));
  /* profefe's body stays as it is; the header says whether this request
  ** stored the profile or found it stored (a repeat's sender must not
  ** take it for its own: `mount --remote` reads it) */
  if (m.ingested != STORE_INGESTED_UNKNOWN)
    out->ingested = m.ingested == STORE_INGESTED_NEW ? "new" : "existing";
  store_meta_clear(&m);
}

/* GET /api/0/profiles?service&type&from&to[&labels][&limit] */
static void api_find(httpd_req *r, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "", *labels = NULL;
  store_meta_list list = {0, NULL};
  store_query q;
  json_t *arr;
  store_rc rc;
  size_t i;

  if (query_args(r, &q, &labels, out))
    goto out;
  rc = store_find(httpd_store(r->h), &q, &list, err);
  if (rc == STORE_OK && list.n == 0) {
    rc = STORE_NOTFOUND;
    store_explain_empty(httpd_store(r->h), &q, err);
  }
  if (rc != STORE_OK) {
    reply_store_error(out, rc, err);
    goto out;
  }
  arr = json_array();
  for (i = 0; arr != NULL && i < list.n; i++) {
    if (json_array_append_new(arr, httpd_json_meta(&list.v[i])) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  httpd_reply_json(out, 200, arr);
out:
  store_meta_list_free(&list);
  free(labels);
}

/* Runs a merge with its time counted in the metrics. */
static store_rc timed_merge(httpd_req *r, const store_query *q,
                            const char *const *ids, size_t n, void **data,
                            size_t *len, char *err)
{
  int64_t t0 = httpd_now_us();
  store_rc rc;

  if (q != NULL)
    rc = store_merge(httpd_store(r->h), q, data, len, NULL, err);
  else
    rc = store_merge_ids(httpd_store(r->h), ids, n, data, len, err);
  httpd_metrics_merge(httpd_get_metrics(r->h),
                      (double)(httpd_now_us() - t0) / 1e6);
  return rc;
}

/* GET /api/0/profiles/merge?service&type&from&to[&labels][&limit]
** [&format][&sample] */
static void api_merge(httpd_req *r, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "", *labels = NULL, *title = NULL;
  void *data = NULL;
  size_t len = 0;
  store_query q;
  store_rc rc;
  view_format f;

  if (httpd_view_format(r, &f, out) || query_args(r, &q, &labels, out))
    goto out;
  if (q.type == META_TRACE) {
    httpd_reply_error(out, 405, "tracing profiles are not mergeable");
    goto out;
  }
  rc = timed_merge(r, &q, NULL, 0, &data, &len, err);
  if (rc != STORE_OK) {
    reply_store_error(out, rc, err);
    goto out;
  }
  title = f == VIEW_SVG ? view_title(q.service, meta_type_name(q.type),
                                     q.labels, 0, 0, 0, q.from, q.to)
                       : NULL;
  httpd_reply_view(r, out, f, data, len, meta_type_name(q.type), title);
out:
  free(title);
  free(labels);
}

/* Appends a copy of s[0..n) to v (room for it made here).  0, or -1 when
** out of memory. */
static int push_id(char ***v, size_t *cnt, size_t *cap, const char *s, size_t n)
{
  char **nv;

  if (*cnt == *cap) {
    if ((nv = realloc(*v, (*cap ? 2 * *cap : 8) * sizeof *nv)) == NULL)
      return -1;
    *v = nv;
    *cap = *cap ? 2 * *cap : 8;
  }
  if (((*v)[*cnt] = strndup(s, n)) == NULL)
    return -1;
  (*cnt)++;
  return 0;
}

/* Where the ids begin in the raw (escaped) path: after as many characters
** as PROFILES_PATH "/" has once unescaped. */
static const char *raw_ids(const char *raw)
{
  size_t skip = strlen(PROFILES_PATH "/");

  while (skip > 0 && *raw) {
    raw += raw[0] == '%' && raw[1] && raw[2] ? 3 : 1;
    skip--;
  }
  return raw;
}

/* Splits the ids of "id1+id2+..." into *ids (malloc'd array of malloc'd
** strings).  The split is on the raw path, so that an id holding a '+' (an
** S3 key with such a label, sent path-escaped as %2B) stays whole; a part
** that is no id of the store once unescaped is split on ' ' and '+', as
** clients that join ids with %20 or %2B need.  0, or -1 after replying 400 / 500. */
static int split_ids(const httpd_req *r, char ***ids, size_t *n,
                     httpd_reply *out)
{
  const store *st = httpd_store(r->h);
  const char *p = raw_ids(r->raw_path);
  char **v = NULL, *part = NULL;
  size_t cnt = 0, cap = 0, k, len, j;

  while (*p) {
    k = strcspn(p, "+");
    if ((part = strndup(p, k)) == NULL)
      goto oom;
    len = MHD_http_unescape(part);
    while (len > 0 && part[len - 1] == '/') /* as the path's trailing '/' */
      part[--len] = '\0';
    if (len > 0 && store_id_valid(st, part)) {
      if (push_id(&v, &cnt, &cap, part, len))
        goto oom;
    } else {
      for (j = 0; j < len; j += k) {
        j += strspn(part + j, " +");
        k = strcspn(part + j, " +");
        if (k == 0)
          continue;
        if (push_id(&v, &cnt, &cap, part + j, k))
          goto oom;
        if (!store_id_valid(st, v[cnt - 1])) {
          httpd_reply_error(out, 400, "bad profile id \"%.200s\"", v[cnt - 1]);
          goto fail;
        }
      }
    }
    free(part);
    part = NULL;
    p += k = strcspn(p, "+");
    p += strspn(p, "+");
  }
  if (cnt == 0) {
    httpd_reply_error(out, 400, "no profile id");
    goto fail;
  }
  *ids = v;
  *n = cnt;
  return 0;
oom:
  httpd_reply_error(out, 500, "out of memory");
fail:
  free(part);
  store_names_free(v, cnt);
  return -1;
}

/* GET /api/0/profiles/<id>: the stored bytes;
** GET /api/0/profiles/<id1>+<id2>+...: those profiles merged;
** either with [&format][&sample]. */
static void api_get(httpd_req *r, httpd_reply *out)
{
  const char *rest = r->path + strlen(PROFILES_PATH "/");
  char err[STORE_ERRMAX] = "", **ids = NULL;
  void *data = NULL;
  size_t n = 0, len = 0;
  store_rc rc;
  view_format f;

  if (httpd_view_format(r, &f, out) || split_ids(r, &ids, &n, out))
    return;
  if (n == 1)
    rc = store_get(httpd_store(r->h), ids[0], NULL, &data, &len, err);
  else
    rc = timed_merge(r, NULL, (const char *const *)ids, n, &data, &len, err);
  if (rc != STORE_OK) /* of several ids, err names the missing one */
    reply_store_error(out, rc, err);
  else
    httpd_reply_view(r, out, f, data, len, rest, rest);
  store_names_free(ids, n);
}

/* DELETE /api/0/profiles/<id> (a profefs extension). */
static void api_delete(httpd_req *r, httpd_reply *out)
{
  const char *id = r->path + strlen(PROFILES_PATH "/");
  char err[STORE_ERRMAX] = "";
  store_rc rc;

  if (!store_id_valid(httpd_store(r->h), id)) {
    httpd_reply_error(out, 400, "bad profile id \"%s\"", id);
    return;
  }
  rc = store_delete(httpd_store(r->h), id, err);
  if (rc != STORE_OK) {
    reply_store_error(out, rc, err);
    return;
  }
  httpd_reply_json(out, 200, json_pack("{s:s}", "id", id));
}

/* Replies 200 with the names as a JSON array, 404 when there are none,
** or the store's error; frees the names. */
static void reply_names(httpd_reply *out, store_rc rc, const char *err,
                        char **names, size_t n)
{
  size_t i;
  json_t *arr;

  if (rc == STORE_OK && n == 0)
    rc = STORE_NOTFOUND;
  if (rc != STORE_OK) {
    reply_store_error(out, rc, err);
    goto out;
  }
  arr = json_array();
  for (i = 0; arr != NULL && i < n; i++) {
    if (json_array_append_new(arr, httpd_json_string(names[i])) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  httpd_reply_json(out, 200, arr);
out:
  store_names_free(names, n);
}

/* GET /api/0/services */
static void api_services(httpd_req *r, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "", **names = NULL;
  size_t n = 0;
  store_rc rc = store_services(httpd_store(r->h), &names, &n, err);

  reply_names(out, rc, err, names, n);
}

#define LABELS_PATH "/api/0/labels"
#define VALUES_SUFFIX "/values"

/* GET /api/0/labels?service&type: the label keys of service/type, read
** from the store's index of label pairs (not from every label set). */
static void api_label_keys(httpd_req *r, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "", **names = NULL;
  size_t n = 0;
  const char *service;
  meta_type type;
  store_rc rc;

  if (service_type_args(r, &service, &type, out))
    return;
  rc = store_label_keys(httpd_store(r->h), service, type, &names, &n, err);
  reply_names(out, rc, err, names, n);
}

/* GET /api/0/labels/<key>/values?service&type[&from][&to]: the values of
** key among the profiles created in [from, to] (default: all time). */
static void api_label_values(httpd_req *r, httpd_reply *out)
{
  const char *key = r->path + strlen(LABELS_PATH "/");
  size_t kn = strlen(key), sn = strlen(VALUES_SUFFIX);
  char err[STORE_ERRMAX] = "", **names = NULL, *k = NULL;
  size_t n = 0;
  const char *service;
  meta_type type;
  int64_t from, to;
  store_rc rc;

  if (kn <= sn || strcmp(key + kn - sn, VALUES_SUFFIX) != 0) {
    httpd_reply_error(out, 404, "unknown path \"%s\"", r->path);
    return;
  }
  if (service_type_args(r, &service, &type, out) ||
      time_arg(r, "from", 0, &from, out) || time_arg(r, "to", 0, &to, out))
    return;
  if (httpd_req_arg(r, "to") == NULL || *httpd_req_arg(r, "to") == '\0')
    to = INT64_MAX;
  if (from > to) {
    httpd_reply_error(out, 400, "bad request: \"from\" is after \"to\"");
    return;
  }
  if ((k = strndup(key, kn - sn)) == NULL) {
    httpd_reply_error(out, 500, "out of memory");
    return;
  }
  rc = store_label_values(httpd_store(r->h), service, type, k, from, to,
                          &names, &n, err);
  free(k);
  reply_names(out, rc, err, names, n);
}

/* GET /api/0/version */
static void api_version(httpd_req *r, httpd_reply *out)
{
  const httpd_options *o = httpd_get_options(r->h);

  httpd_reply_json(out, 200,
                   json_pack("{s:s,s:s,s:s}",
                             "version", o->version ? o->version : "unknown",
                             "commit", o->commit ? o->commit : "unknown",
                             "build_time",
                             o->build_time ? o->build_time : "unknown"));
}

/* GET /debug/metrics */
static void api_metrics(httpd_req *r, httpd_reply *out)
{
  char *text = NULL;
  size_t len = 0;

  if (httpd_metrics_render(httpd_get_metrics(r->h), httpd_store(r->h),
                           httpd_get_options(r->h)->budget, &text,
                           &len) != 0) {
    httpd_reply_error(out, 500, "out of memory");
    return;
  }
  httpd_reply_clear(out);
  out->status = 200;
  out->content_type = "text/plain; version=0.0.4; charset=utf-8";
  out->body = text;
  out->len = len;
}

/* ---- shared with views.c (internal.h) ------------------------------------------ */

int httpd_query_args(httpd_req *r, store_query *q, char **labels,
                     httpd_reply *out)
{
  return query_args(r, q, labels, out);
}

int httpd_time_arg(httpd_req *r, const char *key, int required,
                   int64_t *out_t, httpd_reply *out)
{
  return time_arg(r, key, required, out_t, out);
}

store_rc httpd_timed_merge(httpd_req *r, const store_query *q,
                           const char *const *ids, size_t n, void **data,
                           size_t *len, char *err)
{
  return timed_merge(r, q, ids, n, data, len, err);
}

/* ---- routing ----------------------------------------------------------------- */

typedef struct route {
  const char *path;
  int prefix;                    /* matches path followed by anything */
  httpd_handler get;             /* GET and HEAD */
  httpd_handler post;            /* called once the body has been read */
  void (*post_begin)(httpd_req *); /* called with the headers */
  httpd_handler del;
  const char *allow;             /* the Allow header of a 405 */
} route;

/* First match wins: the exact merge path comes before the id prefix. */
static const route routes[] = {
  {PROFILES_PATH, 0, api_find, api_ingest, ingest_begin, NULL,
   "GET, HEAD, POST"},
  {PROFILES_PATH "/merge", 0, api_merge, NULL, NULL, NULL, "GET, HEAD"},
  {PROFILES_PATH "/diff", 0, httpd_api_diff, NULL, NULL, NULL, "GET, HEAD"},
  {PROFILES_PATH "/", 1, api_get, NULL, NULL, api_delete,
   "GET, HEAD, DELETE"},
  {"/api/0/services", 0, api_services, NULL, NULL, NULL, "GET, HEAD"},
  {LABELS_PATH, 0, api_label_keys, NULL, NULL, NULL, "GET, HEAD"},
  {LABELS_PATH "/", 1, api_label_values, NULL, NULL, NULL, "GET, HEAD"},
  {"/api/0/version", 0, api_version, NULL, NULL, NULL, "GET, HEAD"},
  {"/debug/metrics", 0, api_metrics, NULL, NULL, NULL, "GET, HEAD"},
  {"/v1development/profiles", 0, NULL, httpd_otlp_export, httpd_otlp_begin,
   NULL, "POST"},
  /* the doors of other agents (pyroscope.c) */
  {"/ingest", 0, NULL, httpd_pyroscope_ingest, NULL, NULL, "POST"},
  {"/push.v1.PusherService/Push", 0, NULL, httpd_pyroscope_push,
   httpd_pyroscope_push_begin, NULL, "POST"},
  /* the web page (web.c) */
  {"/", 0, httpd_web_get, NULL, NULL, NULL, "GET, HEAD"},
  {"/ui/", 1, httpd_web_get, NULL, NULL, NULL, "GET, HEAD"},
};

static const route *find_route(const char *path)
{
  size_t i, n;

  for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
    n = strlen(routes[i].path);
    if (routes[i].prefix ? strncmp(path, routes[i].path, n) == 0
                         : strcmp(path, routes[i].path) == 0)
      return &routes[i];
  }
  return NULL;
}

void httpd_api_route(httpd_req *r)
{
  const route *rt = find_route(r->path);
  const char *m = r->method;

  if (rt == NULL) {
    httpd_reply_error(&r->reply, 404, "unknown path \"%s\"", r->path);
  } else if ((strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0) && rt->get) {
    r->handler = rt->get;
  } else if (strcmp(m, "POST") == 0 && rt->post) {
    r->handler = rt->post;
    r->wants_body = 1;
    if (rt->post_begin)
      rt->post_begin(r);
  } else if (strcmp(m, "DELETE") == 0 && rt->del) {
    r->handler = rt->del;
  } else {
    httpd_reply_error(&r->reply, 405, "method %s not allowed on %s", m,
                      r->path);
    r->reply.allow = rt->allow;
  }
}
