/*
** scrape.c — the scraper: one thread per target pulls the target's
** /debug/pprof endpoints every period and ingests each answer into a store.
**
** A round pulls the configured types one after the other, so the scrapes
** of one target never overlap (a Go program serves one cpu profile at a
** time anyway); a round that runs past the period makes the next one start
** at once rather than pile up.  A transient failure (no answer, HTTP 5xx or
** 429, store I/O error) is retried with exponential backoff, a bounded
** number of times; a permanent one (404, rejected profile) is not.
**
** Stopping: scrape_stop sets `stop` under `mu` and broadcasts `cv`.
** Sleeps are timed waits on `cv` that re-check `stop`, and transfers check
** it from curl's progress callback, so every thread ends within about a
** second whatever it was doing (an ingest into a remote store is bounded by
** that store's own timeout).
**
** Invariants: stop only goes 0 -> 1, under mu; each worker's copy of its
** target and its curl handle are used by that worker's thread only.
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "fetch.h"
#include "pprof.h"
#include "scrape.h"

#define DEFAULT_EVERY 60
#define DEFAULT_CPU_SECONDS 10
#define DEFAULT_TIMEOUT_MS 30000L
/* Attempts of one scrape, and the first / largest wait between two. */
#define ATTEMPTS 4
#define BACKOFF_FIRST_MS 1000L
#define BACKOFF_MAX_MS 30000L

typedef struct worker {
  struct scrape *s;
  scrape_target t;   /* own copy, defaults applied */
  pthread_t thread;
  int started;
} worker;

struct scrape {
  store *st;
  long timeout_ms;
  atomic_int stop;
  pthread_mutex_t mu;
  pthread_cond_t cv; /* on CLOCK_MONOTONIC */
  size_t n;
  worker *w;
};

/* What one scrape of one type came to. */
typedef enum outcome { DONE, EMPTY, RETRY, FAILED, STOPPED } outcome;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps until the monotonic time deadline_ms or until stopped; returns 1
** when stopped. */
static int sleep_until(struct scrape *s, int64_t deadline_ms) {
  struct timespec ts = { (time_t)(deadline_ms / 1000),
                         (long)(deadline_ms % 1000) * 1000000L };
  int stopped;

  pthread_mutex_lock(&s->mu);
  while (!atomic_load(&s->stop) && mono_ms() < deadline_ms)
    if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT) break;
  stopped = atomic_load(&s->stop);
  pthread_mutex_unlock(&s->mu);
  return stopped;
}

/* The endpoint of type t under <url>/debug/pprof/ (malloc'd). */
static char *endpoint(const scrape_target *t, meta_type type) {
  char *u = NULL;
  int n;
  switch (type) {
    case META_CPU:
      n = asprintf(&u, "%s/debug/pprof/profile?seconds=%lld", t->url,
                   (long long)t->cpu_seconds);
      break;
    case META_TRACE:
      n = asprintf(&u, "%s/debug/pprof/trace?seconds=%lld", t->url,
                   (long long)t->cpu_seconds);
      break;
    case META_OTHER:
      n = asprintf(&u, "%s/debug/pprof/allocs", t->url);
      break;
    default:
      n = asprintf(&u, "%s/debug/pprof/%s", t->url, meta_type_name(type));
      break;
  }
  return n < 0 ? NULL : u;
}

/* One line per attempt: "scrape <url> <type> <status> <bytes> <ms>
** service=<service> [detail]". */
static void log_line(const scrape_target *t, meta_type type, const char *status,
                     size_t bytes, int64_t ms, const char *detail) {
  fprintf(stderr, "scrape %s %s %s %zu %lldms service=%s%s%s\n", t->url,
          meta_type_name(type), status, bytes, (long long)ms, t->service,
          detail[0] ? " " : "", detail);
}

/* The start of an error answer's body, on one line, as a reason:
** "(<text>)" with control characters as spaces, at most 200 bytes. */
static void body_reason(const void *body, size_t len, char *out, size_t cap) {
  const unsigned char *b = body;
  size_t i, n = len < 200 ? len : 200, o = 0;

  if (cap < 4) return;
  out[o++] = '(';
  for (i = 0; i < n && o + 2 < cap; i++)
    out[o++] = b[i] < 0x20 || b[i] == 0x7f ? ' ' : (char)b[i];
  while (o > 1 && out[o - 1] == ' ') o--;
  if (o == 1) {
    out[0] = '\0';
    return;
  }
  out[o++] = ')';
  out[o] = '\0';
}

