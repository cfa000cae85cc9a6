/*
** httpd.c — the server: runs libmicrohttpd with one thread per connection
** on the socket of listen.c, collects request bodies under the size limit,
** hands complete requests to api.c, logs one line per request and stops
** gracefully.
**
** Life of a request:
**   0. request line (on_uri): a httpd_req is created with the raw URI;
**   1. headers complete (first call of on_request): the request is checked
**      (no NUL byte, UTF-8 path and query) and routed; a body announced by
**      Content-Length over the limit is refused at once with 413 when the
**      client waits for 100-continue or announces over twice the limit (the
**      body is never read), else its body is dropped as in step 2; one
**      under it is taken from the memory budget, or refused with 503 and
**      Retry-After (after reading it) when the budget has no room after its
**      wait;
**   2. body chunks: appended while under the limit (a body of unannounced
**      length takes from the budget as it grows: 503 when it cannot),
**      otherwise counted and
**      dropped (413 at the end; a client that goes on sending more than
**      twice the limit is disconnected); a request whose answer is already
**      decided (an error) or that takes no body drops its body too;
**   3. end of the body: the handler runs and its reply is queued;
**   4. on_completed (answer sent, or the connection died): the request is
**      counted, logged and freed.
** Answers are queued at step 3 even for errors decided at step 1, so the
** client's body has been read and the connection can stay open.
** libmicrohttpd unescapes the path and the query; the raw URI of step 0 is
** what shows a %00 in the path, which the unescaped C string hides.
**
** Invariants of struct httpd: `inflight` counts requests between steps 0
** and 4; it and `stopping` are only touched with `mu` held.  Once stopping
** is set every answer carries "Connection: close", so httpd_stop can wait
** for inflight to reach 0 and then tear the daemon down.
*/
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "internal.h"
#include "pprof.h"

#define DEFAULT_ADDR "127.0.0.1:10100"
#define DEFAULT_MAX_INFLATE ((size_t)256 << 20)
#define DEFAULT_MAX_BODY ((size_t)32 << 20)
#define DEFAULT_MAX_CONN 1024u
#define DEFAULT_TIMEOUT 60u

struct httpd {
  store *st;
  httpd_options opts;   /* the caller's, with defaults filled in */
  struct MHD_Daemon *d;
  httpd_metrics *metrics;
  unsigned port;
  pthread_mutex_t mu;
  pthread_cond_t idle;  /* signalled when inflight drops to 0 */
  unsigned inflight;
  int stopping;
  int started;          /* MHD_start_daemon returned: log MHD errors */
  char start_err[HTTPD_ERRMAX]; /* MHD's last message while starting */
};

/* ---- small accessors (internal.h) ------------------------------------------- */

store *httpd_store(const httpd *h) { return h->st; }
httpd_metrics *httpd_get_metrics(const httpd *h) { return h->metrics; }
const httpd_options *httpd_get_options(const httpd *h) { return &h->opts; }

int64_t httpd_now_us(void)
{
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

const char *httpd_req_arg(const httpd_req *r, const char *key)
{
  return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, key);
}

unsigned httpd_req_inflate(httpd_req *r, void **plain, size_t *len,
                           size_t *held, char why[HTTPD_ERRMAX])
{
  char err[PPROF_ERRMAX] = "";
  pprof_rc rc = pprof_decompress(r->body, r->len, r->h->opts.max_inflate,
                                 r->h->opts.budget, plain, len, held, err);

  switch (rc) {
  case PPROF_OK:
    return 0;
  case PPROF_EBUSY:
    httpd_seterr(why, "server busy: memory budget exhausted, retry later");
    return 503;
  case PPROF_ETOOBIG:
    httpd_seterr(why, "request too big once inflated (limit %zu bytes)",
                 r->h->opts.max_inflate);
    return 413;
  case PPROF_ENOMEM:
    httpd_seterr(why, "server out of memory");
    return 500;
  default:
    httpd_seterr(why, "malformed gzip body (%s)",
                 err[0] ? err : pprof_strerror(rc));
    return 400;
  }
}

