/*
** pyroscope.c — the doors of Grafana Pyroscope's agents, thin adapters onto
** the one ingest path (store_ingest: validation, budget, idempotency, group
** commit, every backend):
**
**   POST /ingest?name=app.cpu{k=v}&from&until&format&sampleRate&spyName&units
**        Pyroscope's HTTP ingest: format=pprof (raw, gzip or not, or
**        multipart/form-data with the fields "profile" and
**        "sample_type_config"), folded (the default) and lines.  Errors as
**        the profefe API's ({"code":N,"error":"..."}), which Pyroscope's
**        SDKs only log.
**   POST /push.v1.PusherService/Push
**        the Connect push (unary; application/proto or application/json):
**        each series' labels give the service (service_name), the type
**        (__name__) and labels; each raw sample is a pprof.  Answered as
**        Connect answers: an empty PushResponse, or a Connect error
**        {"code":"invalid_argument","message":"..."} with its HTTP status,
**        also for the errors httpd.c decides before the handler (413, 503).
**
** What is parsed here is the transport (query, headers); the formats
** themselves are ingest/'s (ingest.h), shared with other doors.
*/
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <microhttpd.h>

#include "ingest.h"
#include "internal.h"
#include "pprof.h"

#define SPY_KEY "pyroscope_spy"

/* ---- shared ---------------------------------------------------------------------- */

/* Adds (key, value) to l when both are UTF-8 (replies carry labels as
** JSON); 0, or -1 with a reason in err. */
static int add_label(ingest_labels *l, const char *key, const char *value,
                     char *err) {
  size_t kl = strlen(key), vl = strlen(value);
  if (!httpd_utf8_valid(key, kl) || !httpd_utf8_valid(value, vl)) {
    snprintf(err, INGEST_ERRMAX, "label \"%s\" is not UTF-8", key);
    return -1;
  }
  if (ingest_labels_add(l, key, kl, value, vl) != 0) {
    snprintf(err, INGEST_ERRMAX, "labels too long");
    return -1;
  }
  return 0;
}

/* What picks the type of a pprof from its sample types, in store_ingest_
** picked (the profile is decoded once): Pyroscope's rule with the
** display names of a sample_type_config, the label sample_type=NAME added
** to labels when it maps to none. */
typedef struct pick_arg {
  const ingest_display *disp;
  size_t ndisp;
  const char *labels; /* canonical */
} pick_arg;

static int pick_type(const char *types, void *arg, meta_type *type,
                     char **labels) {
  const pick_arg *a = arg;
  char other[128] = "", *extra = NULL;
  const char *key = INGEST_OTHER_KEY, *value = other;

  *type = ingest_type_of_types(types, a->disp, a->ndisp, other, sizeof other);
  if (*type != META_OTHER) return 0;
  if (meta_labels_from_pairs(&key, &value, 1, &extra, NULL) != 0) return -1;
  *labels = meta_labels_union(a->labels, extra);
  free(extra);
  return *labels != NULL ? 0 : -1;
}

/* ---- POST /ingest ---------------------------------------------------------------- */

/* The display names of a sample_type_config ({"contentions":
** {"display-name": "mutex_count"}, ...}) into *out (pointing into cfg);
** 0, or -1 when it is not such a JSON object. */
static int display_names(json_t *cfg, ingest_display **out, size_t *n) {
  const char *k;
  json_t *v;
  size_t i = 0;
  ingest_display *d;

  if (!json_is_object(cfg)) return -1;
  d = calloc(json_object_size(cfg) + 1, sizeof *d);
  if (d == NULL) return -1;
  json_object_foreach(cfg, k, v) {
    json_t *dn = json_object_get(v, "display-name");
    if (!json_is_object(v)) {
      free(d);
      return -1;
    }
    if (json_is_string(dn)) {
      d[i].sample_type = k;
      d[i++].display = json_string_value(dn);
    }
  }
  *out = d;
  *n = i;
  return 0;
}

/* An integer argument in [1, max] (def when absent); 0, or -1 after
** replying 400. */
static int int_arg(httpd_req *r, const char *key, long def, long max, long *v,
                   httpd_reply *out) {
  const char *s = httpd_req_arg(r, key);
  char *end;
  if (s == NULL || *s == '\0') {
    *v = def;
    return 0;
  }
  errno = 0;
  *v = strtol(s, &end, 10);
  if (errno != 0 || *end != '\0' || *v < 1 || *v > max) {
    httpd_reply_error(out, 400, "bad request: invalid %s \"%s\"", key, s);
    return -1;
  }
  return 0;
}

