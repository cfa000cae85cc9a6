/*
** local_writer.c — the writer thread of the local store: every write goes
** through it, as a request (a function of the feature file that owns the
** SQL, see store_local_write) run inside a group commit.
**
** Why: a durable commit costs an fsync, and SQLite allows one writer at a
** time.  Committing each ingest on its own would cap throughput at one
** fsync per profile; instead callers queue requests and sleep, and the
** writer takes everything queued, runs it in one transaction, commits once
** and wakes all of them.  The more clients wait, the bigger the batch, so
** throughput grows with load while latency stays about one fsync.
**
** A batch can only be as big as the number of callers waiting when the
** writer starts it.  Callers that were just woken come back a moment later
** and would miss the batch that starts right away, so with N busy clients
** batches alternate between two halves of N.  The writer therefore
** remembers how many requests were pending around its recent commits and,
** when fewer are queued, waits a little for the rest (never longer than
** half a commit, and only while they keep arriving in time).  The batch's
** transaction is open meanwhile and each request runs as soon as it is
** taken, so that only the last arrivals and the COMMIT remain between the
** last arrival and the answers.
**
** SQLite's automatic checkpoint is off on this connection: it ran inside
** COMMIT, so every thousand frames one batch waited milliseconds longer.
** The checkpoint thread (local_ckpt.c) copies the WAL back instead, and
** the writer finishes its passes between batches (wal_upkeep).
**
** Each request runs inside its own SAVEPOINT: a failing request (unknown id
** to delete, ...) is rolled back alone and the others of the batch still
** commit.  A failed COMMIT (disk full) fails every request of the batch,
** since none of them is durable; so does a request whose failure ended the
** transaction (SQLite rolls it back on a full disk inside a statement),
** whose ROLLBACK TO or RELEASE fails (committing then could store half of
** it): the whole batch fails with that request's reason (507, not 500).  Expensive checks (pprof_check) run in the
** caller's thread before queueing, so the writer only does SQL.  Requests
** marked STORE_LOCAL_W_AFTER_COMMIT (incremental vacuum) run after the
** batch's commit instead, outside any transaction.
**
** Waking costs context switches, which dominate a small ingest: callers
** signal the writer only when it waits for that many requests (wake_at),
** and the writer wakes each caller of a batch on its own semaphore, so
** that no woken caller then queues on a mutex the writer holds.
**
** Invariants:
**   - requests live on their caller's stack; a caller does not return before
**     the writer has posted its `done` semaphore, and the writer does not
**     touch a request after that (POSIX lets the caller destroy a semaphore
**     as soon as its sem_wait returned);
**   - a request is reported STORE_OK only after the COMMIT that made it
**     durable (synchronous=FULL) returned SQLITE_OK;
**   - only the writer thread uses `db` and the statements once started;
**   - nqueued is the length of the list head (under mu).
*/
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "local.h"

/* Batch sizing: how many recent batches are remembered, and the longest
** wait for stragglers (the real bound is half the last commit's time). */
#define GATHER_WINDOW 16
#define GATHER_MAX_NS 1000000

/* The checkpoint thread is asked for a pass every CKPT_FRAMES frames
** added to the WAL (SQLite's automatic checkpoint runs at 1000); beyond
** CKPT_RESTART_FRAMES the writer copies back the last CKPT_TAIL frames or
** fewer itself, so that the WAL starts over, and beyond CKPT_HARD_FRAMES
** whatever is left, should that thread fail (see wal_upkeep).  A WAL of
** 8000 4 KiB frames (33 MB, within journal_size_limit) measured 3% faster
** than one of 4000, with fewer passes disturbing the commits' fdatasync. */
#define CKPT_FRAMES 2000
#define CKPT_RESTART_FRAMES 8000
#define CKPT_TAIL 200
#define CKPT_HARD_FRAMES 16000

typedef struct wreq {
  store_local_write_fn fn;
  void *arg;
  unsigned flags;               /* STORE_LOCAL_W_* */
  char *err;                    /* the caller's buffer, may be NULL */
  store_rc rc;
  int64_t changes;              /* rows this request changed */
  sem_t done;                   /* posted by the writer when it has run */
  struct wreq *next;
} wreq;

