/*
** otlp.c — POST /v1development/profiles: OTLP/HTTP profiles export (the
** OpenTelemetry Collector's otlphttp exporter, the eBPF profiler), each
** profile of a request stored as one pprof profile.
**
** Filing (README "OTLP profiles" has the table):
**   service  the resource attribute service.name, else "unknown_service"
**            (OpenTelemetry's own default for a resource without one);
**   labels   the resource's other scalar attributes, then the profile's,
**            less those that name one process run or thread (DROPPED):
**            kept, they would make every profile a label set of its own;
**   type     from the sample type and the period type (otlp_type), with
**            the sample type kept as the label sample_type when it maps
**            to none (type other).
** Answers follow the OTLP/HTTP specification: 200 with an
** ExportProfilesServiceResponse, whose partial_success counts the refused
** profiles and says why the first was; 4xx/5xx with a google.rpc.Status;
** 503 (with Retry-After) when the store or the memory budget asked to
** retry, so that the exporter sends the request again (profiles already
** stored are recognised then: ingest is idempotent).  Only protobuf
** bodies: JSON is refused with 415.
*/
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <microhttpd.h>

#include "ingest.h"
#include "internal.h"
#include "otlp.h"

#define PROTOBUF "application/x-protobuf"

/* The gRPC code of a google.rpc.Status answered with HTTP status:
** INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE, INTERNAL. */
static int grpc_code_of(unsigned status) {
  switch (status) {
  case 400: case 415: return 3;
  case 413: return 8;
  case 503: return 14;
  default: return 13;
  }
}

/* Attributes that name one process run or thread, not where a profile
** comes from: left out of the labels. */
static const char *const DROPPED[] = {
  "process.pid", "process.parent_pid", "process.command_line",
  "process.command_args", "process.command", "thread.id", "thread.name",
  NULL
};

static int dropped(const char *key) {
  for (size_t i = 0; DROPPED[i] != NULL; i++)
    if (strcmp(DROPPED[i], key) == 0) return 1;
  return 0;
}

/* The type a profile of this sample and period type is filed under; -1
** when none fits (type other).  OpenTelemetry's eBPF profiler sends
** samples/count with period type cpu; runtimes send pprof's names. */
static int otlp_type(const char *sample, const char *period) {
  /* "samples" alone says nothing; with a period type it is that kind. */
  if (strcmp(sample, "samples") == 0 && period[0] != '\0' &&
      strcmp(period, "cpu") != 0 && strcmp(period, "samples") != 0)
    sample = period;
  /* OTel's own names beside the table all doors share (ingest.h): a bare
  ** sample count is the profiler's cpu samples, and Go's contention
  ** profiles (contentions, delay) come as mutex */
  if (strcmp(sample, "samples") == 0) return META_CPU;
  if (strcmp(sample, "contentions") == 0 || strcmp(sample, "delay") == 0 ||
      strcmp(sample, "lock_time") == 0)
    return META_MUTEX;
  return ingest_type_of_name(sample);
}

/* Replies status with a google.rpc.Status of its gRPC code and the
** message; the message goes to the log too. */
static void reply_status(httpd_reply *out, unsigned status, const char *fmt,
                         ...) __attribute__((format(printf, 3, 4)));
static void reply_status(httpd_reply *out, unsigned status, const char *fmt,
                         ...) {
  char msg[HTTPD_ERRMAX + OTLP_ERRMAX];
  void *body;
  size_t len;
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "otlp: %u: %s\n", status, msg);
  httpd_reply_clear(out);
  if (otlp_status(grpc_code_of(status), msg, &body, &len) != 0) {
    httpd_reply_error(out, 500, "out of memory");
    return;
  }
  out->status = status;
  out->content_type = PROTOBUF;
  out->body = body;
  out->len = len;
}

/* Called with the headers: only protobuf bodies are read. */
void httpd_otlp_begin(httpd_req *r) {
  const char *ct = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_TYPE);
  const char *ce = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_ENCODING);

  if (ct == NULL || strncasecmp(ct, PROTOBUF, strlen(PROTOBUF)) != 0)
    reply_status(&r->reply, 415, "unsupported content type \"%s\": send %s "
                 "(the otlphttp exporter's encoding: proto)", ct ? ct : "",
                 PROTOBUF);
  else if (ce != NULL && strcasecmp(ce, "gzip") != 0 &&
           strcasecmp(ce, "identity") != 0)
    reply_status(&r->reply, 415,
                 "unsupported content encoding \"%s\": send gzip or none", ce);
}

/* What one request's profiles came to. */
typedef struct export {
  httpd_req *r;
  store_rc retry;      /* a store error worth retrying the request for */
  char retry_why[STORE_ERRMAX];
} export;