unsigned httpd_port(const httpd *h)
{
  assert(h != NULL);
  return h->port;
}

/* ---- requests ------------------------------------------------------------------ */

/* Step 0: uri is the raw request target, query included. */
static httpd_req *req_new(httpd *h, struct MHD_Connection *conn,
                          const char *uri)
{
  httpd_req *r = calloc(1, sizeof *r);

  if (r == NULL || (r->raw_path = strndup(uri, strcspn(uri, "?"))) == NULL) {
    free(r);
    return NULL;
  }
  r->h = h;
  r->conn = conn;
  r->type = -1;
  r->t0_us = httpd_now_us();
  return r;
}

/* Step 1: the method and the unescaped path.  Returns 0, -1 on OOM. */
static int req_start(httpd_req *r, const char *url, const char *method)
{
  size_t n;

  if ((r->path = strdup(url)) == NULL)
    return -1;
  /* "/api/0/profiles/" is "/api/0/profiles", as with profefe's path.Clean */
  n = strlen(r->path);
  while (n > 1 && r->path[n - 1] == '/')
    r->path[--n] = '\0';
  r->method = method;
  return 0;
}

/* MHD_get_connection_values_n callback: stops at the first query argument
** with a NUL byte or invalid UTF-8, after replying 400. */
static enum MHD_Result check_arg(void *cls, enum MHD_ValueKind kind,
                                 const char *key, size_t key_size,
                                 const char *value, size_t value_size)
{
  httpd_req *r = cls;

  (void)kind;
  if (httpd_utf8_valid(key, key_size) &&
      (value == NULL || httpd_utf8_valid(value, value_size)))
    return MHD_YES;
  httpd_reply_error(&r->reply, 400,
                    "bad request: invalid \"%s\" (NUL byte or invalid UTF-8)",
                    key);
  return MHD_NO;
}

/* Refuses (400) what no endpoint can take: a NUL byte anywhere, a path or
** query argument that is not UTF-8 (JSON replies could not carry it). */
static void req_check(httpd_req *r)
{
  if (strstr(r->raw_path, "%00") != NULL) {
    httpd_reply_error(&r->reply, 400, "bad request: NUL byte in the path");
    return;
  }
  if (!httpd_utf8_valid(r->path, strlen(r->path))) {
    httpd_reply_error(&r->reply, 400,
                      "bad request: the path is not valid UTF-8");
    return;
  }
  MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND, check_arg, r);
}

static void req_free(httpd_req *r)
{
  if (r == NULL)
    return;
  httpd_reply_clear(&r->reply);
  free(r->raw_path);
  free(r->path);
  free(r->body);
  budget_release(r->h->opts.budget, r->held);
  free(r->service);
  free(r->labels);
  free(r);
}

static void reply_busy(httpd_req *r)
{
  httpd_reply_error(&r->reply, 503,
                    "server busy: memory budget exhausted, retry later");
}

/* Keeps or drops one chunk of the body.  Returns 0, or -1 to drop the
** connection (a client sending far more than the limit). */
static int req_body(httpd_req *r, const char *data, size_t n)
{
  size_t max = r->h->opts.max_body, cap;
  char *nb;

  r->received += n;
  if (r->received > max)
    r->too_big = 1;
  if (r->too_big) {
    /* keep reading (to be able to answer 413) but not forever */
    return r->received > max && r->received - max > max ? -1 : 0;
  }
  if (!r->wants_body || r->reply.status != 0)
    return 0;
  if (r->len + n > r->cap) {
    /* the announced length at once, else doubling from 64 KiB */
    cap = r->cap ? r->cap : r->announced > 0 ? r->announced : 64 * 1024;
    while (cap < r->len + n)
      cap *= 2;
    if (cap > max)
      cap = max;
    if (cap > r->held) {
      if (budget_reserve(r->h->opts.budget, cap - r->held) != 0) {
        reply_busy(r);
        return 0;
      }
      r->held = cap;
    }
    if ((nb = realloc(r->body, cap)) == NULL) {
      httpd_reply_error(&r->reply, 500, "out of memory");
      return 0;
    }
    r->body = nb;
    r->cap = cap;
  }
  memcpy(r->body + r->len, data, n);
  r->len += n;
  return 0;
}

