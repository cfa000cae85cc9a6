/*
** s3_http.c — signed S3 requests over libcurl.
**
** Signing is libcurl's (CURLOPT_AWS_SIGV4).  curl 7.88 leaves two things to
** the caller: the x-amz-content-sha256 header (we send UNSIGNED-PAYLOAD,
** which S3 accepts for every request) and a canonical query string (callers
** pass queries already sorted by name and percent-encoded, see
** store_s3_buf_enc; curl signs the query as it finds it in the URL).
**
** Every request has a connect and a total timeout, and runs with
** CURLOPT_NOSIGNAL, so S3 being down costs a bounded time, never a hang.
** All our requests are idempotent (GET, HEAD, DELETE, and PUT of a key that
** is a function of the bytes), so each is retried with backoff when no
** answer came, on 5xx and on SlowDown; a failure after that is
** STORE_UNAVAILABLE (503 over HTTP, EIO on the mount).
**
** Connections: every handle, single requests and the multi of a merge
** alike, uses the pool's share (CURL_LOCK_DATA_CONNECT), so one cache of
** connections per store serves all of them and a merge reuses what the
** last one opened (a multi of its own closed its 16 connections at each
** merge: TIME_WAIT sockets, and TLS handshakes on AWS).
**
** Invariants (pool, under mu): idle[0..nidle) are easy handles no thread
** uses; a borrowed handle belongs to one request until given back.  The
** share outlives every handle (freed last); lock[d] guards its data d.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "s3_int.h"

#define POOL_MAX 16
#define CONNECT_MAX_MS 3000L
#define ATTEMPTS 3
/* Idle connections the share keeps: a merge's 16 plus the single requests
** of the other threads (libcurl's default, 4 per handle of the multi that
** gives one back, would close a merge's connections at the next GET). */
#define CONNS_MAX 64L

struct s3_pool {
  pthread_mutex_t mu;
  CURL *idle[POOL_MAX];
  size_t nidle;
  CURLSH *share;
  pthread_mutex_t lock[CURL_LOCK_DATA_LAST];
};

static void share_lock(CURL *c, curl_lock_data d, curl_lock_access a, void *arg) {
  s3_pool *p = arg;
  (void)c;
  (void)a;
  pthread_mutex_lock(&p->lock[d]);
}

static void share_unlock(CURL *c, curl_lock_data d, void *arg) {
  s3_pool *p = arg;
  (void)c;
  pthread_mutex_unlock(&p->lock[d]);
}

s3_pool *store_s3_pool_new(void) {
  s3_pool *p = calloc(1, sizeof *p);
  if (p == NULL) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  for (int d = 0; d < CURL_LOCK_DATA_LAST; d++) pthread_mutex_init(&p->lock[d], NULL);
  if ((p->share = curl_share_init()) == NULL ||
      curl_share_setopt(p->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
      curl_share_setopt(p->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
      curl_share_setopt(p->share, CURLSHOPT_USERDATA, p) != CURLSHE_OK ||
      curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT) != CURLSHE_OK ||
      curl_share_setopt(p->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) != CURLSHE_OK) {
    store_s3_pool_free(p);
    return NULL;
  }
  return p;
}

void store_s3_pool_free(s3_pool *p) {
  if (p == NULL) return;
  for (size_t i = 0; i < p->nidle; i++) curl_easy_cleanup(p->idle[i]);
  curl_share_cleanup(p->share); /* closes the pooled connections */
  for (int d = 0; d < CURL_LOCK_DATA_LAST; d++) pthread_mutex_destroy(&p->lock[d]);
  pthread_mutex_destroy(&p->mu);
  free(p);
}

static CURL *borrow(s3_pool *p) {
  CURL *c = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->nidle > 0) c = p->idle[--p->nidle];
  pthread_mutex_unlock(&p->mu);
  if (c != NULL) {
    curl_easy_reset(c);
    return c;
  }
  return curl_easy_init();
}

static void give_back(s3_pool *p, CURL *c) {
  if (c == NULL) return;
  pthread_mutex_lock(&p->mu);
  if (p->nidle < POOL_MAX) {
    p->idle[p->nidle++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&p->mu);
  if (c != NULL) curl_easy_cleanup(c);
}

/* ---- buffers and encoding ---------------------------------------------------- */

int store_s3_buf_add(s3_buf *b, const char *s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) return -1;
    b->p = np;
    b->cap = cap;
  }
  if (n > 0) memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
  return 0;
}

