/*
** mergecache.c — the cache of merged profiles behind the FUSE merge view
** (see mergecache.h for the contract).
**
** Invariants (under mc->lock):
**   - mc->head lists every entry, most recently used first; keys are unique;
**   - an entry is COMPUTING from its insertion until its merge finished, and
**     only the thread that inserted it changes or removes it meanwhile;
**   - a READY entry has rc STORE_OK with a buffer or STORE_NOTFOUND without;
**   - mc->bytes is the sum of the lengths of the READY entries' buffers.
** The merge itself runs without the lock, so a slow merge of one key never
** delays another key, a cache hit, or anything else in the filesystem.
*/
#include <assert.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mergecache.h"

struct fs_mbuf {
  atomic_size_t refs;
  void *data;
  size_t len;
  int64_t made;   /* unix seconds */
};

enum { COMPUTING, READY };

typedef struct entry {
  struct entry *next;
  char *key;
  int relative;
  int state;
  store_rc rc;
  fs_mbuf *buf;
  uint64_t gen;     /* store generation read before the merge started */
  double made;      /* monotonic seconds */
} entry;

struct fs_mcache {
  store *st;
  int ttl_sec;
  size_t max_entries, max_bytes;
  pthread_mutex_t lock;
  pthread_cond_t done;  /* an entry left COMPUTING */
  entry *head;
  size_t n, bytes;
};

static double mono_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

const void *fs_mbuf_data(const fs_mbuf *b) { return b->data; }
size_t fs_mbuf_len(const fs_mbuf *b) { return b->len; }
int64_t fs_mbuf_time(const fs_mbuf *b) { return b->made; }

static fs_mbuf *mbuf_ref(fs_mbuf *b) {
  atomic_fetch_add(&b->refs, 1);
  return b;
}

void fs_mbuf_unref(fs_mbuf *b) {
  if (b == NULL) return;
  if (atomic_fetch_sub(&b->refs, 1) == 1) {
    free(b->data);
    free(b);
  }
}

fs_mcache *fs_mcache_new(store *st, int ttl_sec, size_t max_entries,
                         size_t max_bytes) {
  fs_mcache *mc;

  assert(st != NULL && max_entries > 0);
  mc = calloc(1, sizeof *mc);
  if (mc == NULL) return NULL;
  mc->st = st;
  mc->ttl_sec = ttl_sec;
  mc->max_entries = max_entries;
  mc->max_bytes = max_bytes;
  pthread_mutex_init(&mc->lock, NULL);
  pthread_cond_init(&mc->done, NULL);
  return mc;
}

static void entry_free(entry *e) {
  fs_mbuf_unref(e->buf);
  free(e->key);
  free(e);
}

/* Unlinks e from the list and frees it. */
static void remove_entry(fs_mcache *mc, entry *e) {
  entry **pp;

  for (pp = &mc->head; *pp != e; pp = &(*pp)->next) assert(*pp != NULL);
  *pp = e->next;
  mc->n--;
  if (e->buf != NULL) mc->bytes -= e->buf->len;
  entry_free(e);
}

void fs_mcache_free(fs_mcache *mc) {
  entry *e, *next;

  if (mc == NULL) return;
  for (e = mc->head; e != NULL; e = next) {
    next = e->next;
    entry_free(e);
  }
  pthread_cond_destroy(&mc->done);
  pthread_mutex_destroy(&mc->lock);
  free(mc);
}

static entry *find(fs_mcache *mc, const char *key) {
  entry *e;
  for (e = mc->head; e != NULL; e = e->next)
    if (strcmp(e->key, key) == 0) return e;
  return NULL;
}

static int fresh(fs_mcache *mc, const entry *e) {
  if (e->gen != store_generation(mc->st)) return 0;
  return !e->relative || mono_now() - e->made < (double)mc->ttl_sec;
}

static void move_front(fs_mcache *mc, entry *e) {
  entry **pp;

  for (pp = &mc->head; *pp != e; pp = &(*pp)->next) {}
  *pp = e->next;
  e->next = mc->head;
  mc->head = e;
}

/* Drops least recently used READY entries until within the limits. */
static void evict(fs_mcache *mc) {
  entry *e, *victim;

  while (mc->n > mc->max_entries || mc->bytes > mc->max_bytes) {
    victim = NULL;
    for (e = mc->head; e != NULL; e = e->next)
      if (e->state == READY) victim = e;
    if (victim == NULL) return;
    remove_entry(mc, victim);
  }
}

