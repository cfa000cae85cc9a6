/*
** views.c — the `format=` and `sample=` parameters of merges and profiles,
** and GET /api/0/profiles/diff: what the store merged, rendered by
** view/view.h (folded stacks, flame graph, top table, JSON rows), or the
** pprof diff of two ranges.
**
** The format is checked before anything is merged, so a bad one costs
** nothing; a bad sample type is known only once the profile is decoded.
** Every refusal here is logged with its reason (the access log line has
** only the status).
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "view.h"

#define FORMATS "pprof, folded, svg, top or json"

/* Replies status with the formatted reason and logs it. */
static void refuse(httpd_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refuse(httpd_reply *out, unsigned status, const char *fmt, ...)
{
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "httpd: %u: %s\n", status, msg);
  httpd_reply_error(out, status, "%s", msg);
}

/* Logs the reason of the error reply the query parsers of api.c decided
** (the "error" of its JSON). */
static void log_reply(const httpd_reply *out)
{
  json_t *j = json_loadb(out->body ? out->body : "", out->len, 0, NULL);
  const char *why = json_string_value(json_object_get(j, "error"));

  fprintf(stderr, "httpd: %u: %s\n", out->status, why ? why : "?");
  json_decref(j);
}

int httpd_view_format(httpd_req *r, view_format *f, httpd_reply *out)
{
  const char *v = httpd_req_arg(r, "format");

  if (view_format_parse(v, f) != 0) {
    refuse(out, 400, "bad request: unknown format \"%.64s\" (" FORMATS ")",
           v);
    return -1;
  }
  return 0;
}

/* The reply of a failed view. */
static void view_error(httpd_reply *out, view_rc rc, const char *err)
{
  switch (rc) {
  case VIEW_ENOMEM:
    fprintf(stderr, "httpd: 500: %s\n", err);
    httpd_reply_error(out, 500, "server out of memory");
    break;
  case VIEW_EMISMATCH:
    refuse(out, 400, "bad request: base and target differ: %s", err);
    break;
  case VIEW_EINVAL:
    refuse(out, 400, "bad request: %s", err);
    break;
  default:
    refuse(out, 400, "malformed profile (%s)", err);
    break;
  }
}

/* Replies the view f of the profile data (malloc'd, taken). */
static void reply_rendered(httpd_reply *out, view_format f, void *data,
                           size_t len)
{
  httpd_reply_clear(out);
  out->status = 200;
  out->content_type = view_content_type(f);
  out->body = data;
  out->len = len;
}

void httpd_reply_view(httpd_req *r, httpd_reply *out, view_format f,
                      void *data, size_t len, const char *filename,
                      const char *title)
{
  char err[VIEW_ERRMAX] = "";
  void *v = NULL;
  size_t vlen = 0;
  view_rc rc;

  if (f == VIEW_PPROF) {
    httpd_reply_bytes(out, data, len, filename);
    return;
  }
  rc = view_render(data, len, f, httpd_req_arg(r, "sample"), title, &v,
                   &vlen, err);
  free(data);
  if (rc != VIEW_OK)
    view_error(out, rc, err);
  else
    reply_rendered(out, f, v, vlen);
}


/* Merges one side of a diff; 0, or -1 after replying (which side failed
** is said). */
static int merge_side(httpd_req *r, const store_query *q, const char *side,
                      void **data, size_t *len, httpd_reply *out)
{
  char err[STORE_ERRMAX] = "";
  store_rc rc = httpd_timed_merge(r, q, NULL, 0, data, len, err);

  if (rc == STORE_NOTFOUND) {
    refuse(out, 404, "nothing found: no profiles in the %s range", side);
    return -1;
  }
  if (rc == STORE_MISMATCH) {
    refuse(out, 400, "bad request: the %s range: %s", side, err);
    return -1;
  }
  if (rc != STORE_OK) {
    httpd_reply_store_error(out, rc, err);
    return -1;
  }
  return 0;
}

/* GET /api/0/profiles/diff?service&type[&labels]&base_from&base_to&from&to
** [&format][&sample] */
void httpd_api_diff(httpd_req *r, httpd_reply *out)
{
  char err[VIEW_ERRMAX] = "", *labels = NULL, *title = NULL;
  void *bd = NULL, *td = NULL, *v = NULL;
  size_t blen = 0, tlen = 0, vlen = 0;
  store_query q, bq;
  view_format f;
  view_rc rc;

  if (httpd_view_format(r, &f, out))
    goto out;
  if (httpd_query_args(r, &q, &labels, out)) {
    log_reply(out);
    goto out;
  }
  bq = q;
  if (httpd_time_arg(r, "base_from", 1, &bq.from, out) ||
      httpd_time_arg(r, "base_to", 1, &bq.to, out)) {
    log_reply(out);
    goto out;
  }
  if (bq.from > bq.to) {
    refuse(out, 400, "bad request: \"base_from\" is after \"base_to\"");
    goto out;
  }
  if (q.type == META_TRACE) {
    refuse(out, 405, "tracing profiles are not mergeable");
    goto out;
  }
  if (merge_side(r, &bq, "base", &bd, &blen, out) ||
      merge_side(r, &q, "target", &td, &tlen, out))
    goto out;
  title = view_title(q.service, meta_type_name(q.type), q.labels, 1,
                     bq.from, bq.to, q.from, q.to);
  rc = view_diff(bd, blen, td, tlen, f, httpd_req_arg(r, "sample"), title, &v,
                 &vlen, err);
  if (rc != VIEW_OK) {
    view_error(out, rc, err);
    goto out;
  }
  if (f == VIEW_PPROF)
    httpd_reply_bytes(out, v, vlen, "diff");
  else
    reply_rendered(out, f, v, vlen);
out:
  free(title);
  free(bd);
  free(td);
  free(labels);
}