int store_s3_buf_enc(s3_buf *b, const char *s, int keep_slash) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    unsigned char c = *p;
    char e[3];
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
        (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
        c == '~' || (keep_slash && c == '/')) {
      if (store_s3_buf_add(b, (const char *)p, 1) != 0) return -1;
      continue;
    }
    e[0] = '%';
    e[1] = hex[c >> 4];
    e[2] = hex[c & 15];
    if (store_s3_buf_add(b, e, 3) != 0) return -1;
  }
  return 0;
}

/* ---- one request ------------------------------------------------------------- */

typedef struct sink {
  s3_buf b;
  size_t max;
  int over;
  budget *bud;  /* the buffer's capacity is taken from it (NULL: none) */
  size_t held;  /* ... this much of it so far */
  int busy;     /* the budget had no room */
} sink;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *arg) {
  sink *k = arg;
  size_t n = size * nmemb;
  if (k->b.len + n > k->max) {
    k->over = 1;
    return 0;
  }
  if (store_s3_buf_add(&k->b, ptr, n) != 0) return 0;
  /* a grown buffer is taken from the budget at once (a merge holds up
  ** to MERGE_INFLIGHT of them) */
  if (k->bud != NULL && k->b.cap > k->held) {
    if (budget_reserve(k->bud, k->b.cap - k->held) != 0) {
      k->busy = 1;
      return 0;
    }
    k->held = k->b.cap;
  }
  return n;
}

void store_s3_resp_clear(s3_resp *r) {
  if (r == NULL) return;
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* The URL of key (NULL: the bucket) with query (may be NULL). */
static char *make_url(store_s3 *s, const char *key, const char *query) {
  s3_buf b = {0};
  int bad = store_s3_buf_add(&b, s->base, strlen(s->base)) != 0;
  if (key != NULL) {
    bad = bad || store_s3_buf_add(&b, "/", 1) != 0 ||
          store_s3_buf_enc(&b, s->prefix, 1) != 0 ||
          store_s3_buf_enc(&b, key, 1) != 0;
  } else if (s->vhost) {
    bad = bad || store_s3_buf_add(&b, "/", 1) != 0; /* virtual-hosted root */
  }
  if (query != NULL && query[0] != '\0')
    bad = bad || store_s3_buf_add(&b, "?", 1) != 0 ||
          store_s3_buf_add(&b, query, strlen(query)) != 0;
  if (bad) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

/* Sets up c for one request; the caller owns *hdrs (curl_slist_free_all). */
static int setup(store_s3 *s, CURL *c, const char *method, const char *url,
                 const void *body, size_t len, const char *const *extra,
                 sink *k, struct curl_slist **hdrs) {
  struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
  for (size_t i = 0; h != NULL && extra != NULL && extra[i] != NULL; i++) {
    struct curl_slist *h2 = curl_slist_append(h, extra[i]);
    if (h2 == NULL) curl_slist_free_all(h);
    h = h2;
  }
  if (h != NULL && s->token_hdr != NULL) {
    struct curl_slist *h2 = curl_slist_append(h, s->token_hdr);
    if (h2 == NULL) curl_slist_free_all(h);
    h = h2;
  }
  if (h == NULL) return -1;
  *hdrs = h;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, s->timeout_ms);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   s->timeout_ms < CONNECT_MAX_MS ? s->timeout_ms : CONNECT_MAX_MS);
  curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
  curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, k);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "profefs");
  curl_easy_setopt(c, CURLOPT_SHARE, s->pool->share);
  curl_easy_setopt(c, CURLOPT_MAXCONNECTS, CONNS_MAX);
  if (strcmp(method, "HEAD") == 0) {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (strcmp(method, "PUT") == 0) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "PUT");
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  }
  return 0;
}

/* 1 when an answer asks for a retry: 5xx, or S3's SlowDown (503 too, but
** some implementations send it as 429/400). */
static int retryable(long status, const sink *k) {
  if (status >= 500) return 1;
  return status == 429 ||
         (status == 400 && k->b.p != NULL && strstr(k->b.p, "<Code>SlowDown<") != NULL);
}

/* 50 ms, 200 ms: the whole request stays within a few timeouts. */
static long backoff_ms(int attempt) { return attempt == 0 ? 50L : 200L; }