/* A time argument (unix seconds as Pyroscope sends, or what
** meta_time_parse reads), 0 when absent; 0, or -1 after replying 400. */
static int time_arg(httpd_req *r, const char *key, int64_t *t,
                    httpd_reply *out) {
  const char *s = httpd_req_arg(r, key);
  *t = 0;
  if (s == NULL || *s == '\0') return 0;
  if (meta_time_parse(s, (int64_t)time(NULL), t) != 0) {
    httpd_reply_error(out, 400, "bad request: invalid %s \"%s\"", key, s);
    return -1;
  }
  return 0;
}

/* Stores one profile of type type, or of the type its sample types give
** when pick is not NULL (pick->labels is then set here), and replies as
** the profefe API does. */
static void ingest_one(httpd_req *r, const char *service, meta_type type,
                       pick_arg *pick, ingest_labels *l, int64_t created,
                       const void *data, size_t len, httpd_reply *out) {
  char err[STORE_ERRMAX] = "", *canon = NULL;
  store_meta m;
  store_rc rc;

  memset(&m, 0, sizeof m);
  if (ingest_labels_canonical(l, &canon, err) != 0) {
    httpd_reply_error(out, 400, "bad request: %s", err);
    return;
  }
  if (pick != NULL) {
    pick->labels = canon;
    rc = store_ingest_picked(httpd_store(r->h), service, pick_type, pick,
                             canon, created, data, len, &m, err);
  } else {
    rc = store_ingest(httpd_store(r->h), service, type, canon, created, data,
                      len, &m, err);
  }
  free(canon);
  if (rc != STORE_OK) {
    httpd_reply_store_error(out, rc, err);
    return;
  }
  httpd_metrics_ingest(httpd_get_metrics(r->h), len);
  httpd_reply_json(out, 200, httpd_json_meta(&m));
  store_meta_clear(&m);
}

/* format=pprof: the body, or the multipart field "profile". */
static void ingest_pprof(httpd_req *r, ingest_name *n, int64_t from,
                         httpd_reply *out) {
  const char *ctype = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *data = r->body, *cfg_text;
  size_t len = r->len, cfg_len, ndisp = 0;
  ingest_display *disp = NULL;
  json_t *cfg = NULL;
  char err[INGEST_ERRMAX] = "";
  pick_arg pick;
  int rc;

  if (ingest_multipart_is(ctype)) {
    rc = ingest_multipart_field(r->body, r->len, ctype, "profile", &data, &len,
                                err);
    if (rc != 0) {
      httpd_reply_error(out, 400, "bad request: %s", rc > 0 ?
                        "multipart body without a \"profile\" field" : err);
      goto out;
    }
    rc = ingest_multipart_field(r->body, r->len, ctype, "sample_type_config",
                                &cfg_text, &cfg_len, err);
    if (rc == 0) {
      json_error_t je;
      cfg = json_loadb(cfg_text, cfg_len, 0, &je);
      if (cfg == NULL || display_names(cfg, &disp, &ndisp) != 0) {
        httpd_reply_error(out, 400, "bad request: sample_type_config is not "
                          "a JSON object of objects");
        goto out;
      }
    }
  }
  pick.disp = disp;
  pick.ndisp = ndisp;
  ingest_one(r, n->service, META_OTHER, &pick, n->labels, from, data, len,
             out);
out:
  free(disp);
  json_decref(cfg);
}

/* format=folded or lines: the stacks become a pprof. */
static void ingest_stacks(httpd_req *r, ingest_name *n, int lines,
                          int64_t from, int64_t until, httpd_reply *out) {
  ingest_stacks_opts o = {.lines = lines, .type_name = n->type_name,
                          .units = httpd_req_arg(r, "units"),
                          .from = from, .until = until};
  char err[INGEST_ERRMAX] = "";
  void *pb = NULL;
  size_t len = 0;
  int busy = 0;

  if (int_arg(r, "sampleRate", 100, 1000000000, &o.sample_rate, out) != 0)
    return;
  if (ingest_stacks_to_pprof(r->body, r->len, &o,
                             httpd_get_options(r->h)->budget, &pb, &len,
                             &busy, err) != 0) {
    if (busy)
      httpd_reply_error(out, 503, "server busy: memory budget exhausted, "
                        "retry later");
    else
      httpd_reply_error(out, 400, "malformed profile (%s)", err);
    return;
  }
  ingest_one(r, n->service, n->type, NULL, n->labels, from, pb, len, out);
  free(pb);
}

