/*
** writebuf.c — files being written into the FUSE view (see writebuf.h).
**
** Invariants:
**   - wb->len <= wb->cap <= wb->max; bytes [0, len) are the file content;
**     cap bytes are taken from wb->budget until the buffer is freed or
**     sealed; data is NULL (and cap 0) once sealed (len stays, for stat);
**   - wgen counts changes of the content; igen is wgen at the last ingest
**     attempt, whose outcome is last_rc / last_err; id is the profile that
**     holds the content of attempt igen ("" when none does, and while an
**     attempt runs); owned says that this buffer's ingest created id: only
**     then may the buffer delete it (ingest is idempotent, so the same
**     bytes pushed by an agent, or written as another file, answer with
**     that other writer's profile);
**   - no lock is held across a call to the store (a slow store would stall
**     every operation that meets the buffer, and through the table's
**     expiry every lookup of the mount): an ingest sets busy, runs
**     store_ingest and its deletes without the lock, and clears busy;
**     whatever would change data (write, truncate, seal) or the outcome
**     (cancel, another ingest) waits while busy, so data does not move
**     under store_ingest and a buffer is ingested once at a time; reads
**     and get_info never wait;
**   - every fs_wbtab entry holds one reference to its buffer, and a path
**     appears at most once.
*/
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "writebuf.h"

/* Sealed entries kept at most, whatever their age (oldest go first). */
#define TAB_MAX_SEALED 4096

struct fs_wb {
  atomic_size_t refs;
  pthread_mutex_t lock;   /* guards everything below but the constants */
  pthread_cond_t idle;    /* signalled when busy is cleared */
  int busy;               /* an ingest is running without the lock */
  char *service, *labels; /* constant */
  meta_type type;         /* constant */
  int64_t created_hint;   /* constant */
  size_t max;             /* constant */
  budget *budget;         /* constant; may be NULL */
  int64_t ctime;          /* constant */
  int cancelled, sealed;
  int64_t sealed_at;
  unsigned char *data;
  size_t len, cap;
  uint64_t wgen, igen;
  store_rc last_rc;
  char last_err[STORE_ERRMAX];
  char id[META_ID_LEN + 1];
  char key[FS_WB_KEY_MAX]; /* store_meta_id of id's profile */
  int owned;              /* this buffer's ingest created id */
  int64_t created_at;     /* of id */
};

typedef struct tab_entry {
  struct tab_entry *next;
  char *path;
  fs_wb *wb;
} tab_entry;

struct fs_wbtab {
  pthread_mutex_t lock;
  tab_entry *head;
  int ttl_sec;
};

fs_wb *fs_wb_new(const char *service, meta_type type, const char *labels,
                 int64_t created_hint, size_t max, budget *b) {
  fs_wb *wb = calloc(1, sizeof *wb);

  assert(service != NULL && labels != NULL);
  if (wb == NULL) return NULL;
  wb->service = strdup(service);
  wb->labels = strdup(labels);
  if (wb->service == NULL || wb->labels == NULL) {
    free(wb->service);
    free(wb->labels);
    free(wb);
    return NULL;
  }
  atomic_init(&wb->refs, 1);
  pthread_mutex_init(&wb->lock, NULL);
  pthread_cond_init(&wb->idle, NULL);
  wb->type = type;
  wb->created_hint = created_hint;
  wb->max = max;
  wb->budget = b;
  wb->ctime = (int64_t)time(NULL);
  wb->last_rc = STORE_OK;
  return wb;
}

fs_wb *fs_wb_ref(fs_wb *wb) {
  atomic_fetch_add(&wb->refs, 1);
  return wb;
}

void fs_wb_unref(fs_wb *wb) {
  if (wb == NULL || atomic_fetch_sub(&wb->refs, 1) != 1) return;
  pthread_cond_destroy(&wb->idle);
  pthread_mutex_destroy(&wb->lock);
  free(wb->data);
  budget_release(wb->budget, wb->cap);
  free(wb->service);
  free(wb->labels);
  free(wb);
}

