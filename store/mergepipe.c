/*
** mergepipe.c — the streaming merge shared by the backends (mergepipe.h),
** a two-stage pipeline once a merge is long.
**
** The pushing thread copies each row into the next slot of a small ring
** and commits the prepared slots into the accumulator in push order; a
** worker thread prepares (inflates, decodes, validates: two thirds of the
** cost) the slots ahead of it.  When the oldest slot is not ready yet, the
** pushing thread prepares the next unclaimed one itself rather than wait,
** so the two threads share the preparing and the commits ride on top.
**
** Commits are in push order, so the result is byte for byte the one-thread
** merge of the same rows, and the error reported is the one a merge one
** row at a time would give: that of the first failing row.  Rows pushed
** past it are dropped.  The first STORE_MERGEPIPE_MIN rows go straight
** into the accumulator and the worker only starts after them, so that short
** merges cost no thread.  A row bigger than STORE_MERGEPIPE_BIG (a large
** profile or rollup) waits for the rows before it and is merged on the
** pushing thread alone, so that it is never held several times over.
**
** Invariants (rows are numbered from 0 in push order once the worker has
** started, row i lives in slot i % STORE_MERGEPIPE_SLOTS):
**   - head <= claim <= fill <= head + STORE_MERGEPIPE_SLOTS;
**   - rows [head, claim) are claimed: being prepared by one thread, or done;
**     rows [claim, fill) wait for a preparer;
**   - claim, fill, stop and the done flags are guarded by mu; head, and a
**     slot outside [head, fill), belong to the pushing thread alone;
**   - a claimed slot belongs to its preparer until done is set.
*/
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mergepipe.h"
#include "pprof.h"

#define SLOTS STORE_MERGEPIPE_SLOTS

typedef struct slot {
  pprof_prep *prep; /* created on first use */
  unsigned char *blob;
  size_t len, cap;
  const char *what; /* static: "stored profile", "rollup of hour" */
  char name[48];
  pprof_rc prc;     /* outcome of the prepare */
  char perr[PPROF_ERRMAX];
  int done;
} slot;

struct store_mergepipe {
  pprof_merge *m;
  size_t max_inflate;
  int threads;
  size_t rows;       /* pushed so far */
  int started;       /* 1: the worker runs; -1: it could not start */
  pthread_t worker;
  pthread_mutex_t mu;
  pthread_cond_t work;  /* for the worker: a row to claim, or stop */
  pthread_cond_t ready; /* for the pushing thread: a row is done */
  size_t head, claim, fill;
  int stop;
  slot slot[SLOTS];
};

/* Maps pprof's outcome (prc, perr) of adding the row `what name`. */
static store_rc merge_err(pprof_rc prc, const char *what, const char *name,
                          const char *perr, char *err) {
  switch (prc) {
  case PPROF_OK: return STORE_OK;
  case PPROF_EMISMATCH:  /* name the profile that does not fit */
    return store_seterr(err, STORE_MISMATCH, "%s %s: %s", what, name, perr);
  case PPROF_ENOMEM: return store_seterr(err, STORE_NOMEM, "out of memory");
  default:
    return store_seterr(err, STORE_BADPROFILE, "%s %s: %s", what, name,
                        perr[0] ? perr : pprof_strerror(prc));
  }
}

/* Adds one row to the accumulator on this thread. */
static store_rc merge_add(pprof_merge *m, const char *what, const char *name,
                          const void *blob, size_t n, char *err) {
  char perr[PPROF_ERRMAX] = "";
  pprof_rc prc = pprof_merge_add(m, blob, n, perr);
  return merge_err(prc, what, name ? name : "", perr, err);
}

/* Prepares a claimed slot (no lock held: the slot is the caller's). */
static void slot_prepare(slot *s) {
  s->perr[0] = '\0';
  s->prc = pprof_merge_prepare(s->prep, s->blob, s->len, s->perr);
}

static void *worker_main(void *arg) {
  store_mergepipe *p = arg;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->claim == p->fill)
      pthread_cond_wait(&p->work, &p->mu);
    if (p->stop) break;
    slot *s = &p->slot[p->claim++ % SLOTS];
    pthread_mutex_unlock(&p->mu);
    slot_prepare(s);
    pthread_mutex_lock(&p->mu);
    s->done = 1;
    pthread_cond_signal(&p->ready);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