/* The batch being built: the requests taken from the queue so far, each
** already run inside the open transaction. */
typedef struct batch {
  wreq *head, **tail;
  int n;
  int rc;           /* SQLITE_OK while the transaction is open */
  store_rc fail_rc; /* once rc is not: why the batch cannot commit */
  char fail_err[STORE_ERRMAX];
  int64_t busy_ns;  /* time spent running it, waits left out */
} batch;

/* The writer's own statements; the requests bring theirs. */
static const char sql_begin[] = "BEGIN IMMEDIATE";
static const char sql_commit[] = "COMMIT";
static const char sql_rollback[] = "ROLLBACK";
static const char sql_savepoint[] = "SAVEPOINT req";
static const char sql_rollback_to[] = "ROLLBACK TO req";
static const char sql_release[] = "RELEASE req";

struct store_local_writer {
  store_local *l;
  store_local_conn c;    /* the write connection (writer thread only) */
  sqlite3_stmt *begin, *commit, *rollback, *savepoint, *rollback_to, *release;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t work;  /* signalled when wake_at is reached or stop set */
  wreq *head, **tail;   /* queued requests, FIFO (under mu) */
  int nqueued;          /* (under mu) */
  int wake_at;          /* queue length the writer waits for (under mu) */
  int stop;             /* (under mu) */
  /* Writer thread only: requests pending around recent commits, and how
  ** long the last batch took. */
  int recent[GATHER_WINDOW];
  unsigned recent_i;
  int64_t last_batch_ns;
  /* Writer thread only: WAL size after the last commit (wal_hook) and as
  ** last seen by wal_upkeep, the size at which to ask for the next pass,
  ** and the checkpoint thread's passes at the writer's last own pass. */
  store_local_ckpt *ckpt;
  int wal_frames, wal_seen, ckpt_next;
  uint64_t ckpt_seen;
};

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int run(sqlite3_stmt *s) { return store_local_run(s); }

static void req_fail(store_local_writer *w, wreq *r, int rc, const char *what) {
  r->rc = store_local_sqlerr(w->l, w->c.db, rc, r->err, what);
  r->changes = 0;
}

/* Runs r's function; a failure leaves no change behind. */
static void exec_req(store_local_writer *w, wreq *r) {
  int64_t changes = 0;
  r->rc = r->fn(w->l, &w->c, r->arg, &changes, r->err);
  r->changes = r->rc == STORE_OK ? changes : 0;
}

/* ---- batches ---------------------------------------------------------------- */

/* Marks b failed with the reason rc / why (its requests then fail with it)
** and returns sql, the SQLite error that ended it (SQLITE_ABORT if none). */
static int batch_fail(batch *b, store_rc rc, const char *why, int sql) {
  b->fail_rc = rc;
  snprintf(b->fail_err, sizeof b->fail_err, "%s", why);
  return sql != SQLITE_OK ? sql : SQLITE_ABORT;
}

/* Runs one request between SAVEPOINT and RELEASE.  Returns 0 when the
** transaction is still open and the request's changes are in it (or, the
** request having failed, rolled back), else the SQLite error that ended the
** batch, whose reason is then in b->fail_rc / b->fail_err. */
static int run_one(store_local_writer *w, batch *b, wreq *r) {
  char why[STORE_ERRMAX];
  int rc = run(w->savepoint);
  if (rc != SQLITE_OK) {
    req_fail(w, r, rc, "cannot start a request");
    if (!sqlite3_get_autocommit(w->c.db)) return 0;
    return batch_fail(b, r->rc, r->err ? r->err : store_strerror(r->rc), rc);
  }
  if (!(r->flags & STORE_LOCAL_W_AFTER_COMMIT)) exec_req(w, r);
  /* SQLite may roll the whole transaction back on a full disk or an I/O
  ** error inside a statement: then nothing of this batch can commit, for
  ** the request's own reason (not the "no such savepoint" of what follows) */
  if (sqlite3_get_autocommit(w->c.db)) {
    rc = sqlite3_extended_errcode(w->c.db);
    if (r->rc != STORE_OK)
      return batch_fail(b, r->rc, r->err ? r->err : store_strerror(r->rc), rc);
    return batch_fail(b, store_local_sqlerr(w->l, w->c.db, rc, why, "transaction lost"),
                      why, rc);
  }
  /* A request that cannot be undone alone, or whose savepoint cannot be
  ** released, must not be committed half-applied: the batch fails. */
  if (r->rc != STORE_OK && (rc = run(w->rollback_to)) != SQLITE_OK)
    return batch_fail(b, store_local_sqlerr(w->l, w->c.db, rc, why,
                                            "cannot undo a failed request"),
                      why, rc);
  if ((rc = run(w->release)) != SQLITE_OK)
    return batch_fail(b, store_local_sqlerr(w->l, w->c.db, rc, why,
                                            "cannot end a request"),
                      why, rc);
  return 0;
}

