/*
** remote_http.h — private to store/: the HTTP client under the remote
** backend, a small pool of libcurl easy handles.
**
** libcurl easy handles must not be used by two threads at once, and making
** one per request would throw away kept-alive connections; so a request
** borrows a handle from the pool (or makes one when all are busy) and gives
** it back afterwards.  Every request has a total and a connect timeout and
** runs with CURLOPT_NOSIGNAL, so a dead or silent server costs at most the
** timeout, never a hang.  curl_global_init() is the program's job (main).
*/
#ifndef PROFEFS_STORE_REMOTE_HTTP_H
#define PROFEFS_STORE_REMOTE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct store_rhttp store_rhttp;

/* A pool whose requests time out after timeout_ms (> 0).  user_agent may be
** NULL.  NULL when out of memory. */
store_rhttp *store_rhttp_new(long timeout_ms, const char *user_agent);

/* Frees the pool and its handles; accepts NULL.  No request may be running. */
void store_rhttp_free(store_rhttp *h);

typedef struct store_rhttp_resp {
  long status;             /* HTTP status code */
  char *body;              /* malloc'd, NUL-terminated (may be "") */
  size_t len;              /* body length without the NUL */
  int64_t content_length;  /* Content-Length, -1 when the server sent none */
  char ingest[16];         /* profefs's X-Profefs-Ingest ("new",
                           ** "existing"), "" when absent (profefe) */
} store_rhttp_resp;

/* Frees r->body and zeroes r; accepts NULL. */
void store_rhttp_resp_clear(store_rhttp_resp *r);

/* Sends method ("GET", "HEAD", "POST", "DELETE") to url with body (POST
** only; may be NULL) and fills *out with whatever status the server
** answered.  Fails with STORE_IO when no HTTP answer arrived (connection
** refused, timeout, reset: also logged on stderr), STORE_TOOBIG when the
** answer is over max_len bytes, STORE_NOMEM; *out is then unchanged. */
store_rc store_rhttp_request(store_rhttp *h, const char *method,
                             const char *url, const void *body,
                             size_t body_len, size_t max_len,
                             store_rhttp_resp *out, char *err);

/* URL-escapes s for a query parameter (malloc'd; NULL when out of memory). */
char *store_rhttp_escape(const char *s);

#endif /* PROFEFS_STORE_REMOTE_HTTP_H */
