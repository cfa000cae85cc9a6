/*
** local_ckpt.c — a thread with its own connection that copies the WAL
** back into the database file (a PASSIVE checkpoint) when the writer asks,
** so that this work is not done inside a commit.
**
** Why: SQLite's automatic checkpoint runs in the connection that commits,
** before its COMMIT returns: every thousand frames or so one group commit
** took milliseconds more, holding up the callers of that batch and the
** writer.  A checkpoint from another connection runs beside the writer:
** WAL mode lets one checkpoint and one writer work at once.
**
** It cannot do everything alone, though.  The WAL starts over from its
** beginning (and stops growing) only when a write transaction begins while
** every frame of it has been copied back, and under a steady load the
** writer keeps appending frames while this thread copies.  So the writer
** (local_write.c, wal_upkeep) asks for a pass when the WAL is large, and
** once a pass is done it copies back the few frames committed meanwhile
** itself, between two batches, which lets its next transaction restart
** the WAL.
**
** Invariants:
**   - at most one pass runs at a time (this thread's);
**   - `asked`, `busy`, `passes`, `copied` and `stop` are only touched
**     under mu;
**   - only this thread uses db once it has started.
*/
#include <assert.h>
#include <stdlib.h>

#include "local.h"

/* A pass is repeated (up to PASS_REPEATS times) while more than
** PASS_LEFT frames were committed during it, so that the writer is left
** only a short tail to copy. */
#define PASS_LEFT 64
#define PASS_REPEATS 4

struct store_local_ckpt {
  store_local *l;
  sqlite3 *db;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t wake;  /* signalled when asked or stop is set */
  int asked;            /* a pass is wanted */
  int busy;             /* a pass is running */
  uint64_t passes;      /* passes finished */
  int copied;           /* WAL frames copied back as of the last one */
  int stop;
};

static void *ckpt_main(void *arg) {
  store_local_ckpt *c = arg;
  pthread_setname_np(pthread_self(), "store-ckpt"); /* for top, perf */
  pthread_mutex_lock(&c->mu);
  for (;;) {
    while (!c->asked && !c->stop) pthread_cond_wait(&c->wake, &c->mu);
    if (c->stop) break;
    c->asked = 0;
    c->busy = 1;
    pthread_mutex_unlock(&c->mu);
    /* Failures are not fatal: the WAL stays as it is, the writer asks
    ** again, and past CKPT_HARD_FRAMES it copies the WAL back itself. */
    int log = 0, copied = 0;
    for (int i = 0; i < PASS_REPEATS; i++) {
      int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
                                         &log, &copied);
      if (rc != SQLITE_OK || log - copied <= PASS_LEFT) break;
    }
    pthread_mutex_lock(&c->mu);
    c->busy = 0;
    c->passes++;
    c->copied = copied;
  }
  pthread_mutex_unlock(&c->mu);
  return NULL;
}

static void ckpt_free(store_local_ckpt *c) {
  sqlite3_close(c->db);
  pthread_cond_destroy(&c->wake);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

store_rc store_local_ckpt_new(store_local *l, store_local_ckpt **out,
                              char *err) {
  assert(l != NULL && out != NULL && !l->read_only);
  store_local_ckpt *c = calloc(1, sizeof *c);
  if (c == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  c->l = l;
  pthread_mutex_init(&c->mu, NULL);
  pthread_cond_init(&c->wake, NULL);
  /* A writer connection: synchronous=FULL, so the database file is synced
  ** before the WAL may restart. */
  store_rc r = store_local_connect(l, 1, &c->db, err);
  if (r == STORE_OK && pthread_create(&c->thread, NULL, ckpt_main, c) != 0)
    r = store_seterr(err, STORE_NOMEM, "cannot start the checkpoint thread");
  if (r != STORE_OK) {
    ckpt_free(c);
    return r;
  }
  *out = c;
  return STORE_OK;
}

void store_local_ckpt_free(store_local_ckpt *c) {
  if (c == NULL) return;
  pthread_mutex_lock(&c->mu);
  c->stop = 1;
  pthread_cond_signal(&c->wake);
  pthread_mutex_unlock(&c->mu);
  pthread_join(c->thread, NULL);
  ckpt_free(c);
}

int store_local_ckpt_idle(store_local_ckpt *c, uint64_t *passes,
                          int *copied) {
  assert(c != NULL && passes != NULL && copied != NULL);
  pthread_mutex_lock(&c->mu);
  int idle = !c->busy && !c->asked;
  *passes = c->passes;
  *copied = c->copied;
  pthread_mutex_unlock(&c->mu);
  return idle;
}

void store_local_ckpt_ask(store_local_ckpt *c) {
  assert(c != NULL);
  pthread_mutex_lock(&c->mu);
  c->asked = 1;
  pthread_cond_signal(&c->wake);
  pthread_mutex_unlock(&c->mu);
}
