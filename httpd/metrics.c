/*
** metrics.c — the counters behind GET /debug/metrics and their Prometheus
** text exposition (format 0.0.4):
**
**   http_requests_total{method,code}     answered requests
**   profefs_ingest_profiles_total        profiles stored over HTTP
**   profefs_ingest_bytes_total           their bytes
**   profefs_merge_seconds                histogram of merge durations
**   profefs_store_*                      store_get_stats() at scrape time
**
** Invariants: every field of struct httpd_metrics is read and written with
** mu held.  The request table holds at most NREQ distinct (method, code)
** pairs (methods outside a fixed list count as "OTHER"), so a client cannot
** grow it; pairs beyond NREQ are counted in `overflow`.
*/
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define NREQ 64

static const double merge_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                      0.5,   1,    2.5,   5,    10,  30};
#define NBOUNDS (sizeof merge_bounds / sizeof merge_bounds[0])

static const char *const known_methods[] = {"GET",     "HEAD",  "POST",
                                            "PUT",     "DELETE", "OPTIONS",
                                            "PATCH"};

typedef struct req_count {
  const char *method; /* one of known_methods or "OTHER" */
  unsigned code;
  uint64_t n;
} req_count;

typedef struct counters {
  req_count req[NREQ];
  size_t nreq;
  uint64_t overflow;
  uint64_t ingests, ingest_bytes;
  uint64_t merge_in[NBOUNDS + 1]; /* per bucket, not cumulative; last = +Inf */
  uint64_t merges;
  double merge_sum;
} counters;

struct httpd_metrics {
  pthread_mutex_t mu;
  counters c;
};

httpd_metrics *httpd_metrics_new(void)
{
  httpd_metrics *m = calloc(1, sizeof *m);

  if (m != NULL && pthread_mutex_init(&m->mu, NULL) != 0) {
    free(m);
    m = NULL;
  }
  return m;
}

void httpd_metrics_free(httpd_metrics *m)
{
  if (m == NULL)
    return;
  pthread_mutex_destroy(&m->mu);
  free(m);
}

static const char *method_label(const char *method)
{
  size_t i;

  for (i = 0; i < sizeof known_methods / sizeof known_methods[0]; i++)
    if (method != NULL && strcmp(method, known_methods[i]) == 0)
      return known_methods[i];
  return "OTHER";
}

void httpd_metrics_request(httpd_metrics *m, const char *method,
                           unsigned status)
{
  const char *label = method_label(method);
  counters *c = &m->c;
  size_t i;

  pthread_mutex_lock(&m->mu);
  for (i = 0; i < c->nreq; i++)
    if (c->req[i].method == label && c->req[i].code == status)
      break;
  if (i < c->nreq) {
    c->req[i].n++;
  } else if (c->nreq < NREQ) {
    c->req[c->nreq].method = label;
    c->req[c->nreq].code = status;
    c->req[c->nreq].n = 1;
    c->nreq++;
  } else {
    c->overflow++;
  }
  pthread_mutex_unlock(&m->mu);
}

void httpd_metrics_ingest(httpd_metrics *m, size_t len)
{
  pthread_mutex_lock(&m->mu);
  m->c.ingests++;
  m->c.ingest_bytes += len;
  pthread_mutex_unlock(&m->mu);
}

void httpd_metrics_merge(httpd_metrics *m, double seconds)
{
  size_t b = 0;

  while (b < NBOUNDS && seconds > merge_bounds[b])
    b++;
  pthread_mutex_lock(&m->mu);
  m->c.merge_in[b]++;
  m->c.merges++;
  m->c.merge_sum += seconds;
  pthread_mutex_unlock(&m->mu);
}

static int cmp_req(const void *a, const void *b)
{
  const req_count *x = a, *y = b;
  int c = strcmp(x->method, y->method);

  if (c != 0)
    return c;
  return (x->code > y->code) - (x->code < y->code);
}

