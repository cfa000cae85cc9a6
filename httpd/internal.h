/*
** internal.h — private to httpd/: the server object, one request, one
** reply, and the functions the parts of the server share.
**
**   httpd.c    daemon lifecycle, MHD callbacks, request bodies, logging,
**              graceful stop
**   listen.c   the listening socket
**   api.c      routing and the profefe endpoints (store -> reply)
**   json.c     JSON replies and the JSON form of a profile's metadata
**   metrics.c  counters and the Prometheus text of /debug/metrics
**   otlp.c     POST /v1development/profiles (OTLP/HTTP profiles export)
**   pyroscope.c  Pyroscope's /ingest and Connect push (onto store_ingest)
**   views.c    format= / sample= (view/view.h) and GET /api/0/profiles/diff
**   web.c      the web page at "/" (files of web/, embedded at build time)
**
** A request is handled in the thread of its connection (libmicrohttpd's
** thread-per-connection mode), so handlers may block on the store.  The only
** state shared between threads is the metrics table and the in-flight
** counter of struct httpd, both behind their own mutex.
*/
#ifndef PROFEFS_HTTPD_INTERNAL_H
#define PROFEFS_HTTPD_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "httpd.h"
#include "view.h"

typedef struct httpd_metrics httpd_metrics;
typedef struct httpd_req httpd_req;

/* What a handler answers; turned into an MHD response by httpd.c.
** Invariant: body is malloc'd (or NULL when len == 0) and owned by the
** reply until httpd.c hands it to libmicrohttpd. */
typedef struct httpd_reply {
  unsigned status;          /* 0 while no answer has been decided */
  const char *content_type; /* static string */
  char *body;
  size_t len;
  char *filename;           /* malloc'd; sets Content-Disposition: attachment */
  const char *allow;        /* static; sets Allow (405 replies) */
  const char *ingested;     /* static; sets X-Profefs-Ingest: new|existing */
} httpd_reply;

/* Frees what r owns and zeroes it; accepts NULL. */
void httpd_reply_clear(httpd_reply *r);

/* A handler: reads the request, fills out (status != 0 afterwards). */
typedef void (*httpd_handler)(httpd_req *r, httpd_reply *out);

/* One request.  Owned by httpd.c; created with the request line, freed
** when libmicrohttpd reports it completed. */
struct httpd_req {
  httpd *h;
  struct MHD_Connection *conn;
  const char *method;  /* owned by libmicrohttpd; NULL until the headers */
  char *raw_path;      /* the path as sent (escaped), for the log */
  char *path;          /* the unescaped path, without trailing '/' */
  httpd_handler handler;
  int wants_body;      /* the handler reads the body (POST ingest) */
  /* rewrites an error reply into the shape of the route's protocol
  ** (Connect), also for the errors httpd.c decides; NULL: profefe's */
  void (*shape_error)(httpd_reply *rep);
  httpd_reply reply;   /* a reply decided before the body ended (errors) */
  /* request body; invariant: len <= cap <= held <= h->max_body, held
  ** being what is taken from the memory budget for it */
  char *body;
  size_t len, cap, held;
  size_t announced;    /* Content-Length when known (<= h->max_body) */
  uint64_t received;   /* body bytes seen, kept or not */
  int too_big;         /* the body went over h->max_body: answer 413 */
  /* ingest parameters, checked when the headers arrive */
  char *service;
  char *labels;        /* canonical */
  int type;
  int64_t created_at;
  /* for the log line */
  unsigned status;
  size_t out_bytes;
  int64_t t0_us;
};

/* ---- httpd.c ---------------------------------------------------------------- */

/* The query argument key of r, url-unescaped ('+' is a space), or NULL. */
const char *httpd_req_arg(const httpd_req *r, const char *key);

/* Inflates r's gzip body (Content-Encoding: gzip) within the server's
** --max-inflate, its memory taken from the budget and added to *held
** (the caller releases it once it freed *plain, also on failure).
** Returns 0 with *plain (malloc'd, caller frees) and *len, or the HTTP
** status to answer (503 budget full, 413 over the limit, 500 out of
** memory, 400 not gzip) with a reason for the client in why; each door
** answers it in its own error shape. */
unsigned httpd_req_inflate(httpd_req *r, void **plain, size_t *len,
                           size_t *held, char why[HTTPD_ERRMAX]);

store *httpd_store(const httpd *h);
httpd_metrics *httpd_get_metrics(const httpd *h);
const httpd_options *httpd_get_options(const httpd *h);

/* Microseconds of a monotonic clock. */
int64_t httpd_now_us(void);

/* ---- listen.c ---------------------------------------------------------------- */

/* The port the socket fd is bound to (0 when it cannot tell). */
unsigned httpd_bound_port(int fd);