/* Stores body as one profile of type; an answer without samples is EMPTY. */
static outcome ingest(struct scrape *s, const scrape_target *t, meta_type type,
                      const void *body, size_t len, char *detail, size_t dcap) {
  char err[STORE_ERRMAX], perr[PPROF_ERRMAX];
  store_meta m;
  store_rc rc;

  /* Checked here (and again by the store) so that a profile with nothing
  ** in it is told apart from a broken one without parsing error strings. */
  if (type != META_TRACE && pprof_check(body, len, 0, NULL, perr) == PPROF_EEMPTY) {
    snprintf(detail, dcap, "(no samples)");
    return EMPTY;
  }
  rc = store_ingest(s->st, t->service, type, t->labels, 0, body, len, &m, err);
  if (rc == STORE_OK) {
    snprintf(detail, dcap, "id=%s", m.id);
    store_meta_clear(&m);
    return DONE;
  }
  snprintf(detail, dcap, "(store: %s)", err);
  return rc == STORE_IO || rc == STORE_NOMEM ? RETRY : FAILED;
}

/* One attempt at one type: fetch, check, ingest, log. */
static outcome attempt(struct scrape *s, void *curl, const scrape_target *t,
                       meta_type type) {
  long timeout = s->timeout_ms, status = 0;
  int64_t t0 = mono_ms();
  char err[SCRAPE_ERRMAX], detail[STORE_ERRMAX + 32] = "", st[32];
  char *url = endpoint(t, type);
  void *body = NULL;
  size_t len = 0;
  outcome o;

  if (url == NULL) {
    log_line(t, type, "error", 0, 0, "(out of memory)");
    return FAILED;
  }
  if (type == META_CPU || type == META_TRACE) timeout += (long)t->cpu_seconds * 1000;
  switch (scrape_fetch(curl, url, timeout, &s->stop, &status, &body, &len, err)) {
    case SCRAPE_FETCH_STOPPED:
      o = STOPPED;
      snprintf(st, sizeof st, "stopped");
      break;
    case SCRAPE_FETCH_FAILED:
      o = RETRY;
      snprintf(st, sizeof st, "error");
      snprintf(detail, sizeof detail, "(%s)", err);
      break;
    default:
      if (status != 200) {
        o = status >= 500 || status == 429 ? RETRY : FAILED;
        snprintf(st, sizeof st, "http-%ld", status);
        body_reason(body, len, detail, sizeof detail);
      } else if (len == 0) {
        o = FAILED;
        snprintf(st, sizeof st, "error");
        snprintf(detail, sizeof detail, "(empty answer)");
      } else {
        o = ingest(s, t, type, body, len, detail, sizeof detail);
        snprintf(st, sizeof st, "%s", o == DONE ? "ok" : o == EMPTY ? "empty" : "error");
      }
      break;
  }
  log_line(t, type, st, len, mono_ms() - t0, detail);
  free(body);
  free(url);
  return o;
}

/* Scrapes one type with retries; returns 1 when it failed for good. */
static int scrape_type(struct scrape *s, void *curl, const scrape_target *t,
                       meta_type type) {
  long wait = BACKOFF_FIRST_MS;

  for (int i = 1; i <= ATTEMPTS; i++) {
    outcome o = attempt(s, curl, t, type);
    if (o == DONE || o == EMPTY || o == STOPPED) return 0;
    if (o == FAILED || i == ATTEMPTS) return 1;
    if (sleep_until(s, mono_ms() + wait)) return 0;
    wait = wait * 2 < BACKOFF_MAX_MS ? wait * 2 : BACKOFF_MAX_MS;
  }
  return 1;
}

/* One round over every type of t; returns the number of failed types. */
static int round_of(struct scrape *s, void *curl, const scrape_target *t) {
  int failed = 0;
  for (int type = 0; type < META_NTYPES && !atomic_load(&s->stop); type++)
    if (t->types & (1u << type)) failed += scrape_type(s, curl, t, (meta_type)type);
  return failed;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  struct scrape *s = w->s;
  CURL *curl = curl_easy_init();
  int64_t next = mono_ms();

  if (curl == NULL) {
    fprintf(stderr, "scrape %s: cannot create a curl handle\n", w->t.url);
    return NULL;
  }
  while (!atomic_load(&s->stop)) {
    round_of(s, curl, &w->t);
    next += w->t.every_sec * 1000;
    if (next < mono_ms()) next = mono_ms(); /* overran: start again now */
    if (sleep_until(s, next)) break;
  }
  curl_easy_cleanup(curl);
  return NULL;
}