static void backoff(int attempt) {
  struct timespec ts = {0, backoff_ms(attempt) * 1000000L};
  nanosleep(&ts, NULL);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

store_rc store_s3_request(store_s3 *s, const char *method, const char *key,
                          const char *query, const void *body, size_t len,
                          const char *const *headers, size_t max_len,
                          s3_resp *out, char *err) {
  char *url = make_url(s, key, query);
  char cerr[CURL_ERROR_SIZE];
  store_rc rc = STORE_NOMEM;
  sink k = {.max = max_len};
  long status = 0;
  CURL *c = NULL;

  if (url == NULL || (c = borrow(s->pool)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
    struct curl_slist *hdrs = NULL;
    CURLcode cc;
    if (attempt > 0) {
      backoff(attempt - 1);
      curl_easy_reset(c);
    }
    k.b.len = 0;
    k.over = 0;
    if (k.b.p != NULL) k.b.p[0] = '\0';
    if (setup(s, c, method, url, body, len, headers, &k, &hdrs) != 0) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto out;
    }
    cerr[0] = '\0';
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    cc = curl_easy_perform(c);
    curl_slist_free_all(hdrs);
    if (k.over) {
      rc = store_seterr(err, STORE_TOOBIG, "S3 answer to %s %s is over %zu bytes",
                        method, key ? key : s->bucket, max_len);
      goto out;
    }
    if (cc != CURLE_OK) {
      rc = store_seterr(err, STORE_UNAVAILABLE, "S3 at %s unavailable: %s",
                        s->endpoint, cerr[0] ? cerr : curl_easy_strerror(cc));
      continue;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    rc = STORE_OK;
    if (retryable(status, &k) && attempt + 1 < ATTEMPTS) continue;
    break;
  }
  if (rc == STORE_OK) {
    curl_off_t cl = -1;
    if (k.b.p == NULL && store_s3_buf_add(&k.b, "", 0) != 0) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto out;
    }
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    out->status = status;
    out->body = k.b.p;
    out->len = k.b.len;
    out->content_length = cl;
    k.b.p = NULL;
  }
out:
  if (c != NULL) {
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
    give_back(s->pool, c);
  }
  free(k.b.p);
  free(url);
  return rc;
}

store_rc store_s3_status_rc(store_s3 *s, const char *what, const s3_resp *r,
                            char *err) {
  char code[64], msg[256];
  store_s3_xml_error(r->body, r->len, code, sizeof code, msg, sizeof msg);
  if (r->status == 404 && strcmp(code, "NoSuchBucket") != 0)
    return store_seterr(err, STORE_NOTFOUND, "%s: not found", what);
  /* throttled past the retries: the client may retry later (503) */
  if (r->status >= 500 || r->status == 429 || strcmp(code, "SlowDown") == 0)
    return store_seterr(err, STORE_UNAVAILABLE, "%s: S3 at %s answered %ld%s%s%s%s",
                        what, s->endpoint, r->status, code[0] ? " " : "", code,
                        msg[0] ? ": " : "", msg);
  return store_seterr(err, STORE_IO, "%s: S3 answered %ld%s%s%s%s", what,
                      r->status, code[0] ? " " : "", code, msg[0] ? ": " : "",
                      msg);
}

/* ---- many GETs at once ---------------------------------------------------------- */

typedef struct slot {
  CURL *c;
  struct curl_slist *hdrs;
  char *url;
  sink k;
  size_t i;
  int attempts;
  int64_t retry_at; /* waiting out a back-off until then (now_ms); 0: not */
  int done;         /* finished: answer (or failure) held until delivered */
  CURLcode result;
  long status;
} slot;

static store_rc slot_start(store_s3 *s, CURLM *m, slot *sl, const char *key,
                           char *err) {
  free(sl->url);
  curl_slist_free_all(sl->hdrs);
  sl->hdrs = NULL;
  sl->k.b.len = 0;
  sl->k.over = 0;
  sl->k.busy = 0;
  if ((sl->url = make_url(s, key, NULL)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  curl_easy_reset(sl->c);
  if (setup(s, sl->c, "GET", sl->url, NULL, 0, NULL, &sl->k, &sl->hdrs) != 0)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  curl_easy_setopt(sl->c, CURLOPT_PRIVATE, sl);
  if (curl_multi_add_handle(m, sl->c) != CURLM_OK)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  return STORE_OK;
}

/* The answer a finished slot holds: STORE_OK when it is a 200. */
static store_rc slot_result(store_s3 *s, const slot *sl, const char *key,
                            char *err) {
  s3_resp r;
  char what[S3_KEY_MAX + 32];
  if (sl->k.busy)
    return store_seterr(err, STORE_BUSY,
                        "busy: memory budget exhausted, retry later");
  if (sl->k.over) /* stored, so not the client's fault: 500 */
    return store_seterr(err, STORE_IO, "stored profile %s is over %zu bytes "
                        "(--max-inflate)", key, sl->k.max);
  if (sl->result != CURLE_OK)
    return store_seterr(err, STORE_UNAVAILABLE, "S3 at %s unavailable: %s",
                        s->endpoint, curl_easy_strerror(sl->result));
  if (sl->status == 200) return STORE_OK;
  r = (s3_resp){.status = sl->status, .body = sl->k.b.p ? sl->k.b.p : (char *)"",
                .len = sl->k.b.len};
  snprintf(what, sizeof what, "profile %s", key);
  return store_s3_status_rc(s, what, &r, err);
}

/* Key i always lives in slot i % nslots: a slot is given the next key only
** once its own answer was delivered, and answers are delivered in key
** order, so at most nslots answers are held and the caller sees the same
** order (and a merge gives the same bytes) every time.  A slot that backs
** off before a retry only waits for its time (retry_at) while the loop
** keeps driving the others: a sleep here stalled every transfer in
** flight, once per failing key. */
store_rc store_s3_fetch_many(store_s3 *s, const char *const *keys, size_t n,
                             size_t inflight, size_t max_len, s3_fetch_fn fn,
                             void *arg, char *err) {
  CURLM *m = curl_multi_init();
  slot *slots = NULL;
  size_t nslots = inflight < n ? inflight : n, next = 0, deliver = 0;
  store_rc rc = STORE_OK;

  if (m == NULL || (slots = calloc(nslots ? nslots : 1, sizeof *slots)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  curl_multi_setopt(m, CURLMOPT_MAX_HOST_CONNECTIONS, (long)nslots);
  curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, CONNS_MAX);
  for (size_t j = 0; j < nslots; j++) {
    slots[j].k.max = max_len;
    slots[j].k.bud = s->budget;
    if ((slots[j].c = borrow(s->pool)) == NULL) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto out;
    }
  }
  for (; next < nslots; next++) {
    slots[next].i = next;
    if ((rc = slot_start(s, m, &slots[next], keys[next], err)) != STORE_OK) goto out;
  }
  while (deliver < n && rc == STORE_OK) {
    int still, left;
    CURLMsg *msg;
    if (curl_multi_perform(m, &still) != CURLM_OK) {
      rc = store_seterr(err, STORE_IO, "curl multi failed");
      break;
    }
    while (rc == STORE_OK && (msg = curl_multi_info_read(m, &left)) != NULL) {
      slot *sl = NULL;
      if (msg->msg != CURLMSG_DONE) continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&sl);
      sl->result = msg->data.result;
      curl_multi_remove_handle(m, sl->c);
      curl_easy_getinfo(sl->c, CURLINFO_RESPONSE_CODE, &sl->status);
      if (!sl->k.over && !sl->k.busy &&
          (sl->result != CURLE_OK || retryable(sl->status, &sl->k)) &&
          ++sl->attempts < ATTEMPTS) {
        sl->retry_at = now_ms() + backoff_ms(sl->attempts - 1);
        continue;
      }
      sl->done = 1;
    }
    /* restart the slots whose back-off is over; poll until the next one */
    long wait = 100;
    int64_t t = now_ms();
    for (size_t j = 0; rc == STORE_OK && j < nslots; j++) {
      slot *sl = &slots[j];
      if (sl->retry_at == 0) continue;
      if (sl->retry_at <= t) {
        sl->retry_at = 0;
        rc = slot_start(s, m, sl, keys[sl->i], err);
        wait = 0; /* curl_multi_perform starts it */
      } else if (sl->retry_at - t < wait) {
        wait = (long)(sl->retry_at - t);
      }
    }
    /* deliver what is ready, in key order, and reuse those slots */
    while (rc == STORE_OK && deliver < n && slots[deliver % nslots].done) {
      slot *sl = &slots[deliver % nslots];
      if ((rc = slot_result(s, sl, keys[deliver], err)) != STORE_OK) break;
      rc = fn(deliver, sl->k.b.p ? sl->k.b.p : "", sl->k.b.len, arg, err);
      deliver++;
      sl->done = 0;
      sl->attempts = 0;
      if (rc == STORE_OK && next < n) {
        sl->i = next;
        rc = slot_start(s, m, sl, keys[next++], err);
      }
    }
    if (rc == STORE_OK && deliver < n && wait > 0)
      curl_multi_poll(m, NULL, 0, (int)wait, NULL);
  }
out:
  for (size_t j = 0; slots != NULL && j < nslots; j++) {
    if (slots[j].c != NULL) {
      curl_multi_remove_handle(m, slots[j].c);
      give_back(s->pool, slots[j].c);
    }
    curl_slist_free_all(slots[j].hdrs);
    free(slots[j].url);
    free(slots[j].k.b.p);
    budget_release(slots[j].k.bud, slots[j].k.held);
  }
  free(slots);
  curl_multi_cleanup(m);
  return rc;
}
