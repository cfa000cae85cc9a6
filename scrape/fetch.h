/*
** fetch.h — private to scrape/: one GET of a /debug/pprof endpoint with
** libcurl, abortable from another thread.
**
** A fetch checks *stop from curl's progress callback (called at least once
** a second, also while the target is silent), so a scraper being stopped
** never waits for a 30-second cpu profile to finish.
*/
#ifndef PROFEFS_SCRAPE_FETCH_H
#define PROFEFS_SCRAPE_FETCH_H

#include <stdatomic.h>
#include <stddef.h>

#include "scrape.h"

typedef enum scrape_fetch_rc {
  SCRAPE_FETCH_OK = 0,  /* an HTTP answer arrived (any status) */
  SCRAPE_FETCH_FAILED,  /* no answer: refused, timeout, reset, too big */
  SCRAPE_FETCH_STOPPED  /* *stop became non-zero */
} scrape_fetch_rc;

/* GETs url with curl handle c (reset first; the caller keeps it between
** fetches for kept-alive connections), timing out after timeout_ms.
** On SCRAPE_FETCH_OK sets *status, *body (malloc'd, caller frees) and *len;
** otherwise err says why and the OUT parameters are unchanged. */
scrape_fetch_rc scrape_fetch(void *c, const char *url, long timeout_ms,
                             const atomic_int *stop, long *status,
                             void **body, size_t *len,
                             char err[SCRAPE_ERRMAX]);

#endif /* PROFEFS_SCRAPE_FETCH_H */