/* Copies src into *dst applying defaults; 0, or -1 when out of memory. */
static int target_copy(scrape_target *dst, const scrape_target *src) {
  memset(dst, 0, sizeof *dst);
  dst->url = strdup(src->url);
  dst->service = strdup(src->service);
  dst->labels = strdup(src->labels ? src->labels : "");
  dst->every_sec = src->every_sec > 0 ? src->every_sec : DEFAULT_EVERY;
  dst->cpu_seconds = src->cpu_seconds > 0 ? src->cpu_seconds
                     : dst->every_sec < DEFAULT_CPU_SECONDS ? dst->every_sec
                                                            : DEFAULT_CPU_SECONDS;
  dst->types = src->types ? src->types : SCRAPE_DEFAULT_TYPES;
  return dst->url && dst->service && dst->labels ? 0 : -1;
}

/* Allocates s with copies of the targets (threads not started). */
static struct scrape *scrape_new(store *st, const scrape_target *targets,
                                 size_t n, long timeout_ms) {
  struct scrape *s = calloc(1, sizeof *s);
  pthread_condattr_t ca;

  if (s == NULL) return NULL;
  s->st = st;
  s->timeout_ms = timeout_ms > 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
  atomic_init(&s->stop, 0);
  pthread_mutex_init(&s->mu, NULL);
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&s->cv, &ca);
  pthread_condattr_destroy(&ca);
  if ((s->w = calloc(n ? n : 1, sizeof *s->w)) == NULL) {
    scrape_stop(s);
    return NULL;
  }
  for (; s->n < n; s->n++) {
    s->w[s->n].s = s;
    if (target_copy(&s->w[s->n].t, &targets[s->n]) != 0) {
      s->n++;
      scrape_stop(s);
      return NULL;
    }
  }
  return s;
}

int scrape_start(store *st, const scrape_target *targets, size_t n,
                 long timeout_ms, scrape **out, char err[SCRAPE_ERRMAX]) {
  struct scrape *s;
  int e;

  assert(st != NULL && out != NULL && (targets != NULL || n == 0));
  if (n == 0) {
    snprintf(err, SCRAPE_ERRMAX, "no targets");
    return -1;
  }
  if ((s = scrape_new(st, targets, n, timeout_ms)) == NULL) {
    snprintf(err, SCRAPE_ERRMAX, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    if ((e = pthread_create(&s->w[i].thread, NULL, worker_main, &s->w[i])) != 0) {
      snprintf(err, SCRAPE_ERRMAX, "cannot start a thread: %s", strerror(e));
      scrape_stop(s);
      return -1;
    }
    s->w[i].started = 1;
  }
  *out = s;
  return 0;
}

int scrape_once(store *st, const scrape_target *targets, size_t n,
                long timeout_ms) {
  struct scrape *s = scrape_new(st, targets, n, timeout_ms);
  CURL *curl = curl_easy_init();
  int failed = 0;

  if (s == NULL || curl == NULL) {
    fprintf(stderr, "scrape: out of memory\n");
    failed = (int)n;
    goto out;
  }
  for (size_t i = 0; i < n; i++) failed += round_of(s, curl, &s->w[i].t);
out:
  if (curl != NULL) curl_easy_cleanup(curl);
  scrape_stop(s);
  return failed;
}

void scrape_stop(scrape *s) {
  if (s == NULL) return;
  pthread_mutex_lock(&s->mu);
  atomic_store(&s->stop, 1);
  pthread_cond_broadcast(&s->cv);
  pthread_mutex_unlock(&s->mu);
  for (size_t i = 0; i < s->n; i++) {
    if (s->w[i].started) pthread_join(s->w[i].thread, NULL);
    free(s->w[i].t.url);
    free(s->w[i].t.service);
    free(s->w[i].t.labels);
  }
  free(s->w);
  pthread_cond_destroy(&s->cv);
  pthread_mutex_destroy(&s->mu);
  free(s);
}