/* Takes the lock once no ingest runs (see the invariants). */
static void lock_idle(fs_wb *wb) {
  pthread_mutex_lock(&wb->lock);
  while (wb->busy) pthread_cond_wait(&wb->idle, &wb->lock);
}

/* With the lock held: makes room for end bytes, zero-filling new ones. */
static int grow(fs_wb *wb, size_t end) {
  size_t cap;
  unsigned char *p;

  if (end > wb->max) return -EFBIG;
  if (end > wb->cap) {
    cap = wb->cap < 65536 ? 65536 : wb->cap;
    while (cap < end) cap = cap > wb->max / 2 ? wb->max : cap * 2;
    if (budget_reserve(wb->budget, cap - wb->cap) != 0) return -ENOMEM;
    p = realloc(wb->data, cap);
    if (p == NULL) {
      budget_release(wb->budget, cap - wb->cap);
      return -ENOMEM;
    }
    wb->data = p;
    wb->cap = cap;
  }
  if (end > wb->len) {
    memset(wb->data + wb->len, 0, end - wb->len);
    wb->len = end;
  }
  return 0;
}

int fs_wb_write(fs_wb *wb, const void *data, size_t size, off_t off) {
  int rc;

  if (off < 0) return -EINVAL;
  lock_idle(wb);
  if (wb->cancelled || wb->sealed) {
    rc = -EIO;
  } else if ((size_t)off > wb->max || size > wb->max - (size_t)off) {
    rc = -EFBIG;
  } else if ((rc = grow(wb, (size_t)off + size)) == 0) {
    if (size > 0) memcpy(wb->data + off, data, size);
    wb->wgen++;
    rc = (int)size;
  }
  pthread_mutex_unlock(&wb->lock);
  return rc;
}

size_t fs_wb_read(fs_wb *wb, void *data, size_t size, off_t off) {
  size_t n = 0;

  pthread_mutex_lock(&wb->lock);
  if (wb->data != NULL && off >= 0 && (size_t)off < wb->len) {
    n = wb->len - (size_t)off;
    if (n > size) n = size;
    memcpy(data, wb->data + off, n);
  }
  pthread_mutex_unlock(&wb->lock);
  return n;
}

int fs_wb_truncate(fs_wb *wb, off_t size) {
  int rc = 0;

  if (size < 0) return -EINVAL;
  lock_idle(wb);
  if (wb->cancelled || wb->sealed)
    rc = -EIO;
  else if ((size_t)size <= wb->len)
    wb->len = (size_t)size;
  else
    rc = grow(wb, (size_t)size);
  if (rc == 0) wb->wgen++;
  pthread_mutex_unlock(&wb->lock);
  return rc;
}

void fs_wb_get_info(fs_wb *wb, fs_wb_info *out) {
  pthread_mutex_lock(&wb->lock);
  out->size = wb->len;
  out->ctime = wb->ctime;
  out->sealed = wb->sealed;
  out->stored = wb->id[0] != '\0' && wb->igen == wb->wgen;
  memcpy(out->id, wb->id, sizeof out->id);
  memcpy(out->key, wb->key, sizeof out->key);
  out->created_at = wb->created_at;
  pthread_mutex_unlock(&wb->lock);
}

const char *fs_wb_service(const fs_wb *wb) { return wb->service; }
meta_type fs_wb_type(const fs_wb *wb) { return wb->type; }
const char *fs_wb_labels(const fs_wb *wb) { return wb->labels; }