/* The announced Content-Length in *n; 0, or -1 when there is none.
** (libmicrohttpd has already refused malformed ones.) */
static int content_length(const httpd_req *r, uint64_t *n)
{
  const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                               MHD_HTTP_HEADER_CONTENT_LENGTH);
  unsigned long long v;
  char *end;

  if (cl == NULL)
    return -1;
  errno = 0;
  v = strtoull(cl, &end, 10);
  if (end == cl)
    return -1;
  *n = errno == ERANGE ? UINT64_MAX : v;
  return 0;
}

/* 1 when the client sent "Expect: 100-continue" (waits before its body). */
static int expects_continue(const httpd_req *r)
{
  const char *e = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
                                              MHD_HTTP_HEADER_EXPECT);
  return e != NULL && strcasecmp(e, "100-continue") == 0;
}

static void reply_too_big(httpd_req *r)
{
  httpd_reply_error(&r->reply, 413,
                    "request body too large (limit %zu bytes)",
                    r->h->opts.max_body);
}

/* Queues r->reply (which must be decided). */
static enum MHD_Result queue_reply(httpd_req *r)
{
  httpd_reply *rep = &r->reply;
  struct MHD_Response *resp;
  enum MHD_Result ret;
  char disp[512];
  int closing;

  assert(rep->status != 0);
  if (rep->status >= 400 && r->shape_error != NULL)
    r->shape_error(rep);
  if (rep->len > 0)
    resp = MHD_create_response_from_buffer(rep->len, rep->body,
                                           MHD_RESPMEM_MUST_FREE);
  else
    resp = MHD_create_response_from_buffer(0, (void *)"",
                                           MHD_RESPMEM_PERSISTENT);
  if (resp == NULL)
    return MHD_NO;
  if (rep->len > 0)
    rep->body = NULL; /* libmicrohttpd frees it with the response */
  if (rep->content_type != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->content_type);
  if (rep->filename != NULL) {
    snprintf(disp, sizeof disp, "attachment; filename=\"%s\"", rep->filename);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disp);
  }
  if (rep->allow != NULL)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, rep->allow);
  if (rep->ingested != NULL)
    MHD_add_response_header(resp, "X-Profefs-Ingest", rep->ingested);
  /* 503 is the memory budget (or the store's) being full for now */
  if (rep->status == 503)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, "1");
  pthread_mutex_lock(&r->h->mu);
  closing = r->h->stopping;
  pthread_mutex_unlock(&r->h->mu);
  if (closing)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  r->status = rep->status;
  r->out_bytes = rep->len;
  ret = MHD_queue_response(r->conn, rep->status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Step 0.  libmicrohttpd passes the result as *con_cls to on_request and
** on_completed (which is called even if on_request never is). */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
  httpd *h = cls;
  httpd_req *r = req_new(h, conn, uri);

  if (r != NULL) {
    pthread_mutex_lock(&h->mu);
    h->inflight++;
    pthread_mutex_unlock(&h->mu);
  }
  return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  httpd_req *r = *con_cls;
  uint64_t cl;

  (void)cls;
  (void)conn;
  (void)version;
  if (r == NULL) /* on_uri ran out of memory */
    return MHD_NO;
  if (r->method == NULL) { /* step 1: headers */
    if (req_start(r, url, method) != 0)
      return MHD_NO;
    req_check(r);
    if (r->reply.status == 0)
      httpd_api_route(r);
    if (r->wants_body && r->reply.status == 0 && content_length(r, &cl) == 0) {
      if (cl > r->h->opts.max_body) {
        /* A client waiting for 100-continue gets 413 at once and sends
        ** nothing.  One that sends its body anyway would see a reset, not
        ** the 413, if the connection closed under it: up to twice the
        ** limit, its body is read and dropped and 413 answered at its end. */
        if (expects_continue(r) ||
            cl - r->h->opts.max_body > r->h->opts.max_body) {
          reply_too_big(r);
          return queue_reply(r); /* early: libmicrohttpd skips the body */
        }
        r->too_big = 1;
        return MHD_YES;
      }
      r->announced = (size_t)cl;
      /* On refusal the body is read and dropped, and 503 answered at its
      ** end: answering now would close the connection on a client still
      ** sending, which sees a reset instead of the 503. */
      if (cl > 0 && budget_reserve(r->h->opts.budget, (size_t)cl) != 0)
        reply_busy(r);
      else
        r->held = (size_t)cl;
    }
    return MHD_YES;
  }
  if (*upload_size > 0) { /* step 2: body */
    if (req_body(r, upload, *upload_size) != 0)
      return MHD_NO;
    *upload_size = 0;
    return MHD_YES;
  }
  if (r->status != 0) /* answered early */
    return MHD_YES;
  /* step 3 */
  if (r->too_big)
    reply_too_big(r);
  else if (r->reply.status == 0)
    r->handler(r, &r->reply);
  return queue_reply(r);
}

