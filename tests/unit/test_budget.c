/*
** test_budget.c — unit tests of budget/: reservations within the limit,
** one larger than the limit refused at once, a wait that ends when another
** thread gives bytes back, a wait that times out, the counters, and the
** NULL budget that never refuses.
*/
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "budget.h"
#include "check.h"

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void *release_later(void *arg) {
  usleep(100 * 1000);
  budget_release(arg, 60);
  return NULL;
}

int main(void) {
  budget *b = budget_new(100, 2000);
  budget_stats s;
  pthread_t t;
  int64_t t0;

  CHECK(b != NULL);
  CHECK_I64(budget_reserve(b, 60), 0);
  CHECK_I64(budget_reserve(b, 40), 0);
  t0 = now_ms();
  CHECK_I64(budget_reserve(b, 101), -1); /* never fits: no wait */
  CHECK(now_ms() - t0 < 500);
  /* full: waits until the other thread gives 60 back */
  pthread_create(&t, NULL, release_later, b);
  t0 = now_ms();
  CHECK_I64(budget_reserve(b, 50), 0);
  CHECK(now_ms() - t0 >= 90 && now_ms() - t0 < 1900);
  pthread_join(t, NULL);
  budget_get_stats(b, &s);
  CHECK_I64((int64_t)s.used, 90);
  CHECK_I64((int64_t)s.peak, 100);
  CHECK_I64((int64_t)s.limit, 100);
  CHECK_I64((int64_t)s.waited, 1);
  CHECK_I64((int64_t)s.refused, 1);
  budget_release(b, 90);
  budget_free(b);

  /* a wait that nothing ends fails after the wait time */
  b = budget_new(10, 200);
  CHECK_I64(budget_reserve(b, 10), 0);
  t0 = now_ms();
  CHECK_I64(budget_reserve(b, 1), -1);
  CHECK(now_ms() - t0 >= 190);
  budget_get_stats(b, &s);
  CHECK_I64((int64_t)s.used, 10);
  CHECK_I64((int64_t)s.refused, 1);
  budget_release(b, 10);
  budget_free(b);

  /* NULL: unlimited, counters zero */
  CHECK_I64(budget_reserve(NULL, (size_t)1 << 40), 0);
  budget_release(NULL, 5);
  budget_get_stats(NULL, &s);
  CHECK_I64((int64_t)s.limit + (int64_t)s.used, 0);
  budget_free(NULL);
  return check_done("test_budget");
}