store_rc fs_wb_ingest(fs_wb *wb, store *st, int *did, store_meta *out,
                      char dropped[FS_WB_KEY_MAX], char err[STORE_ERRMAX]) {
  char prev[FS_WB_KEY_MAX], prev_id[META_ID_LEN + 1], last_err[STORE_ERRMAX];
  store_meta m = { 0 };
  int prev_owned, same, owned;
  store_rc rc;

  *did = 0;
  dropped[0] = '\0';
  lock_idle(wb);
  if (wb->cancelled || wb->sealed || wb->len == 0 || wb->igen == wb->wgen) {
    rc = wb->last_rc;
    if (rc != STORE_OK && err != NULL) memcpy(err, wb->last_err, STORE_ERRMAX);
    pthread_mutex_unlock(&wb->lock);
    return rc;
  }
  *did = 1;
  wb->busy = 1;
  wb->igen = wb->wgen;
  /* The earlier attempt's profile leaves the buffer while this one runs:
  ** getattr sees a file being written, not a stale profile. */
  memcpy(prev, wb->key, sizeof prev);
  memcpy(prev_id, wb->id, sizeof prev_id);
  prev_owned = wb->owned;
  wb->id[0] = wb->key[0] = '\0';
  wb->owned = 0;
  pthread_mutex_unlock(&wb->lock);

  last_err[0] = '\0';
  rc = store_ingest(st, wb->service, wb->type, wb->labels, wb->created_hint,
                    wb->data, wb->len, &m, last_err);
  same = rc == STORE_OK && prev[0] != '\0' && strcmp(prev_id, m.id) == 0;
  /* The same profile again stays ours if it was; a new one is ours only
  ** if this ingest stored it (not found it stored by someone else). */
  owned = rc == STORE_OK &&
          (m.ingested == STORE_INGESTED_NEW || (same && prev_owned));
  /* The earlier profile was a prefix (or other earlier content) of this
  ** file: it goes, whether or not the whole content was accepted, when
  ** this buffer made it. */
  if (prev[0] != '\0' && !same && prev_owned &&
      store_delete(st, prev, NULL) == STORE_OK)
    memcpy(dropped, prev, FS_WB_KEY_MAX);

  pthread_mutex_lock(&wb->lock);
  wb->last_rc = rc;
  memcpy(wb->last_err, last_err, STORE_ERRMAX);
  if (err != NULL) memcpy(err, last_err, STORE_ERRMAX);
  /* A key too long to remember: stored, but the name forgets it. */
  if (rc == STORE_OK && strlen(store_meta_id(&m)) < FS_WB_KEY_MAX) {
    memcpy(wb->id, m.id, sizeof wb->id);
    strcpy(wb->key, store_meta_id(&m));
    wb->owned = owned;
  }
  if (rc == STORE_OK) wb->created_at = m.created_at;
  wb->busy = 0;
  pthread_cond_broadcast(&wb->idle);
  pthread_mutex_unlock(&wb->lock);
  if (rc == STORE_OK && out != NULL) {
    *out = m;
    memset(&m, 0, sizeof m);
  }
  store_meta_clear(&m);
  return rc;
}

void fs_wb_cancel(fs_wb *wb, char key[FS_WB_KEY_MAX], int *owned) {
  lock_idle(wb);
  wb->cancelled = 1;
  memcpy(key, wb->key, FS_WB_KEY_MAX);
  *owned = key[0] != '\0' && wb->owned;
  wb->id[0] = wb->key[0] = '\0';
  wb->owned = 0;
  pthread_mutex_unlock(&wb->lock);
}

int fs_wb_seal(fs_wb *wb) {
  int stored;

  lock_idle(wb);
  wb->sealed = 1;
  wb->sealed_at = (int64_t)time(NULL);
  free(wb->data);
  budget_release(wb->budget, wb->cap);
  wb->data = NULL;
  wb->cap = 0;
  stored = !wb->cancelled && wb->id[0] != '\0' && wb->igen == wb->wgen;
  pthread_mutex_unlock(&wb->lock);
  return stored;
}

/* 1 when wb is sealed, with the time it was in *at. */
static int sealed_at(fs_wb *wb, int64_t *at) {
  int sealed;

  pthread_mutex_lock(&wb->lock);
  sealed = wb->sealed;
  *at = wb->sealed_at;
  pthread_mutex_unlock(&wb->lock);
  return sealed;
}

fs_wbtab *fs_wbtab_new(int ttl_sec) {
  fs_wbtab *tab = calloc(1, sizeof *tab);

  if (tab == NULL) return NULL;
  pthread_mutex_init(&tab->lock, NULL);
  tab->ttl_sec = ttl_sec;
  return tab;
}

static void entry_free(tab_entry *e) {
  fs_wb_unref(e->wb);
  free(e->path);
  free(e);
}