/* Appends s to the log line b (of size cap, used *n) with bytes that
** could break a log line as %XX (s is already %-escaped as the client
** sent it, so '%' itself stays); stops short of the end of b. */
static void log_escaped(char *b, size_t cap, size_t *n, const char *s)
{
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p;

  for (p = (const unsigned char *)s; *p && *n + 4 < cap; p++) {
    if (*p <= 0x20 || *p >= 0x7f) {
      b[(*n)++] = '%';
      b[(*n)++] = hex[*p >> 4];
      b[(*n)++] = hex[*p & 15];
    } else {
      b[(*n)++] = (char)*p;
    }
  }
}

/* Logs one line for r in a single write: stderr is unbuffered, and a line
** printed piece by piece cost one system call per character of the path,
** more than the rest of an ingest's system calls together. */
static void log_request(const httpd_req *r)
{
  char line[2048];
  size_t n = sizeof "http " - 1;
  int64_t us = httpd_now_us() - r->t0_us;
  int k;

  memcpy(line, "http ", n);
  log_escaped(line, sizeof line - 64, &n, r->method ? r->method : "-");
  line[n++] = ' ';
  log_escaped(line, sizeof line - 64, &n, r->raw_path);
  k = snprintf(line + n, sizeof line - n, " %u %zu %" PRId64 ".%03d\n",
               r->status, r->out_bytes, us / 1000, (int)(us % 1000));
  if (k > 0)
    n += (size_t)k < sizeof line - n ? (size_t)k : sizeof line - n - 1;
  fwrite(line, 1, n, stderr);
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **con_cls, enum MHD_RequestTerminationCode toe)
{
  httpd *h = cls;
  httpd_req *r = *con_cls;

  (void)conn;
  (void)toe;
  if (r == NULL)
    return;
  *con_cls = NULL;
  /* status 0 in the log: no answer was queued (the client went away) */
  if (r->status != 0)
    httpd_metrics_request(h->metrics, r->method, r->status);
  if (!h->opts.quiet)
    log_request(r);
  req_free(r);
  pthread_mutex_lock(&h->mu);
  if (--h->inflight == 0)
    pthread_cond_broadcast(&h->idle);
  pthread_mutex_unlock(&h->mu);
}

/* libmicrohttpd's own errors: remembered while starting (httpd_start puts
** the last one in err), logged afterwards. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
  httpd *h = cls;
  char msg[HTTPD_ERRMAX];
  size_t n;
  int starting;

  vsnprintf(msg, sizeof msg, fmt, ap);
  n = strlen(msg);
  while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
    msg[--n] = '\0';
  pthread_mutex_lock(&h->mu);
  starting = !h->started;
  if (starting)
    memcpy(h->start_err, msg, n + 1);
  pthread_mutex_unlock(&h->mu);
  if (!starting) /* httpd_start's caller reports start-up errors */
    fprintf(stderr, "httpd: %s\n", msg);
}