/* With the lock held: a hit sets *rc (and *out) and returns 1; a miss
** leaves a new COMPUTING entry in *mine and returns 0. */
static int lookup_or_claim(fs_mcache *mc, const char *key, int relative,
                           fs_mbuf **out, store_rc *rc, entry **mine) {
  entry *e;

  while ((e = find(mc, key)) != NULL) {
    if (e->state == COMPUTING) {
      pthread_cond_wait(&mc->done, &mc->lock);
      continue;
    }
    if (fresh(mc, e)) {
      move_front(mc, e);
      *rc = e->rc;
      if (e->rc == STORE_OK) *out = mbuf_ref(e->buf);
      return 1;
    }
    remove_entry(mc, e);
  }
  e = calloc(1, sizeof *e);
  if (e != NULL) e->key = strdup(key);
  if (e == NULL || e->key == NULL) {
    free(e);
    *rc = STORE_NOMEM;
    return 1;
  }
  e->relative = relative;
  e->state = COMPUTING;
  e->gen = store_generation(mc->st);
  e->made = mono_now();
  e->next = mc->head;
  mc->head = e;
  mc->n++;
  *mine = e;
  return 0;
}

fs_mbuf *fs_mcache_peek(fs_mcache *mc, const char *key) {
  fs_mbuf *b = NULL;
  entry *e;

  pthread_mutex_lock(&mc->lock);
  e = find(mc, key);
  /* Fresh or not: fstat(2) of an open merge file reaches getattr without
  ** its handle, and must see the size of what that handle reads, even after
  ** the store's generation moved on (remote stores move it every few
  ** seconds).  Reads are direct_io, so an older size is only a hint. */
  if (e != NULL && e->state == READY && e->rc == STORE_OK)
    b = mbuf_ref(e->buf);
  pthread_mutex_unlock(&mc->lock);
  return b;
}

/* fs_mcache_compute of a plain merge: arg is the store_query. */
static store_rc compute_merge(fs_mcache *mc, void *arg, void **data,
                              size_t *len, char *err) {
  return store_merge(mc->st, arg, data, len, NULL, err);
}

store_rc fs_mcache_get(fs_mcache *mc, const char *key, int relative,
                       const store_query *q, fs_mbuf **out,
                       char err[STORE_ERRMAX]) {
  assert(q != NULL);
  return fs_mcache_compute(mc, key, relative, compute_merge, (void *)q, out,
                           err);
}

store_rc fs_mcache_compute(fs_mcache *mc, const char *key, int relative,
                           fs_mcache_fn fn, void *arg, fs_mbuf **out,
                           char err[STORE_ERRMAX]) {
  entry *e = NULL;
  fs_mbuf *b = NULL;
  store_rc rc;
  void *data = NULL;
  size_t len = 0;

  assert(mc != NULL && key != NULL && fn != NULL && out != NULL);
  pthread_mutex_lock(&mc->lock);
  if (lookup_or_claim(mc, key, relative, &b, &rc, &e)) {
    pthread_mutex_unlock(&mc->lock);
    goto out;
  }
  pthread_mutex_unlock(&mc->lock);

  rc = fn(mc, arg, &data, &len, err);
  if (rc == STORE_OK) {
    b = calloc(1, sizeof *b);
    if (b == NULL) {
      free(data);
      rc = STORE_NOMEM;
    } else {
      atomic_init(&b->refs, 1);
      b->data = data;
      b->len = len;
      b->made = (int64_t)time(NULL);
    }
  }

  pthread_mutex_lock(&mc->lock);
  if (rc == STORE_OK || rc == STORE_NOTFOUND) {
    e->state = READY;
    e->rc = rc;
    if (b != NULL) {
      e->buf = mbuf_ref(b);
      mc->bytes += b->len;
    }
  } else {
    remove_entry(mc, e);
  }
  pthread_cond_broadcast(&mc->done);
  evict(mc);
  pthread_mutex_unlock(&mc->lock);
out:
  if (rc == STORE_OK) *out = b;
  if (rc == STORE_NOTFOUND && err != NULL) strcpy(err, "nothing found");
  return rc;
}
