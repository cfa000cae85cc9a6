/*
** budget.h — one memory budget for the buffers whose size a client
** decides: HTTP request bodies (httpd/), profiles inflated to be checked
** for ingest (proto/, through store/), and files being written into the
** mount (fs/).  Each takes bytes before it allocates them and gives them
** back when it frees them, so that together they stay under one limit
** however many connections or open files there are.
**
** A reservation that does not fit waits up to the budget's wait time for
** others to give bytes back, then fails; the caller answers "busy" (HTTP
** 503 with Retry-After, ENOMEM on the mount).  One larger than the whole
** limit fails at once.  Waiting is not fair: small reservations may pass
** a waiting big one, which then fails after its wait.
**
** Thread-safe.  A NULL budget is unlimited: every call on it succeeds and
** does nothing, so code that may run without one (tests, `profefs merge`)
** needs no special case.
*/
#ifndef PROFEFS_BUDGET_H
#define PROFEFS_BUDGET_H

#include <stddef.h>
#include <stdint.h>

typedef struct budget budget;

/* A budget of limit bytes (> 0) whose reservations wait up to wait_ms.
** NULL when out of memory. */
budget *budget_new(size_t limit, unsigned wait_ms);

/* Frees b; accepts NULL.  Everything must have been released. */
void budget_free(budget *b);

/* Takes n bytes from b, waiting as described above.  0, or -1 when they
** did not become available (nothing taken). */
int budget_reserve(budget *b, size_t n);

/* 1 when n bytes are within b's limit (a NULL b takes anything), so that
** budget_reserve(b, n) may succeed once others give bytes back; 0 when it
** never will, and the caller answers "too big" rather than "busy". */
int budget_fits(const budget *b, size_t n);

/* Gives back n bytes taken by budget_reserve; accepts NULL and 0. */
void budget_release(budget *b, size_t n);

typedef struct budget_stats {
  size_t limit, used, peak; /* peak: most bytes ever taken at once */
  uint64_t waited;          /* reservations that had to wait */
  uint64_t refused;         /* reservations that failed */
} budget_stats;

/* A snapshot of b's counters (all zero for NULL). */
void budget_get_stats(budget *b, budget_stats *out);

#endif /* PROFEFS_BUDGET_H */