void httpd_pyroscope_ingest(httpd_req *r, httpd_reply *out) {
  const char *ctype = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *format = httpd_req_arg(r, "format");
  const char *spy = httpd_req_arg(r, "spyName");
  char err[INGEST_ERRMAX] = "";
  ingest_name n;
  int64_t from, until;
  int pprof;

  memset(&n, 0, sizeof n);
  if (format == NULL || *format == '\0')
    format = ingest_multipart_is(ctype) ? "pprof" : "folded";
  pprof = strcmp(format, "pprof") == 0;
  if (!pprof && strcmp(format, "folded") != 0 && strcmp(format, "lines") != 0) {
    httpd_reply_error(out, 400, "bad request: unsupported format \"%s\" "
                      "(pprof, folded, lines)", format);
    return;
  }
  if (time_arg(r, "from", &from, out) != 0 ||
      time_arg(r, "until", &until, out) != 0)
    return;
  if (ingest_name_parse(httpd_req_arg(r, "name"), !pprof, &n, err) != 0) {
    httpd_reply_error(out, 400, "bad request: %s", err);
    return;
  }
  if (spy != NULL && *spy != '\0' && add_label(n.labels, SPY_KEY, spy, err)) {
    httpd_reply_error(out, 400, "bad request: %s", err);
  } else if (pprof) {
    ingest_pprof(r, &n, from, out);
  } else {
    ingest_stacks(r, &n, strcmp(format, "lines") == 0, from, until, out);
  }
  ingest_name_clear(&n);
}

/* ---- POST /push.v1.PusherService/Push (Connect) ------------------------------------ */

/* Connect's code for an HTTP status (connectrpc.com/docs/protocol). */
static const char *connect_code(unsigned status) {
  switch (status) {
  case 400: return "invalid_argument";
  case 401: return "unauthenticated";
  case 403: return "permission_denied";
  case 404: return "not_found";
  case 405:
  case 415:
  case 501: return "unimplemented";
  case 408:
  case 504: return "deadline_exceeded";
  case 409: return "aborted";
  case 413:
  case 429:
  case 507: return "resource_exhausted";
  case 503: return "unavailable";
  default: return "internal";
  }
}

/* Rewrites an error reply of the profefe shape ({"code":N,"error":"..."})
** into Connect's, keeping the HTTP status. */
static void connect_shape(httpd_reply *rep) {
  json_t *j = NULL, *c;
  const char *msg = "";
  char *text;
  json_error_t je;

  if (rep->status < 400) return;
  if (rep->body != NULL && rep->len > 0)
    j = json_loadb(rep->body, rep->len, 0, &je);
  if (j != NULL && json_is_string(json_object_get(j, "error")))
    msg = json_string_value(json_object_get(j, "error"));
  c = json_pack("{s:s,s:s}", "code", connect_code(rep->status), "message", msg);
  text = c ? json_dumps(c, JSON_COMPACT) : NULL;
  json_decref(c);
  json_decref(j);
  if (text == NULL) return; /* out of memory: the profefe shape stays */
  free(rep->body);
  rep->body = text;
  rep->len = strlen(text);
  rep->content_type = "application/json";
}

void httpd_pyroscope_push_begin(httpd_req *r) {
  r->shape_error = connect_shape;
}

/* 1 when the media type of ctype is exactly want (parameters ignored). */
static int media_is(const char *ctype, const char *want) {
  size_t n = strlen(want);
  return ctype != NULL && strncasecmp(ctype, want, n) == 0 &&
         (ctype[n] == '\0' || ctype[n] == ';' || ctype[n] == ' ');
}

