/*
** scrape.h — pulls the standard Go /debug/pprof endpoints of targets on a
** schedule and ingests what it gets into a store (local or remote).
**
** One thread per target; scrapes of one target never overlap; failures are
** retried with exponential backoff; one log line per scrape on stderr.
*/
#ifndef PROFEFS_SCRAPE_H
#define PROFEFS_SCRAPE_H

#include <stdint.h>

#include "store.h"

#define SCRAPE_ERRMAX 256

typedef struct scrape_target {
  char *url;            /* base, e.g. "http://app:6060" (no trailing /debug/pprof) */
  char *service;
  char *labels;         /* canonical label set, "" for none */
  int64_t every_sec;    /* period; default 60 */
  int64_t cpu_seconds;  /* length of the cpu profile; default min(10, every) */
  unsigned types;       /* bit (1u << meta_type) per type to pull */
} scrape_target;
/* In scrape_start / scrape_once a field that is 0 (types, every_sec,
** cpu_seconds) takes its default; labels may be NULL.
**
** Endpoints pulled per type, under <url>/debug/pprof/:
**   cpu -> profile?seconds=N   heap, block, mutex, goroutine, threadcreate
**   -> the same name           other -> allocs   trace -> trace?seconds=N
** A pprof answer without samples (e.g. mutex when the program never set
** runtime.SetMutexProfileFraction, cpu of an idle program) is logged as
** "empty" and skipped: it is not a failure. */

/* Types pulled when none are given. */
#define SCRAPE_DEFAULT_TYPES                                             \
  ((1u << META_CPU) | (1u << META_HEAP) | (1u << META_GOROUTINE) |      \
   (1u << META_MUTEX) | (1u << META_BLOCK))

/* Parses a comma-separated list of type names ("cpu,heap") into a bit set.
** Returns 0 and *out, or -1 (*out unchanged) for an unknown name, wall
** (no /debug/pprof endpoint gives one) or an empty list. */
int scrape_types_parse(const char *list, unsigned *out);

/* Parses a config file: one target per line,
**   <url> service=<S> [labels=k=v,k=v] [every=60s] [types=cpu,heap] [seconds=10]
** '#' starts a comment.  Returns 0 and *out (free with scrape_targets_free)
** or -1 with "file:line: reason" in err. */
int scrape_config_load(const char *path, scrape_target **out, size_t *n,
                       char err[SCRAPE_ERRMAX]);
void scrape_targets_free(scrape_target *t, size_t n);

typedef struct scrape scrape;

/* Starts one scraping thread per target; st must outlive the scraper.
** Targets are copied. Returns 0, or -1 with a reason in err. */
int scrape_start(store *st, const scrape_target *targets, size_t n,
                 long timeout_ms, scrape **out, char err[SCRAPE_ERRMAX]);

/* Runs one round of every target synchronously (for `--once` and tests);
** returns the number of failed scrapes. */
int scrape_once(store *st, const scrape_target *targets, size_t n,
                long timeout_ms);

/* Stops the threads (interrupting waits and transfers) and frees s;
** accepts NULL. */
void scrape_stop(scrape *s);

#endif /* PROFEFS_SCRAPE_H */