/* Called with mu held: moves every queued request to b and runs them, mu
** released, in b's transaction (once that has failed they are only kept,
** to fail with it). */
static void take(store_local_writer *w, batch *b) {
  wreq *r = w->head;
  if (r == NULL) return;
  *b->tail = r;
  b->tail = w->tail;
  b->n += w->nqueued;
  w->head = NULL;
  w->tail = &w->head;
  w->nqueued = 0;
  pthread_mutex_unlock(&w->mu);
  int64_t t0 = mono_ns();
  for (; r != NULL; r = r->next)
    if (b->rc == SQLITE_OK) b->rc = run_one(w, b, r);
  b->busy_ns += mono_ns() - t0;
  pthread_mutex_lock(&w->mu);
}

/* Commits b (or rolls it back) and sets the outcome of each request. */
static void finish(store_local_writer *w, batch *b) {
  store_local *l = w->l;
  int64_t t0 = mono_ns();
  int rc = b->rc, after_asked = 0;
  for (wreq *r = b->head; r != NULL; r = r->next)
    after_asked |= (r->flags & STORE_LOCAL_W_AFTER_COMMIT) != 0;
  if (rc == SQLITE_OK) rc = run(w->commit);
  store_rc txn_rc = STORE_OK;
  char txn_err[STORE_ERRMAX] = "";
  if (b->rc != SQLITE_OK) {
    /* ended by a request or by BEGIN: its reason, not that of what SQLite
    ** said after (never STORE_OK: that would acknowledge what was not
    ** written) */
    assert(b->fail_rc != STORE_OK);
    txn_rc = b->fail_rc;
    memcpy(txn_err, b->fail_err, sizeof txn_err);
    if (!sqlite3_get_autocommit(w->c.db)) run(w->rollback);
  } else if (rc != SQLITE_OK) {
    /* The reason first: ROLLBACK would replace SQLite's message. */
    txn_rc = store_local_sqlerr(l, w->c.db, rc, txn_err, "cannot commit");
    if (!sqlite3_get_autocommit(w->c.db)) run(w->rollback);
  }
  /* Not committed: a write-out that failed in it concerned frames SQLite
  ** abandoned, and must not fail the next batch's commit. */
  if (b->rc != SQLITE_OK || rc != SQLITE_OK) store_local_vfs_abandon(l->vfs);

  int64_t changed = 0, ingests = 0;
  for (wreq *r = b->head; r != NULL; r = r->next) {
    if (r->rc != STORE_OK || (r->flags & STORE_LOCAL_W_AFTER_COMMIT))
      continue;
    if (txn_rc != STORE_OK) {
      /* Nothing of the batch is durable: fail those that had succeeded. */
      r->rc = store_seterr(r->err, txn_rc, "%s", txn_err);
      r->changes = 0;
      continue;
    }
    changed += r->changes;
    ingests += (r->flags & STORE_LOCAL_W_INGEST) != 0;
  }
  if (changed > 0) {
    atomic_fetch_add(&l->generation, 1);
    atomic_fetch_add(&l->commits, 1);
    atomic_fetch_add(&l->ingests, ingests);
  }
  if (after_asked)
    for (wreq *r = b->head; r != NULL; r = r->next)
      if (r->flags & STORE_LOCAL_W_AFTER_COMMIT) exec_req(w, r);
  b->busy_ns += mono_ns() - t0;
}

/* ---- the WAL ------------------------------------------------------------------ */