/* ---- start / stop ----------------------------------------------------------- */

static void httpd_free(httpd *h)
{
  if (h == NULL)
    return;
  httpd_metrics_free(h->metrics);
  pthread_cond_destroy(&h->idle);
  pthread_mutex_destroy(&h->mu);
  free(h);
}

int httpd_start(store *st, const httpd_options *opts, httpd **out,
                char err[HTTPD_ERRMAX])
{
  const char *addr = opts && opts->addr ? opts->addr : DEFAULT_ADDR;
  char tmp[HTTPD_ERRMAX];
  int fd = opts != NULL && opts->listen_fd > 0 ? opts->listen_fd : -1;
  httpd *h;

  assert(st != NULL && out != NULL);
  if (err == NULL)
    err = tmp;
  h = calloc(1, sizeof *h);
  if (h == NULL) {
    httpd_seterr(err, "out of memory");
    if (fd >= 0)
      close(fd);
    return -1;
  }
  pthread_mutex_init(&h->mu, NULL);
  pthread_cond_init(&h->idle, NULL);
  if (opts != NULL)
    h->opts = *opts;
  h->opts.addr = NULL; /* only needed here; the caller's string */
  if (h->opts.max_body == 0)
    h->opts.max_body = DEFAULT_MAX_BODY;
  if (h->opts.max_inflate == 0)
    h->opts.max_inflate = DEFAULT_MAX_INFLATE;
  if (h->opts.max_connections == 0)
    h->opts.max_connections = DEFAULT_MAX_CONN;
  if (h->opts.timeout_sec == 0)
    h->opts.timeout_sec = DEFAULT_TIMEOUT;
  h->st = st;
  if ((h->metrics = httpd_metrics_new()) == NULL) {
    httpd_seterr(err, "out of memory");
    goto fail;
  }
  if (fd >= 0) {
    h->port = httpd_bound_port(fd);
  } else if (httpd_listen(addr, &fd, &h->port, err) != 0) {
    /* binding here rather than in libmicrohttpd gives errno-precise errors */
    goto fail;
  }

  h->d = MHD_start_daemon(
      MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
          MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG,
      0, NULL, NULL, on_request, h,
      /* first, so that every message of MHD_start_daemon goes through it */
      MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
      MHD_OPTION_LISTEN_SOCKET, (MHD_socket)fd,
      MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->opts.max_connections,
      MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->opts.timeout_sec,
      MHD_OPTION_URI_LOG_CALLBACK, on_uri, h,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
      MHD_OPTION_END);
  pthread_mutex_lock(&h->mu);
  h->started = 1;
  pthread_mutex_unlock(&h->mu);
  if (h->d == NULL) {
    httpd_seterr(err, "cannot serve on %s: %s", addr,
           h->start_err[0] ? h->start_err : "libmicrohttpd failed to start");
    goto fail;
  }
  *out = h;
  return 0;
fail:
  if (fd >= 0)
    close(fd);
  httpd_free(h);
  return -1;
}

void httpd_stop(httpd *h)
{
  struct timespec deadline;
  MHD_socket fd;

  if (h == NULL)
    return;
  pthread_mutex_lock(&h->mu);
  h->stopping = 1;
  pthread_mutex_unlock(&h->mu);

  /* stop accepting; the listening socket is ours to close now */
  fd = MHD_quiesce_daemon(h->d);
  if (fd != MHD_INVALID_SOCKET)
    close(fd);

  /* let running requests finish, for at most the idle timeout */
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += h->opts.timeout_sec;
  pthread_mutex_lock(&h->mu);
  while (h->inflight > 0)
    if (pthread_cond_timedwait(&h->idle, &h->mu, &deadline) == ETIMEDOUT)
      break;
  pthread_mutex_unlock(&h->mu);

  /* closes idle keep-alive connections and joins every thread */
  MHD_stop_daemon(h->d);
  httpd_free(h);
}