/* The canonical labels of p (without service.name and the dropped keys),
** with sample_type when the type is other; 0, or -1 with a reason. */
static int profile_labels(const otlp_profile *p, int type, char **out,
                          char err[OTLP_ERRMAX]) {
  const char **keys = calloc(p->nattrs + 1, sizeof *keys);
  const char **values = calloc(p->nattrs + 1, sizeof *values);
  char merr[META_ERRMAX] = "";
  size_t n = 0;
  int rc = -1;

  if (keys == NULL || values == NULL) {
    snprintf(err, OTLP_ERRMAX, "out of memory");
    goto out;
  }
  for (size_t i = 0; i < p->nattrs; i++) {
    if (dropped(p->attrs[i].key)) continue;
    keys[n] = p->attrs[i].key;
    values[n++] = p->attrs[i].value;
  }
  if (type < 0) {
    keys[n] = "sample_type";
    values[n++] = p->sample_type;
  }
  for (size_t i = 0; i < n; i++)
    if (!httpd_utf8_valid(keys[i], strlen(keys[i])) ||
        !httpd_utf8_valid(values[i], strlen(values[i]))) {
      snprintf(err, OTLP_ERRMAX, "attribute \"%.64s\" is not UTF-8", keys[i]);
      goto out;
    }
  if (meta_labels_from_pairs(keys, values, n, out, merr) != 0) {
    snprintf(err, OTLP_ERRMAX, "attributes: %.200s", merr);
    goto out;
  }
  rc = 0;
out:
  free(keys);
  free(values);
  return rc;
}

/* otlp_each: files one profile in the store. */
static int store_one(const otlp_profile *p, void *arg, char err[OTLP_ERRMAX]) {
  export *ex = arg;
  const char *service = p->service ? p->service : "unknown_service";
  int type = otlp_type(p->sample_type, p->period_type);
  char serr[STORE_ERRMAX] = "", *labels = NULL;
  store_rc rc;

  if (!meta_service_valid(service) ||
      !httpd_utf8_valid(service, strlen(service))) {
    snprintf(err, OTLP_ERRMAX, "invalid service.name \"%.64s\"", service);
    return -1;
  }
  if (profile_labels(p, type, &labels, err) != 0) return -1;
  /* built by otlp_read, valid by construction: not decoded again (that
  ** took a sixth of the door's CPU) */
  rc = store_ingest_built(httpd_store(ex->r->h), service,
                          type < 0 ? META_OTHER : (meta_type)type, labels,
                          p->types, p->time_nanos, p->pprof, p->len, NULL,
                          serr);
  free(labels);
  if (rc == STORE_OK) {
    httpd_metrics_ingest(httpd_get_metrics(ex->r->h), p->len);
    return 0;
  }
  if (httpd_status_of(rc) >= 500 && ex->retry == STORE_OK) {
    ex->retry = rc;
    snprintf(ex->retry_why, sizeof ex->retry_why, "%s", serr);
  }
  snprintf(err, OTLP_ERRMAX, "%.250s", serr[0] ? serr : store_strerror(rc));
  return -1;
}

/* POST /v1development/profiles, called with the whole body. */
void httpd_otlp_export(httpd_req *r, httpd_reply *out) {
  const httpd_options *o = httpd_get_options(r->h);
  const char *ce = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_ENCODING);
  export ex = { .r = r, .retry = STORE_OK };
  char err[OTLP_ERRMAX] = "", why[HTTPD_ERRMAX];
  unsigned status;
  void *plain = NULL, *body;
  size_t len = r->len, held = 0, blen;
  otlp_result res;
  otlp_rc rc;

  if (ce != NULL && strcasecmp(ce, "gzip") == 0 &&
      (status = httpd_req_inflate(r, &plain, &len, &held, why)) != 0) {
    reply_status(out, status, "%s", why);
    goto out;
  }
  rc = otlp_read(plain ? plain : r->body, len, o->max_inflate, o->budget,
                 store_one, &ex, &res, err);
  switch (rc) {
  case OTLP_OK: break;
  case OTLP_EDECODE:
    reply_status(out, 400, "%s", err);
    goto out;
  case OTLP_ETOOBIG:
    reply_status(out, 413, "%s", err);
    goto out;
  case OTLP_EBUSY:
    reply_status(out, 503, "%s", err);
    goto out;
  default:
    reply_status(out, 500, "%s", err);
    goto out;
  }
  if (ex.retry != STORE_OK) {
    reply_status(out, 503, "%zu of %zu profiles not stored, "
                 "retry later: %s", res.rejected, res.profiles,
                 ex.retry_why[0] ? ex.retry_why : store_strerror(ex.retry));
    goto out;
  }
  if (res.rejected > 0)
    fprintf(stderr, "otlp: %zu of %zu profiles refused; the first: %s\n",
            res.rejected, res.profiles, res.first_error);
  if (otlp_response((int64_t)res.rejected, res.first_error, &body, &blen) != 0) {
    reply_status(out, 500, "server out of memory");
    goto out;
  }
  httpd_reply_clear(out);
  out->status = 200;
  out->content_type = PROTOBUF;
  out->body = body;
  out->len = blen;
out:
  free(plain);
  budget_release(o->budget, held);
}
