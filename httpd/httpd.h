/*
** httpd.h — the profefe-compatible HTTP API over a store, on libmicrohttpd.
**
** One thread per connection (handlers block on group commits and merges;
** a slow client or merge never blocks another connection), a request body
** limit, and one log line per request on stderr:
**   http METHOD PATH STATUS BYTES MS
** The endpoints, JSON shapes and error strings are those of DESIGN.md.
*/
#ifndef PROFEFS_HTTPD_H
#define PROFEFS_HTTPD_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define HTTPD_ERRMAX 256

typedef struct httpd_options {
  const char *addr;          /* "HOST:PORT"; NULL = "127.0.0.1:10100"; port 0 = any */
  int listen_fd;             /* > 0: serve this socket of httpd_listen
                             ** instead of binding addr; httpd_start owns it
                             ** from the call on (closes it on failure) */
  size_t max_body;           /* request body limit; 0 = 32 MiB */
  size_t max_inflate;        /* what a compressed body (OTLP's gzip) may
                             ** inflate to, and an OTLP request decode to;
                             ** 0 = 256 MiB */
  budget *budget;            /* request bodies are taken from it (503 with
                             ** Retry-After when it has no room); NULL =
                             ** none; must outlive the server */
  unsigned max_connections;  /* 0 = 1024 */
  unsigned timeout_sec;      /* idle connection timeout; 0 = 60 */
  int quiet;                 /* no per-request log lines */
  /* What GET /api/0/version answers; NULL = "unknown".  The strings must
  ** outlive the server (main passes static strings). */
  const char *version;
  const char *commit;
  const char *build_time;
} httpd_options;

typedef struct httpd httpd;

/* Parses addr ("HOST:PORT", "[V6]:PORT", ":PORT" for every IPv4 interface;
** PORT 0 = any), binds and listens: 0 with the socket (non-blocking,
** close-on-exec) in *fd and the bound port in *port, or -1 with a reason
** ("Address already in use") in err and the OUT parameters unchanged.
** `serve` binds before it opens its store, so that a taken port costs
** nothing; the socket then goes to httpd_start as opts.listen_fd. */
int httpd_listen(const char *addr, int *fd, unsigned *port,
                 char err[HTTPD_ERRMAX]);

/* Starts serving st (which must outlive the server) in background threads.
** On success *out is set and the bound port is available via httpd_port.
** Fails with -1 and a reason in err (bad address, port in use, ...). */
int httpd_start(store *st, const httpd_options *opts, httpd **out,
                char err[HTTPD_ERRMAX]);

/* The TCP port actually bound. */
unsigned httpd_port(const httpd *h);

/* Stops accepting, finishes running requests, frees h; accepts NULL. */
void httpd_stop(httpd *h);

#endif /* PROFEFS_HTTPD_H */