/* Stores the samples of series i; 0, or -1 after an error reply. */
static int push_series(httpd_req *r, const ingest_push *p, size_t i,
                       size_t *stored, httpd_reply *out) {
  const char **names, **values, *service = NULL, *tname = NULL;
  size_t nl = ingest_push_labels(p, i, &names, &values), j, len;
  char err[STORE_ERRMAX] = "", *canon = NULL;
  ingest_labels *l = ingest_labels_new();
  meta_type type = META_OTHER;
  unsigned status = 400;
  int t, ret = -1;

  if (l == NULL) {
    httpd_reply_error(out, 500, "out of memory");
    return -1;
  }
  for (j = 0; j < nl; j++) {
    if (strcmp(names[j], "service_name") == 0) service = values[j];
    else if (strcmp(names[j], "__name__") == 0) tname = values[j];
    else if (add_label(l, names[j], values[j], err) != 0) goto bad;
  }
  if (service == NULL || *service == '\0') {
    snprintf(err, sizeof err, "series %zu: no service_name label", i);
    goto bad;
  }
  if (!meta_service_valid(service)) {
    snprintf(err, sizeof err, "series %zu: invalid service_name \"%s\"", i,
             service);
    goto bad;
  }
  if (tname != NULL && (t = ingest_type_of_name(tname)) >= 0)
    type = (meta_type)t;
  else if (tname != NULL && add_label(l, INGEST_OTHER_KEY, tname, err) != 0)
    goto bad;
  if (ingest_labels_canonical(l, &canon, err) != 0) goto bad;
  for (j = 0; j < ingest_push_samples(p, i); j++) {
    const void *data = ingest_push_sample(p, i, j, &len);
    pick_arg pick = {NULL, 0, canon};
    store_meta m;
    store_rc rc;
    memset(&m, 0, sizeof m);
    if (tname == NULL) /* the sample types say, as for /ingest's pprof */
      rc = store_ingest_picked(httpd_store(r->h), service, pick_type, &pick,
                               canon, 0, data, len, &m, err);
    else
      rc = store_ingest(httpd_store(r->h), service, type, canon, 0, data, len,
                        &m, err);
    store_meta_clear(&m);
    if (rc != STORE_OK) {
      char why[STORE_ERRMAX];
      snprintf(why, sizeof why, "%s", err[0] ? err : store_strerror(rc));
      httpd_reply_store_error(out, rc, why);
      /* say which sample, and what was kept before it */
      status = out->status;
      snprintf(err, sizeof err, "series %zu sample %zu: %.300s (%zu earlier "
               "profiles stored)", i, j, why, *stored);
      goto bad_sample;
    }
    httpd_metrics_ingest(httpd_get_metrics(r->h), len);
    (*stored)++;
  }
  ret = 0;
  goto out;
bad_sample:
  httpd_reply_error(out, status, "%s", err);
  goto out;
bad:
  httpd_reply_error(out, 400, "%s", err);
out:
  free(canon);
  ingest_labels_free(l);
  return ret;
}

void httpd_pyroscope_push(httpd_req *r, httpd_reply *out) {
  const char *ctype = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                  MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *enc = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_ENCODING);
  int json = media_is(ctype, "application/json");
  char err[INGEST_ERRMAX] = "", why[HTTPD_ERRMAX];
  ingest_push *p = NULL;
  void *plain = NULL;
  unsigned status;
  size_t i, stored = 0, len = r->len, held = 0;
  int busy = 0;

  if (!json && !media_is(ctype, "application/proto")) {
    httpd_reply_error(out, 415, "unsupported content type \"%s\" (Connect "
                      "unary: application/proto or application/json)",
                      ctype ? ctype : "");
    return;
  }
  if (enc != NULL && strcasecmp(enc, "identity") != 0 &&
      strcasecmp(enc, "gzip") != 0) {
    httpd_reply_error(out, 501, "unsupported content encoding \"%s\" "
                      "(identity, gzip)", enc);
    return;
  }
  if (enc != NULL && strcasecmp(enc, "gzip") == 0 &&
      (status = httpd_req_inflate(r, &plain, &len, &held, why)) != 0) {
    httpd_reply_error(out, status, "%s", why);
    goto out;
  }
  if (ingest_push_decode(plain ? plain : r->body, len, json,
                         httpd_get_options(r->h)->budget, r->held + held, &p,
                         &busy, err) != 0) {
    httpd_reply_error(out, busy == INGEST_PUSH_TOOBIG ? 413
                           : busy == INGEST_PUSH_BUSY ? 503 : 400,
                      "%s", err);
    goto out;
  }
  for (i = 0; i < ingest_push_series(p); i++)
    if (push_series(r, p, i, &stored, out) != 0) goto out;
  httpd_reply_clear(out);
  out->status = 200;
  if (json) {
    out->content_type = "application/json";
    if ((out->body = strdup("{}")) != NULL) out->len = 2;
  } else {
    out->content_type = "application/proto"; /* an empty PushResponse */
  }
out:
  ingest_push_free(p);
  free(plain);
  budget_release(httpd_get_options(r->h)->budget, held);
}
