/*
** dirset.c — the set of label directories made with mkdir (see dirset.h).
**
** Invariant: every key appears once in ds->head; the list is only touched
** with ds->lock held.  The set stays small (one entry per mkdir), so a list
** is enough.
*/
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dirset.h"

typedef struct item {
  struct item *next;
  char *key;
  size_t labels_at;  /* offset of the labels part in key */
} item;

struct fs_dirset {
  pthread_mutex_t lock;
  item *head;
  budget *b;  /* each item's item_cost taken from it */
};

fs_dirset *fs_dirset_new(budget *b) {
  fs_dirset *ds = calloc(1, sizeof *ds);

  if (ds != NULL) {
    pthread_mutex_init(&ds->lock, NULL);
    ds->b = b;
  }
  return ds;
}

/* What an item of key holds, about. */
static size_t item_cost(const char *key) {
  return sizeof(item) + strlen(key) + 1;
}

static void item_free(fs_dirset *ds, item *it) {
  budget_release(ds->b, item_cost(it->key));
  free(it->key);
  free(it);
}

void fs_dirset_free(fs_dirset *ds) {
  item *it, *next;

  if (ds == NULL) return;
  for (it = ds->head; it != NULL; it = next) {
    next = it->next;
    item_free(ds, it);
  }
  pthread_mutex_destroy(&ds->lock);
  free(ds);
}

static char *make_key(const char *service, const char *type,
                      const char *labels) {
  char *key = NULL;

  if (asprintf(&key, "%s/%s/%s", service, type, labels) < 0) return NULL;
  return key;
}

/* With the lock held: the link pointing at key's item, or at the NULL end. */
static item **find(fs_dirset *ds, const char *key) {
  item **pp;

  for (pp = &ds->head; *pp != NULL; pp = &(*pp)->next)
    if (strcmp((*pp)->key, key) == 0) break;
  return pp;
}

int fs_dirset_add(fs_dirset *ds, const char *service, const char *type,
                  const char *labels) {
  char *key = make_key(service, type, labels);
  item **pp, *it;
  int rc = 0;

  if (key == NULL) return -ENOMEM;
  pthread_mutex_lock(&ds->lock);
  pp = find(ds, key);
  if (*pp == NULL) {
    /* a wait for room here holds the lock: the set's others wait too, as
    ** they would for the same budget */
    if (budget_reserve(ds->b, item_cost(key)) != 0) {
      rc = -ENOMEM;
    } else if ((it = calloc(1, sizeof *it)) == NULL) {
      budget_release(ds->b, item_cost(key));
      rc = -ENOMEM;
    } else {
      it->key = key;
      it->labels_at = strlen(service) + strlen(type) + 2;
      *pp = it;
      key = NULL;
    }
  }
  pthread_mutex_unlock(&ds->lock);
  free(key);
  return rc;
}

int fs_dirset_has(fs_dirset *ds, const char *service, const char *type,
                  const char *labels) {
  char *key = make_key(service, type, labels);
  int found;

  if (key == NULL) return 0;
  pthread_mutex_lock(&ds->lock);
  found = *find(ds, key) != NULL;
  pthread_mutex_unlock(&ds->lock);
  free(key);
  return found;
}

int fs_dirset_del(fs_dirset *ds, const char *service, const char *type,
                  const char *labels) {
  char *key = make_key(service, type, labels);
  item **pp, *it = NULL;

  if (key == NULL) return 0;
  pthread_mutex_lock(&ds->lock);
  pp = find(ds, key);
  if (*pp != NULL) {
    it = *pp;
    *pp = it->next;
  }
  pthread_mutex_unlock(&ds->lock);
  free(key);
  if (it == NULL) return 0;
  item_free(ds, it);
  return 1;
}

int fs_dirset_del_service(fs_dirset *ds, const char *service) {
  size_t n = strlen(service);
  item **pp, *it;
  int count = 0;

  pthread_mutex_lock(&ds->lock);
  for (pp = &ds->head; (it = *pp) != NULL;) {
    if (strncmp(it->key, service, n) == 0 && it->key[n] == '/') {
      *pp = it->next;
      item_free(ds, it);
      count++;
    } else {
      pp = &it->next;
    }
  }
  pthread_mutex_unlock(&ds->lock);
  return count;
}

int fs_dirset_foreach(fs_dirset *ds, const char *service, const char *type,
                      int (*fn)(const char *labels, void *arg), void *arg) {
  char *prefix = make_key(service, type, "");
  size_t n;
  item *it;
  int rc = 0;

  if (prefix == NULL) return -ENOMEM;
  n = strlen(prefix);
  pthread_mutex_lock(&ds->lock);
  for (it = ds->head; it != NULL && rc == 0; it = it->next)
    if (strncmp(it->key, prefix, n) == 0 && it->labels_at == n &&
        it->key[n] != '\0')
      rc = fn(it->key + n, arg);
  pthread_mutex_unlock(&ds->lock);
  free(prefix);
  return rc;
}