static void print_header(FILE *f, const char *name, const char *type,
                         const char *help)
{
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void print_store(FILE *f, store *st)
{
  static const struct {
    const char *name, *type, *help;
    size_t off;
  } rows[] = {
    {"profefs_store_profiles", "gauge", "Profiles in the store.",
     offsetof(store_stats, profiles)},
    {"profefs_store_bytes", "gauge", "Sum of the sizes of stored profiles.",
     offsetof(store_stats, bytes)},
    {"profefs_store_disk_bytes", "gauge", "Size of the store's files on disk.",
     offsetof(store_stats, disk_bytes)},
    {"profefs_store_ingests_total", "counter",
     "Profiles the store accepted since it was opened.",
     offsetof(store_stats, ingests)},
    {"profefs_store_commits_total", "counter",
     "Group commits since the store was opened.",
     offsetof(store_stats, commits)},
    {"profefs_store_cache_hits_total", "counter",
     "Objects read from the local object cache (S3 --cache).",
     offsetof(store_stats, cache_hits)},
    {"profefs_store_cache_misses_total", "counter",
     "Objects the local object cache did not have (fetched from S3).",
     offsetof(store_stats, cache_misses)},
    {"profefs_store_cache_bytes", "gauge",
     "Bytes the local object cache holds (at most --cache-size).",
     offsetof(store_stats, cache_bytes)},
    {"profefs_store_rollups", "gauge",
     "Rollup objects in the bucket (S3: at the node's last upkeep pass).",
     offsetof(store_stats, rollups)},
    {"profefs_store_rollup_bytes", "gauge",
     "Bytes of those rollup objects.",
     offsetof(store_stats, rollup_bytes)},
    {"profefs_store_s3_lists_total", "counter",
     "List requests sent to S3 since the store was opened.",
     offsetof(store_stats, lists)},
  };
  store_stats s;
  size_t i;
  int64_t v;

  if (store_get_stats(st, &s) != STORE_OK)
    return;
  for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    memcpy(&v, (const char *)&s + rows[i].off, sizeof v);
    if (v < 0) /* the backend cannot know it */
      continue;
    print_header(f, rows[i].name, rows[i].type, rows[i].help);
    fprintf(f, "%s %lld\n", rows[i].name, (long long)v);
  }
}

/* The memory budget's gauges and counters, when there is one. */
static void print_budget(FILE *f, budget *b)
{
  budget_stats s;

  if (b == NULL)
    return;
  budget_get_stats(b, &s);
  print_header(f, "profefs_memory_budget_bytes", "gauge",
               "The memory budget (--max-memory).");
  fprintf(f, "profefs_memory_budget_bytes %zu\n", s.limit);
  print_header(f, "profefs_memory_used_bytes", "gauge",
               "Bytes of request bodies, inflated profiles and mount write "
               "buffers held now.");
  fprintf(f, "profefs_memory_used_bytes %zu\n", s.used);
  print_header(f, "profefs_memory_peak_bytes", "gauge",
               "Most bytes held at once since the start.");
  fprintf(f, "profefs_memory_peak_bytes %zu\n", s.peak);
  print_header(f, "profefs_memory_waits_total", "counter",
               "Reservations that waited for the budget.");
  fprintf(f, "profefs_memory_waits_total %llu\n",
          (unsigned long long)s.waited);
  print_header(f, "profefs_memory_refused_total", "counter",
               "Reservations refused (503 / ENOMEM) for lack of budget.");
  fprintf(f, "profefs_memory_refused_total %llu\n",
          (unsigned long long)s.refused);
}

int httpd_metrics_render(httpd_metrics *m, store *st, budget *b, char **out,
                         size_t *len)
{
  counters snap;
  uint64_t cum = 0;
  char *buf = NULL;
  size_t n = 0, i;
  FILE *f;

  /* copy under the lock, format without it */
  pthread_mutex_lock(&m->mu);
  snap = m->c;
  pthread_mutex_unlock(&m->mu);
  qsort(snap.req, snap.nreq, sizeof snap.req[0], cmp_req);

  f = open_memstream(&buf, &n);
  if (f == NULL)
    return -1;
  print_header(f, "http_requests_total", "counter",
               "HTTP requests answered, by method and status code.");
  for (i = 0; i < snap.nreq; i++)
    fprintf(f, "http_requests_total{method=\"%s\",code=\"%u\"} %llu\n",
            snap.req[i].method, snap.req[i].code,
            (unsigned long long)snap.req[i].n);
  if (snap.overflow > 0)
    fprintf(f, "http_requests_total{method=\"OTHER\",code=\"other\"} %llu\n",
            (unsigned long long)snap.overflow);

  print_header(f, "profefs_ingest_profiles_total", "counter",
               "Profiles stored through POST /api/0/profiles.");
  fprintf(f, "profefs_ingest_profiles_total %llu\n",
          (unsigned long long)snap.ingests);
  print_header(f, "profefs_ingest_bytes_total", "counter",
               "Bytes of the profiles stored through POST /api/0/profiles.");
  fprintf(f, "profefs_ingest_bytes_total %llu\n",
          (unsigned long long)snap.ingest_bytes);

  print_header(f, "profefs_merge_seconds", "histogram",
               "Time spent merging profiles for one request.");
  for (i = 0; i < NBOUNDS; i++) {
    cum += snap.merge_in[i];
    fprintf(f, "profefs_merge_seconds_bucket{le=\"%g\"} %llu\n",
            merge_bounds[i], (unsigned long long)cum);
  }
  fprintf(f, "profefs_merge_seconds_bucket{le=\"+Inf\"} %llu\n",
          (unsigned long long)snap.merges);
  fprintf(f, "profefs_merge_seconds_sum %.6f\n", snap.merge_sum);
  fprintf(f, "profefs_merge_seconds_count %llu\n",
          (unsigned long long)snap.merges);

  print_store(f, st);
  print_budget(f, b);
  if (ferror(f)) {
    fclose(f);
    free(buf);
    return -1;
  }
  if (fclose(f) != 0) {
    free(buf);
    return -1;
  }
  *out = buf;
  *len = n;
  return 0;
}
