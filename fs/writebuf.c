/*
** writebuf.c — pending ingests of the FUSE view (see writebuf.h).
**
** Invariants:
**   - wb->len <= wb->cap <= wb->max; bytes [0, len) are the file content;
**     cap bytes are taken from wb->budget until the buffer is freed;
**   - wb->state only moves OPEN -> DONE or OPEN -> CANCELLED; the store is
**     called only after that transition, so a buffer is ingested at most
**     once; data and len never change once the state is not OPEN;
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

enum { OPEN, DONE, CANCELLED };

struct fs_wb {
  atomic_size_t refs;
  pthread_mutex_t lock;   /* guards everything below but the constants */
  char *service, *labels; /* constant */
  meta_type type;         /* constant */
  size_t max;             /* constant */
  budget *budget;         /* constant; may be NULL */
  int64_t ctime;          /* constant */
  int state;
  unsigned char *data;
  size_t len, cap;
};

typedef struct tab_entry {
  struct tab_entry *next;
  char *path;
  fs_wb *wb;
} tab_entry;

struct fs_wbtab {
  pthread_mutex_t lock;
  tab_entry *head;
};

fs_wb *fs_wb_new(const char *service, meta_type type, const char *labels,
                 size_t max, budget *b) {
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
  wb->type = type;
  wb->max = max;
  wb->budget = b;
  wb->ctime = (int64_t)time(NULL);
  wb->state = OPEN;
  return wb;
}

fs_wb *fs_wb_ref(fs_wb *wb) {
  atomic_fetch_add(&wb->refs, 1);
  return wb;
}

void fs_wb_unref(fs_wb *wb) {
  if (wb == NULL || atomic_fetch_sub(&wb->refs, 1) != 1) return;
  pthread_mutex_destroy(&wb->lock);
  free(wb->data);
  budget_release(wb->budget, wb->cap);
  free(wb->service);
  free(wb->labels);
  free(wb);
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
  pthread_mutex_lock(&wb->lock);
  if (wb->state != OPEN) {
    rc = -EIO;
  } else if ((size_t)off > wb->max || size > wb->max - (size_t)off) {
    rc = -EFBIG;
  } else if ((rc = grow(wb, (size_t)off + size)) == 0) {
    if (size > 0) memcpy(wb->data + off, data, size);
    rc = (int)size;
  }
  pthread_mutex_unlock(&wb->lock);
  return rc;
}

size_t fs_wb_read(fs_wb *wb, void *data, size_t size, off_t off) {
  size_t n = 0;

  pthread_mutex_lock(&wb->lock);
  if (off >= 0 && (size_t)off < wb->len) {
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
  pthread_mutex_lock(&wb->lock);
  if (wb->state != OPEN)
    rc = -EIO;
  else if ((size_t)size <= wb->len)
    wb->len = (size_t)size;
  else
    rc = grow(wb, (size_t)size);
  pthread_mutex_unlock(&wb->lock);
  return rc;
}

size_t fs_wb_size(fs_wb *wb) {
  size_t n;

  pthread_mutex_lock(&wb->lock);
  n = wb->len;
  pthread_mutex_unlock(&wb->lock);
  return n;
}

int64_t fs_wb_ctime(const fs_wb *wb) { return wb->ctime; }

store_rc fs_wb_ingest(fs_wb *wb, store *st, int *did, store_meta *out,
                      char err[STORE_ERRMAX]) {
  store_rc rc = STORE_OK;

  *did = 0;
  pthread_mutex_lock(&wb->lock);
  if (wb->state == OPEN && wb->len > 0) {
    /* Whatever the outcome, this was the one attempt (see writebuf.h). */
    wb->state = DONE;
    *did = 1;
  }
  pthread_mutex_unlock(&wb->lock);
  /* DONE freezes data and len, so the (slow, durable) ingest runs without
  ** the lock and getattr of the file does not wait for it. */
  if (*did)
    rc = store_ingest(st, wb->service, wb->type, wb->labels, 0, wb->data,
                      wb->len, out, err);
  return rc;
}

void fs_wb_cancel(fs_wb *wb) {
  pthread_mutex_lock(&wb->lock);
  if (wb->state == OPEN) wb->state = CANCELLED;
  pthread_mutex_unlock(&wb->lock);
}

fs_wbtab *fs_wbtab_new(void) {
  fs_wbtab *tab = calloc(1, sizeof *tab);

  if (tab != NULL) pthread_mutex_init(&tab->lock, NULL);
  return tab;
}

void fs_wbtab_free(fs_wbtab *tab) {
  tab_entry *e, *next;

  if (tab == NULL) return;
  for (e = tab->head; e != NULL; e = next) {
    next = e->next;
    fs_wb_unref(e->wb);
    free(e->path);
    free(e);
  }
  pthread_mutex_destroy(&tab->lock);
  free(tab);
}

static tab_entry **find(fs_wbtab *tab, const char *path) {
  tab_entry **pp;

  for (pp = &tab->head; *pp != NULL; pp = &(*pp)->next)
    if (strcmp((*pp)->path, path) == 0) break;
  return pp;
}

int fs_wbtab_put(fs_wbtab *tab, const char *path, fs_wb *wb) {
  tab_entry **pp, *e;
  fs_wb *old = NULL;
  int rc = 0;

  pthread_mutex_lock(&tab->lock);
  pp = find(tab, path);
  if (*pp != NULL) {
    old = (*pp)->wb;
    (*pp)->wb = fs_wb_ref(wb);
  } else if ((e = calloc(1, sizeof *e)) == NULL ||
             (e->path = strdup(path)) == NULL) {
    free(e);
    rc = -ENOMEM;
  } else {
    e->wb = fs_wb_ref(wb);
    e->next = tab->head;
    tab->head = e;
  }
  pthread_mutex_unlock(&tab->lock);
  fs_wb_unref(old);
  return rc;
}

fs_wb *fs_wbtab_get(fs_wbtab *tab, const char *path) {
  tab_entry **pp;
  fs_wb *wb = NULL;

  pthread_mutex_lock(&tab->lock);
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
  fs_wb_unref(e->wb);
  free(e->path);
  free(e);
  return 1;
}