void fs_wbtab_free(fs_wbtab *tab) {
  tab_entry *e, *next;

  if (tab == NULL) return;
  for (e = tab->head; e != NULL; e = next) {
    next = e->next;
    entry_free(e);
  }
  pthread_mutex_destroy(&tab->lock);
  free(tab);
}

/* With the lock held: forgets sealed entries older than the TTL, and the
** oldest sealed ones past TAB_MAX_SEALED (new entries are at the head). */
static void expire(fs_wbtab *tab) {
  int64_t cutoff = (int64_t)time(NULL) - tab->ttl_sec;
  tab_entry **pp = &tab->head, *e;
  size_t sealed = 0;
  int64_t at;

  while ((e = *pp) != NULL) {
    if (sealed_at(e->wb, &at) && (at < cutoff || ++sealed > TAB_MAX_SEALED)) {
      *pp = e->next;
      entry_free(e);
    } else {
      pp = &e->next;
    }
  }
}

static tab_entry **find(fs_wbtab *tab, const char *path) {
  tab_entry **pp;

  for (pp = &tab->head; *pp != NULL; pp = &(*pp)->next)
    if (strcmp((*pp)->path, path) == 0) break;
  return pp;
}

/* With the lock held: links a new entry path -> wb at the head. */
static int link_new(fs_wbtab *tab, const char *path, fs_wb *wb) {
  tab_entry *e = calloc(1, sizeof *e);

  if (e == NULL || (e->path = strdup(path)) == NULL) {
    free(e);
    return -ENOMEM;
  }
  e->wb = fs_wb_ref(wb);
  e->next = tab->head;
  tab->head = e;
  return 0;
}

/* With the lock held: unlinks and returns the entry of path, or NULL. */
static tab_entry *unlink_path(fs_wbtab *tab, const char *path) {
  tab_entry **pp = find(tab, path), *e = *pp;

  if (e != NULL) *pp = e->next;
  return e;
}

int fs_wbtab_put(fs_wbtab *tab, const char *path, fs_wb *wb) {
  tab_entry *old;
  int rc;

  pthread_mutex_lock(&tab->lock);
  expire(tab);
  old = unlink_path(tab, path);
  rc = link_new(tab, path, wb);
  if (rc != 0 && old != NULL) {  /* keep the old mapping */
    old->next = tab->head;
    tab->head = old;
    old = NULL;
  }
  pthread_mutex_unlock(&tab->lock);
  if (old != NULL) entry_free(old);
  return rc;
}

fs_wb *fs_wbtab_get(fs_wbtab *tab, const char *path) {
  tab_entry **pp;
  fs_wb *wb = NULL;

  pthread_mutex_lock(&tab->lock);
  expire(tab);
  pp = find(tab, path);
  if (*pp != NULL) wb = fs_wb_ref((*pp)->wb);
  pthread_mutex_unlock(&tab->lock);
  return wb;
}

int fs_wbtab_drop(fs_wbtab *tab, const char *path, const fs_wb *wb) {
  tab_entry **pp, *e = NULL;

  pthread_mutex_lock(&tab->lock);
  pp = find(tab, path);
  if (*pp != NULL && (wb == NULL || (*pp)->wb == wb)) {
    e = *pp;
    *pp = e->next;
  }
  pthread_mutex_unlock(&tab->lock);
  if (e == NULL) return 0;
  entry_free(e);
  return 1;
}

int fs_wbtab_move(fs_wbtab *tab, const char *from, const char *to) {
  tab_entry *e, *old = NULL;
  char *path;
  int rc = 0;

  if (strcmp(from, to) == 0) return 0;
  if ((path = strdup(to)) == NULL) return -ENOMEM;
  pthread_mutex_lock(&tab->lock);
  if ((e = *find(tab, from)) == NULL) {
    rc = -ENOENT;
  } else {
    old = unlink_path(tab, to);
    free(e->path);
    e->path = path;
    path = NULL;
  }
  pthread_mutex_unlock(&tab->lock);
  free(path);
  if (old != NULL) entry_free(old);
  return rc;
}