/* sqlite3_wal_hook: called after each commit with the WAL's size.  Setting
** it also turns SQLite's automatic checkpoint off on this connection. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames) {
  store_local_writer *w = arg;
  (void)db;
  (void)name;
  w->wal_frames = frames;
  return SQLITE_OK;
}

/* Between two batches: keeps the WAL from growing.  The checkpoint thread
** copies it back every CKPT_FRAMES frames, but the WAL only starts over
** when a write transaction begins with every frame copied, which under
** load the writer never finds: it commits again before that thread is
** done.  So past CKPT_RESTART_FRAMES that thread is asked for passes until
** one ends with at most CKPT_TAIL frames left, and the writer then copies
** those itself (a batch or two: far less than a whole checkpoint in a
** commit), so that its next transaction restarts the WAL.  Past
** CKPT_HARD_FRAMES the writer copies back whatever is left after each pass
** of that thread, failed or not.  Errors are left for the next try: a
** checkpoint stops short only while readers hold frames, and a failing
** disk shows in the commits. */
static void wal_upkeep(store_local_writer *w) {
  uint64_t passes;
  int copied;
  if (w->wal_frames < w->wal_seen) w->ckpt_next = CKPT_FRAMES; /* restarted */
  w->wal_seen = w->wal_frames;
  if (!store_local_ckpt_idle(w->ckpt, &passes, &copied)) return;
  if (w->wal_frames >= CKPT_RESTART_FRAMES && passes != w->ckpt_seen &&
      (w->wal_frames - copied <= CKPT_TAIL ||
       w->wal_frames >= CKPT_HARD_FRAMES)) {
    sqlite3_wal_checkpoint_v2(w->c.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                              NULL);
    w->ckpt_seen = passes;
  } else if (w->wal_frames >= w->ckpt_next ||
             w->wal_frames >= CKPT_RESTART_FRAMES) {
    store_local_ckpt_ask(w->ckpt);
    w->ckpt_next = w->wal_frames + CKPT_FRAMES;
  }
}

/* Called with mu held, at least one request queued and b's transaction
** open: takes requests into b, running each as soon as it is taken, and
** waits for more while fewer were taken than were pending around the recent
** commits, for at most half the last batch's time.  Running the first
** requests while the last ones are still on their way takes that work off
** the path from the last arrival to the commit. */
static void gather(store_local_writer *w, batch *b) {
  int want = 0;
  for (int i = 0; i < GATHER_WINDOW; i++)
    if (w->recent[i] > want) want = w->recent[i];
  int64_t wait = w->last_batch_ns / 2;
  if (wait > GATHER_MAX_NS) wait = GATHER_MAX_NS;
  int64_t end = mono_ns() + wait;
  struct timespec deadline = {end / 1000000000, end % 1000000000};
  take(w, b);
  while (b->rc == SQLITE_OK && b->n < want && !w->stop) {
    if (w->head == NULL) {
      w->wake_at = want - b->n;
      int late = pthread_cond_timedwait(&w->work, &w->mu, &deadline) ==
                 ETIMEDOUT;
      w->wake_at = INT_MAX;
      if (late) {
        take(w, b);
        break;
      }
    }
    take(w, b);
    if (mono_ns() >= end) break;
  }
}

