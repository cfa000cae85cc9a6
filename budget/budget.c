/*
** budget.c — the memory budget of budget.h: a byte counter under a mutex
** and a condition variable that releases signal.
**
** Invariant: used <= limit; peak is the largest used ever seen.
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "budget.h"

struct budget {
  pthread_mutex_t mu;
  pthread_cond_t freed; /* signalled by every release */
  size_t limit, used, peak;
  unsigned wait_ms;
  uint64_t waited, refused;
};

budget *budget_new(size_t limit, unsigned wait_ms) {
  budget *b;
  pthread_condattr_t ca;

  assert(limit > 0);
  if ((b = calloc(1, sizeof *b)) == NULL)
    return NULL;
  /* deadlines on the monotonic clock: a clock step must not stretch or
  ** cut a wait */
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&b->freed, &ca);
  pthread_condattr_destroy(&ca);
  pthread_mutex_init(&b->mu, NULL);
  b->limit = limit;
  b->wait_ms = wait_ms;
  return b;
}

void budget_free(budget *b) {
  if (b == NULL)
    return;
  assert(b->used == 0);
  pthread_cond_destroy(&b->freed);
  pthread_mutex_destroy(&b->mu);
  free(b);
}

int budget_fits(const budget *b, size_t n) {
  return b == NULL || n <= b->limit;   /* limit never changes */
}

int budget_reserve(budget *b, size_t n) {
  struct timespec deadline;
  int rc = 0, timed_out = 0;

  if (b == NULL || n == 0)
    return 0;
  pthread_mutex_lock(&b->mu);
  if (n > b->limit) {
    b->refused++;
    pthread_mutex_unlock(&b->mu);
    return -1;
  }
  if (b->used + n > b->limit) {
    b->waited++;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += b->wait_ms / 1000;
    deadline.tv_nsec += (long)(b->wait_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000;
    }
    while (b->used + n > b->limit && !timed_out)
      timed_out = pthread_cond_timedwait(&b->freed, &b->mu, &deadline) ==
                  ETIMEDOUT;
  }
  if (b->used + n > b->limit) {
    b->refused++;
    rc = -1;
  } else {
    b->used += n;
    if (b->used > b->peak)
      b->peak = b->used;
  }
  pthread_mutex_unlock(&b->mu);
  return rc;
}

void budget_release(budget *b, size_t n) {
  if (b == NULL || n == 0)
    return;
  pthread_mutex_lock(&b->mu);
  assert(n <= b->used);
  b->used -= n;
  pthread_cond_broadcast(&b->freed);
  pthread_mutex_unlock(&b->mu);
}

void budget_get_stats(budget *b, budget_stats *out) {
  budget_stats s = {0};

  assert(out != NULL);
  if (b != NULL) {
    pthread_mutex_lock(&b->mu);
    s.limit = b->limit;
    s.used = b->used;
    s.peak = b->peak;
    s.waited = b->waited;
    s.refused = b->refused;
    pthread_mutex_unlock(&b->mu);
  }
  *out = s;
}
