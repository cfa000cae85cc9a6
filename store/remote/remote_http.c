/*
** remote_http.c — the pool of libcurl handles of remote_http.h.
**
** Invariants (under mu):
**   - idle[0..nidle) are handles no thread is using; nidle <= POOL_MAX;
**   - a borrowed handle belongs to exactly one request until given back;
**     it is then reset (curl_easy_reset keeps its live connections and
**     DNS cache, which is the point of pooling) before the next use.
*/
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "backend.h"
#include "remote_http.h"

/* Idle handles kept; more may exist while many requests run at once. */
#define POOL_MAX 8
/* A connection attempt never needs longer than this, even with a long
** total timeout (merges of big ranges). */
#define CONNECT_MAX_MS 5000L

struct store_rhttp {
  pthread_mutex_t mu;
  CURL *idle[POOL_MAX];
  size_t nidle;
  long timeout_ms;
  char *user_agent;
};

store_rhttp *store_rhttp_new(long timeout_ms, const char *user_agent) {
  store_rhttp *h;

  assert(timeout_ms > 0);
  if ((h = calloc(1, sizeof *h)) == NULL) return NULL;
  if (user_agent != NULL && (h->user_agent = strdup(user_agent)) == NULL) {
    free(h);
    return NULL;
  }
  h->timeout_ms = timeout_ms;
  pthread_mutex_init(&h->mu, NULL);
  return h;
}

void store_rhttp_free(store_rhttp *h) {
  if (h == NULL) return;
  for (size_t i = 0; i < h->nidle; i++) curl_easy_cleanup(h->idle[i]);
  pthread_mutex_destroy(&h->mu);
  free(h->user_agent);
  free(h);
}

static CURL *borrow(store_rhttp *h) {
  CURL *c = NULL;
  pthread_mutex_lock(&h->mu);
  if (h->nidle > 0) c = h->idle[--h->nidle];
  pthread_mutex_unlock(&h->mu);
  if (c != NULL) {
    curl_easy_reset(c);
    return c;
  }
  return curl_easy_init();
}

static void give_back(store_rhttp *h, CURL *c) {
  pthread_mutex_lock(&h->mu);
  if (h->nidle < POOL_MAX) {
    h->idle[h->nidle++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&h->mu);
  if (c != NULL) curl_easy_cleanup(c);
}

void store_rhttp_resp_clear(store_rhttp_resp *r) {
  if (r == NULL) return;
  free(r->body);
  memset(r, 0, sizeof *r);
}

char *store_rhttp_escape(const char *s) {
  char *e = curl_easy_escape(NULL, s, 0), *copy;
  if (e == NULL) return NULL;
  copy = strdup(e); /* callers free() it: do not leak curl's allocator */
  curl_free(e);
  return copy;
}

/* The body being received; grows by doubling, bounded by max. */
typedef struct sink {
  char *buf;
  size_t len, cap, max;
  int too_big, nomem;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg) {
  sink *s = arg;
  size_t n = size * nmemb;

  if (n > s->max - s->len) {
    s->too_big = 1;
    return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
  }
  if (s->len + n + 1 > s->cap) {
    size_t cap = s->cap ? s->cap : 16384;
    char *b;
    while (cap < s->len + n + 1) cap *= 2;
    if ((b = realloc(s->buf, cap)) == NULL) {
      s->nomem = 1;
      return 0;
    }
    s->buf = b;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, ptr, n);
  s->len += n;
  return n;
}

/* Sets the options of one request on c; 0 or -1 when out of memory. */
static int setup(store_rhttp *h, CURL *c, const char *method, const char *url,
                 const void *body, size_t body_len, sink *s,
                 struct curl_slist **headers, char *errbuf) {
  long connect_ms = h->timeout_ms < CONNECT_MAX_MS ? h->timeout_ms : CONNECT_MAX_MS;

  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
  /* --remote is an http(s) URL; never let it turn into file:// or ftp://. */
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  if (h->user_agent != NULL) curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);

  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "POST") == 0) {
    struct curl_slist *more;
    /* No "Expect: 100-continue" round trip before the body. */
    if ((*headers = curl_slist_append(NULL, "Expect:")) == NULL) return -1;
    more = curl_slist_append(*headers, "Content-Type: application/octet-stream");
    if (more == NULL) return -1;
    *headers = more;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  }
  return 0;
}

store_rc store_rhttp_request(store_rhttp *h, const char *method,
                             const char *url, const void *body,
                             size_t body_len, size_t max_len,
                             store_rhttp_resp *out, char *err) {
  char errbuf[CURL_ERROR_SIZE] = "";
  struct curl_slist *headers = NULL;
  sink s = { .max = max_len };
  curl_off_t clen = -1;
  struct curl_header *hv;
  long status = 0;
  store_rc rc;
  CURLcode cc;
  CURL *c;

  assert(h != NULL && method != NULL && url != NULL && out != NULL);
  if ((c = borrow(h)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory (curl handle)");
  if (setup(h, c, method, url, body, body_len, &s, &headers, errbuf) != 0) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  cc = curl_easy_perform(c);
  if (s.too_big) {
    rc = store_seterr(err, STORE_TOOBIG, "answer of %s %s is over %zu bytes",
                      method, url, max_len);
    goto out;
  }
  if (s.nomem) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if (cc != CURLE_OK) {
    const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);
    fprintf(stderr, "remote: %s %s: %s\n", method, url, why);
    rc = store_seterr(err, STORE_IO, "remote server: %s", why);
    goto out;
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen);
  if (s.buf == NULL && (s.buf = malloc(1)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  s.buf[s.len] = 0;
  out->status = status;
  out->body = s.buf;
  out->len = s.len;
  out->content_length = clen;
  out->ingest[0] = '\0';
  if (curl_easy_header(c, "X-Profefs-Ingest", 0, CURLH_HEADER, -1, &hv) ==
      CURLHE_OK)
    snprintf(out->ingest, sizeof out->ingest, "%s", hv->value);
  s.buf = NULL;
  rc = STORE_OK;
out:
  free(s.buf);
  curl_slist_free_all(headers);
  give_back(h, c);
  return rc;
}