store_rc store_mergepipe_new(size_t max_inflate, int threads,
                             store_mergepipe **out, char *err) {
  assert(out != NULL && (threads == 1 || threads == 2));
  store_mergepipe *p = calloc(1, sizeof *p);
  if (p == NULL || (p->m = pprof_merge_new(max_inflate)) == NULL) {
    free(p);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  p->max_inflate = max_inflate;
  p->threads = threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->ready, NULL);
  *out = p;
  return STORE_OK;
}

void store_mergepipe_free(store_mergepipe *p) {
  if (p == NULL) return;
  if (p->started > 0) {
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->worker, NULL);
  }
  for (int i = 0; i < SLOTS; i++) {
    pprof_prep_free(p->slot[i].prep);
    free(p->slot[i].blob);
  }
  pthread_cond_destroy(&p->ready);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  pprof_merge_free(p->m);
  free(p);
}

size_t store_mergepipe_rows(const store_mergepipe *p) { return p->rows; }

/* Commits the head row (done) into the accumulator. */
static store_rc commit_head(store_mergepipe *p, char *err) {
  slot *s = &p->slot[p->head++ % SLOTS];
  if (s->prc == PPROF_OK) {
    s->perr[0] = '\0';
    s->prc = pprof_merge_commit_prep(p->m, s->prep, s->perr);
  }
  return merge_err(s->prc, s->what, s->name, s->perr, err);
}

/* Makes progress on the oldest row: commits it if done, else prepares the
** next unclaimed row, else waits for a preparer. */
static store_rc step(store_mergepipe *p, char *err) {
  assert(p->head < p->fill);
  pthread_mutex_lock(&p->mu);
  while (!p->slot[p->head % SLOTS].done) {
    if (p->claim < p->fill) {
      slot *s = &p->slot[p->claim++ % SLOTS];
      pthread_mutex_unlock(&p->mu);
      slot_prepare(s);
      pthread_mutex_lock(&p->mu);
      s->done = 1;
    } else {
      pthread_cond_wait(&p->ready, &p->mu);
    }
  }
  pthread_mutex_unlock(&p->mu);
  return commit_head(p, err);
}

/* Copies a row into the next slot (the ring has room). */
static store_rc fill(store_mergepipe *p, const char *what, const char *name,
                     const void *blob, size_t n, char *err) {
  slot *s = &p->slot[p->fill % SLOTS];
  if (s->prep == NULL && (s->prep = pprof_prep_new(p->max_inflate)) == NULL)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  if (n > s->cap) {
    unsigned char *b = realloc(s->blob, n);
    if (b == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
    s->blob = b;
    s->cap = n;
  }
  if (n > 0) memcpy(s->blob, blob, n);
  s->len = n;
  s->what = what;
  snprintf(s->name, sizeof s->name, "%s", name ? name : "");
  pthread_mutex_lock(&p->mu);
  s->done = 0;
  p->fill++;
  pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->mu);
  return STORE_OK;
}

store_rc store_mergepipe_drain(store_mergepipe *p, char *err) {
  while (p->head < p->fill) {
    store_rc rc = step(p, err);
    if (rc != STORE_OK) return rc;
  }
  return STORE_OK;
}

store_rc store_mergepipe_push(store_mergepipe *p, const char *what,
                              const char *name, const void *data, size_t len,
                              char *err) {
  if (p->threads > 1 && p->started == 0 && p->rows >= STORE_MERGEPIPE_MIN)
    p->started = pthread_create(&p->worker, NULL, worker_main, p) ? -1 : 1;
  p->rows++;
  if (p->started <= 0) /* a short merge so far, or one thread */
    return merge_add(p->m, what, name, data, len, err);
  if (len > STORE_MERGEPIPE_BIG) { /* after the rows before it, here */
    store_rc rc = store_mergepipe_drain(p, err);
    return rc != STORE_OK ? rc : merge_add(p->m, what, name, data, len, err);
  }
  while (p->fill - p->head == SLOTS) {
    store_rc rc = step(p, err);
    if (rc != STORE_OK) return rc;
  }
  return fill(p, what, name, data, len, err);
}

store_rc store_mergepipe_finish(store_mergepipe *p, void **out, size_t *len,
                                char *err) {
  char perr[PPROF_ERRMAX] = "";
  store_rc rc = store_mergepipe_drain(p, err);
  if (rc != STORE_OK) return rc;
  pprof_rc prc = pprof_merge_result(p->m, out, len, perr);
  if (prc == PPROF_OK) return STORE_OK;
  if (prc == PPROF_ENOMEM)
    return store_seterr(err, STORE_NOMEM, "out of memory");
  return store_seterr(err, STORE_IO, "cannot encode merged profile: %s",
                      perr[0] ? perr : pprof_strerror(prc));
}