/* vsnprintf into err (HTTPD_ERRMAX bytes). */
void httpd_seterr(char *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- api.c ------------------------------------------------------------------- */

/* Picks the handler of r from its method and path (r->handler, and
** r->wants_body), or decides an error reply in r->reply (404, 405, 400 for
** bad ingest parameters). */
void httpd_api_route(httpd_req *r);

/* The HTTP status of a store_rc (the one place that maps them). */
unsigned httpd_status_of(store_rc rc);

/* The error reply of a failed store call (rc != STORE_OK, err its reason),
** phrased like profefe's; the reason of a 5xx goes to the log only. */
void httpd_reply_store_error(httpd_reply *out, store_rc rc, const char *err);

/* For views.c: api.c's parsing of the query of a merge (service, type,
** from, to, labels, limit; q->labels points to *labels, caller frees) and
** of one time argument, and its timed merge (q, or the n ids).  The
** parsers return 0, or -1 after replying 400. */
int httpd_query_args(httpd_req *r, store_query *q, char **labels,
                     httpd_reply *out);
int httpd_time_arg(httpd_req *r, const char *key, int required,
                   int64_t *out_t, httpd_reply *out);
store_rc httpd_timed_merge(httpd_req *r, const store_query *q,
                           const char *const *ids, size_t n, void **data,
                           size_t *len, char *err);

/* ---- pyroscope.c ------------------------------------------------------------- */

/* POST /ingest (Pyroscope's HTTP ingest), called with the whole body. */
void httpd_pyroscope_ingest(httpd_req *r, httpd_reply *out);

/* POST /push.v1.PusherService/Push (Connect): with the headers (sets the
** Connect error shape), then with the whole body. */
void httpd_pyroscope_push_begin(httpd_req *r);
void httpd_pyroscope_push(httpd_req *r, httpd_reply *out);

/* ---- views.c ----------------------------------------------------------------- */

/* The format= argument of r in *f (pprof when absent): 0, or -1 after
** replying 400 naming the formats. */
int httpd_view_format(httpd_req *r, view_format *f, httpd_reply *out);

/* Replies the view f (with r's sample=) of the profile data (malloc'd,
** ownership taken): pprof as httpd_reply_bytes(filename), the others
** inline with their content type; a bad sample type or profile is a 400
** with the reason (logged). title heads an svg (may be NULL). */
void httpd_reply_view(httpd_req *r, httpd_reply *out, view_format f,
                      void *data, size_t len, const char *filename,
                      const char *title);

/* GET /api/0/profiles/diff. */
void httpd_api_diff(httpd_req *r, httpd_reply *out);

/* ---- json.c ------------------------------------------------------------------ */

/* 1 when the n bytes at s are valid UTF-8 without a NUL byte. */
int httpd_utf8_valid(const char *s, size_t n);

/* A JSON string of s, each byte that is not valid UTF-8 replaced by
** U+FFFD; a new reference, NULL when out of memory. */
json_t *httpd_json_string(const char *s);

/* {"id","type","service","labels":[{"key","value"}],"created_at"}; a new
** reference, NULL when out of memory or the labels are malformed. */
json_t *httpd_json_meta(const store_meta *m);

/* Replies {"code":status,"body":body}; steals the reference to body.
** A NULL body (a failed json_* constructor) or out of memory -> 500. */
void httpd_reply_json(httpd_reply *out, unsigned status, json_t *body);

/* Replies {"code":status,"error":"<formatted message>"}. */
void httpd_reply_error(httpd_reply *out, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void httpd_reply_verror(httpd_reply *out, unsigned status, const char *fmt,
                        va_list ap) __attribute__((format(printf, 3, 0)));

/* Replies 200 with the bytes data (malloc'd, ownership taken) as
** application/octet-stream, as an attachment named filename when not NULL
** (cut to 128 bytes, any character but [A-Za-z0-9._,=+-] made a '_'). */
void httpd_reply_bytes(httpd_reply *out, void *data, size_t len,
                       const char *filename);

/* ---- otlp.c ------------------------------------------------------------------ */

/* POST /v1development/profiles: called with the headers (refuses a body
** that is not protobuf, 415), then with the whole body (stores each
** profile, answers an ExportProfilesServiceResponse). */
void httpd_otlp_begin(httpd_req *r);
void httpd_otlp_export(httpd_req *r, httpd_reply *out);

/* ---- web.c ------------------------------------------------------------------- */

/* One file of the page; the table (generated by web/embed.py) is
** read-only.  data holds len bytes (and a NUL after them). */
typedef struct httpd_web_file {
  const char *name;         /* base name: "index.html", "app.js", ... */
  const char *content_type;
  const unsigned char *data;
  size_t len;
} httpd_web_file;

extern const httpd_web_file httpd_web_files[];
extern const size_t httpd_web_nfiles;

/* GET "/" (index.html) and "/ui/NAME": the embedded file, else 404. */
void httpd_web_get(httpd_req *r, httpd_reply *out);

/* ---- metrics.c --------------------------------------------------------------- */

/* NULL when out of memory. */
httpd_metrics *httpd_metrics_new(void);
void httpd_metrics_free(httpd_metrics *m);

/* One answered request. */
void httpd_metrics_request(httpd_metrics *m, const char *method,
                           unsigned status);
/* One successful ingest of len bytes. */
void httpd_metrics_ingest(httpd_metrics *m, size_t len);
/* One merge (successful or not) that took seconds. */
void httpd_metrics_merge(httpd_metrics *m, double seconds);

/* The Prometheus text exposition of m, of st's store_get_stats and of the
** memory budget b (none when NULL), malloc'd in *out / *len.  Returns 0, or -1 when out of memory. */
int httpd_metrics_render(httpd_metrics *m, store *st, budget *b, char **out,
                         size_t *len);

#endif /* PROFEFS_HTTPD_INTERNAL_H */
