/*
** rollup.c — hourly rollups of the local store: the merge of every profile
** of one hour of one series (service, type, labels), kept beside them so
** that a merge over days reads a few hundred rollups instead of thousands
** of profiles (local_read.c, merge_rows).
**
** Consistency does not depend on this file.  Triggers (local.c) delete the
** rollup of an hour and bump that hour's dirty mark in the very transaction
** that adds or removes one of its profiles, late arrivals and retention
** included; a rollup is written only if the mark still has the value read
** with the profiles it merges (local_write.c, exec_rollup).  So a query
** sees either a rollup equal to the merge of the hour's current profiles,
** or no rollup and those profiles.
**
** Policy, here: an hour is rolled up once it ended ROLLUP_GRACE seconds
** ago (late profiles would mostly arrive before), by a background thread
** every ROLLUP_EVERY seconds, or at once by store_maintain().  Hours of
** fewer than two profiles, or whose profiles cannot be merged, get none.
**
** Invariants:
**   - at most one pass runs at a time (pass_mu), so two passes never merge
**     the same hour twice;
**   - stop is only set by store_local_rollup_stop, under mu.
*/
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "local.h"

#define ROLLUP_GRACE 300 /* seconds after the end of an hour */
#define ROLLUP_EVERY 60  /* seconds between background passes */

struct store_local_rollup {
  store_local *l;
  pthread_t thread;
  pthread_mutex_t mu;      /* guards stop */
  pthread_cond_t wake;     /* signalled by stop */
  int stop;
  pthread_mutex_t pass_mu; /* one pass at a time */
};

static int stopping(store_local_rollup *ru) {
  pthread_mutex_lock(&ru->mu);
  int stop = ru->stop;
  pthread_mutex_unlock(&ru->mu);
  return stop;
}

/* Builds the rollups of every dirty hour that ended ROLLUP_GRACE ago. */
static store_rc pass(store_local_rollup *ru, size_t *built, char *err) {
  store_local *l = ru->l;
  store_local_hour *v = NULL;
  size_t n = 0, made = 0;
  int64_t before = ((int64_t)time(NULL) - ROLLUP_GRACE) / STORE_LOCAL_HOUR;
  pthread_mutex_lock(&ru->pass_mu);
  store_rc rc = store_local_dirty_hours(l, before, &v, &n, err);
  for (size_t i = 0; rc == STORE_OK && i < n && !stopping(ru); i++) {
    void *data = NULL;
    size_t len = 0;
    int64_t profiles = 0;
    int stored = 0;
    rc = store_local_merge_hour(l, &v[i], &data, &len, &profiles, err);
    if (rc == STORE_OK && v[i].seq != 0)
      rc = store_local_put_rollup(l, &v[i], data, len, profiles, &stored, err);
    made += (size_t)stored;
    free(data);
  }
  pthread_mutex_unlock(&ru->pass_mu);
  store_local_hours_free(v, n);
  if (rc == STORE_OK && built != NULL) *built = made;
  return rc;
}

static void *rollup_main(void *arg) {
  store_local_rollup *ru = arg;
  pthread_mutex_lock(&ru->mu);
  while (!ru->stop) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ROLLUP_EVERY;
    while (!ru->stop &&
           pthread_cond_timedwait(&ru->wake, &ru->mu, &deadline) != ETIMEDOUT) {
    }
    if (ru->stop) break;
    pthread_mutex_unlock(&ru->mu);
    /* Failures (a full disk...) are retried at the next pass; rollups are
    ** only an optimisation. */
    pass(ru, NULL, NULL);
    pthread_mutex_lock(&ru->mu);
  }
  pthread_mutex_unlock(&ru->mu);
  return NULL;
}

static void rollup_free(store_local_rollup *ru) {
  pthread_cond_destroy(&ru->wake);
  pthread_mutex_destroy(&ru->mu);
  pthread_mutex_destroy(&ru->pass_mu);
  free(ru);
}

store_rc store_local_rollup_start(store_local *l, char *err) {
  assert(l->rollup == NULL && l->writer != NULL);
  store_local_rollup *ru = calloc(1, sizeof *ru);
  if (ru == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC);
  ru->l = l;
  pthread_mutex_init(&ru->mu, NULL);
  pthread_mutex_init(&ru->pass_mu, NULL);
  pthread_cond_init(&ru->wake, &monotonic);
  pthread_condattr_destroy(&monotonic);
  if (pthread_create(&ru->thread, NULL, rollup_main, ru) != 0) {
    rollup_free(ru);
    return store_seterr(err, STORE_NOMEM, "cannot start the rollup thread");
  }
  l->rollup = ru;
  return STORE_OK;
}

void store_local_rollup_stop(store_local *l) {
  store_local_rollup *ru = l->rollup;
  if (ru == NULL) return;
  pthread_mutex_lock(&ru->mu);
  ru->stop = 1;
  pthread_cond_signal(&ru->wake);
  pthread_mutex_unlock(&ru->mu);
  pthread_join(ru->thread, NULL);
  rollup_free(ru);
  l->rollup = NULL;
}

store_rc store_local_maintain(void *impl, size_t *built, char *err) {
  store_local *l = impl;
  if (l->rollup == NULL)
    return store_seterr(err, STORE_READONLY, "store is read-only");
  return pass(l->rollup, built, err);
}