static void *writer_main(void *arg) {
  store_local_writer *w = arg;
  pthread_setname_np(pthread_self(), "store-writer"); /* for top, perf */
  pthread_mutex_lock(&w->mu);
  for (;;) {
    w->wake_at = 1;
    while (w->head == NULL && !w->stop) pthread_cond_wait(&w->work, &w->mu);
    if (w->head == NULL) break; /* stop, and nothing left to do */
    w->wake_at = INT_MAX; /* busy: queueing callers need not signal */
    pthread_mutex_unlock(&w->mu);

    batch b = {.tail = &b.head};
    int64_t t0 = mono_ns();
    b.rc = run(w->begin);
    if (b.rc != SQLITE_OK) {
      /* No transaction: the requests are never run, and must fail with a
      ** reason (fail_rc is STORE_OK until set, which finish() would report
      ** as success for requests that wrote nothing). */
      char why[STORE_ERRMAX];
      b.rc = batch_fail(&b,
                        store_local_sqlerr(w->l, w->c.db, b.rc, why,
                                           "cannot begin a transaction"),
                        why, b.rc);
    }
    b.busy_ns = mono_ns() - t0;
    pthread_mutex_lock(&w->mu);
    gather(w, &b);
    pthread_mutex_unlock(&w->mu);
    finish(w, &b);
    w->last_batch_ns = b.busy_ns;

    /* Those committed plus those that arrived meanwhile were all pending
    ** (counted before the callers are woken and can queue again). */
    pthread_mutex_lock(&w->mu);
    w->recent[w->recent_i++ % GATHER_WINDOW] = b.n + w->nqueued;
    pthread_mutex_unlock(&w->mu);
    /* Each caller is woken alone, without mu: it has nothing to take. */
    for (wreq *r = b.head, *next; r != NULL; r = next) {
      next = r->next; /* r may be gone once done is posted */
      sem_post(&r->done);
    }
    wal_upkeep(w);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Queues r and waits until the writer has run it. */
static void submit(store_local *l, wreq *r) {
  store_local_writer *w = l->writer;
  assert(w != NULL);
  r->rc = STORE_OK;
  r->changes = 0;
  r->next = NULL;
  sem_init(&r->done, 0, 0);
  pthread_mutex_lock(&w->mu);
  assert(!w->stop);
  *w->tail = r;
  w->tail = &r->next;
  /* The writer is woken only when it waits for this many requests: not
  ** at every arrival while it gathers, nor at all while it commits. */
  if (++w->nqueued >= w->wake_at) pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  while (sem_wait(&r->done) != 0) assert(errno == EINTR);
  sem_destroy(&r->done);
}

/* ---- start / stop ---------------------------------------------------------- */

/* The checkpoint thread's connection closes first, so that the writer's is
** the last one: its close copies the WAL back and removes it. */
static void writer_free(store_local_writer *w) {
  store_local_ckpt_free(w->ckpt);
  store_local_conn_clear(&w->c);
  sqlite3_close(w->c.db);
  pthread_cond_destroy(&w->work);
  pthread_mutex_destroy(&w->mu);
  free(w);
}

store_rc store_local_writer_start(store_local *l, sqlite3 *db, char *err) {
  assert(l->writer == NULL && db != NULL);
  store_local_writer *w = calloc(1, sizeof *w);
  if (w == NULL) {
    sqlite3_close(db);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  w->l = l;
  w->c.db = db;
  w->tail = &w->head;
  w->ckpt_next = CKPT_FRAMES;
  pthread_condattr_t monotonic;
  pthread_condattr_init(&monotonic);
  pthread_condattr_setclock(&monotonic, CLOCK_MONOTONIC); /* for gather() */
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->work, &monotonic);
  pthread_condattr_destroy(&monotonic);
  store_rc r;
  if ((r = store_local_stmt(l, &w->c, sql_begin, &w->begin, err)) != STORE_OK ||
      (r = store_local_stmt(l, &w->c, sql_commit, &w->commit, err)) !=
          STORE_OK ||
      (r = store_local_stmt(l, &w->c, sql_rollback, &w->rollback, err)) !=
          STORE_OK ||
      (r = store_local_stmt(l, &w->c, sql_savepoint, &w->savepoint, err)) !=
          STORE_OK ||
      (r = store_local_stmt(l, &w->c, sql_rollback_to, &w->rollback_to,
                            err)) != STORE_OK ||
      (r = store_local_stmt(l, &w->c, sql_release, &w->release, err)) !=
          STORE_OK ||
      (r = store_local_ckpt_new(l, &w->ckpt, err)) != STORE_OK) {
    writer_free(w);
    return r;
  }
  sqlite3_wal_hook(db, wal_hook, w);
  if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
    writer_free(w);
    return store_seterr(err, STORE_NOMEM, "cannot start the writer thread");
  }
  l->writer = w;
  return STORE_OK;
}

void store_local_writer_stop(store_local *l) {
  store_local_writer *w = l->writer;
  if (w == NULL) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->work);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  writer_free(w);
  l->writer = NULL;
}

/* ---- the entry point (caller's thread) -------------------------------------- */

store_rc store_local_write(store_local *l, store_local_write_fn fn, void *arg,
                           unsigned flags, int64_t *changes, char *err) {
  assert(fn != NULL);
  wreq r = {.fn = fn, .arg = arg, .flags = flags, .err = err};
  submit(l, &r);
  if (r.rc == STORE_OK && changes != NULL) *changes = r.changes;
  return r.rc;
}
