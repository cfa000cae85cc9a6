/*
** fetch.c — GET of one /debug/pprof endpoint (see fetch.h).
*/
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fetch.h"

/* No endpoint answers more than this; a bigger answer is not a profile. */
#define FETCH_MAX ((size_t)256 << 20)

typedef struct sink {
  char *buf;
  size_t len, cap;
  int too_big, nomem;
  const atomic_int *stop;
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg) {
  sink *s = arg;
  size_t n = size * nmemb;

  if (n > FETCH_MAX - s->len) {
    s->too_big = 1;
    return 0;
  }
  if (s->len + n > s->cap) {
    size_t cap = s->cap ? s->cap : 65536;
    char *b;
    while (cap < s->len + n) cap *= 2;
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

/* Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  sink *s = arg;
  (void)dt, (void)dn, (void)ut, (void)un;
  return atomic_load(s->stop) != 0;
}

scrape_fetch_rc scrape_fetch(void *c, const char *url, long timeout_ms,
                             const atomic_int *stop, long *status,
                             void **body, size_t *len,
                             char err[SCRAPE_ERRMAX]) {
  char errbuf[CURL_ERROR_SIZE] = "";
  sink s = { .stop = stop };
  scrape_fetch_rc rc;
  CURLcode cc;

  assert(c != NULL && url != NULL && stop != NULL);
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_USERAGENT, "profefs-scrape");

  cc = curl_easy_perform(c);
  if (cc == CURLE_ABORTED_BY_CALLBACK || atomic_load(stop)) {
    snprintf(err, SCRAPE_ERRMAX, "stopped");
    rc = SCRAPE_FETCH_STOPPED;
  } else if (s.too_big) {
    snprintf(err, SCRAPE_ERRMAX, "answer over %zu bytes", FETCH_MAX);
    rc = SCRAPE_FETCH_FAILED;
  } else if (s.nomem) {
    snprintf(err, SCRAPE_ERRMAX, "out of memory");
    rc = SCRAPE_FETCH_FAILED;
  } else if (cc != CURLE_OK) {
    snprintf(err, SCRAPE_ERRMAX, "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
    rc = SCRAPE_FETCH_FAILED;
  } else {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    *body = s.buf;
    *len = s.len;
    s.buf = NULL;
    rc = SCRAPE_FETCH_OK;
  }
  free(s.buf);
  return rc;
}
