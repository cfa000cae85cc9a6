/*
** remote_cache.c — the size-bounded LRU cache of remote_cache.h.
**
** A chained hash table finds entries by key; a doubly linked list orders
** them from most (head) to least (tail) recently used.  One mutex guards
** everything: the critical sections are a lookup and a memcpy, far cheaper
** than the HTTP round trip a hit saves.
**
** Invariants (under mu):
**   - every entry is in exactly one bucket chain and in the LRU list;
**   - no two entries have the same key;
**   - bytes == sum over entries of (strlen(key) + 1 + len) <= max_bytes;
**   - nbuckets is a power of two and n <= nbuckets (table grows at n ==).
*/
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "remote_cache.h"

typedef struct entry {
  struct entry *chain;       /* next in bucket */
  struct entry *prev, *next; /* LRU list, head = most recent */
  uint64_t hash;
  uint64_t gen;
  size_t len;
  unsigned char *data;       /* len bytes + NUL */
  char key[];                /* NUL-terminated */
} entry;

struct store_rcache {
  pthread_mutex_t mu;
  size_t max_bytes, bytes;
  size_t n, nbuckets;
  entry **buckets;
  entry *head, *tail;
};

static uint64_t hash_key(const char *s) {
  uint64_t h = 14695981039346656037ull; /* FNV-1a */
  for (; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

static size_t entry_cost(const entry *e) {
  return strlen(e->key) + 1 + e->len;
}

store_rcache *store_rcache_new(size_t max_bytes) {
  store_rcache *c = calloc(1, sizeof *c);
  if (c == NULL) return NULL;
  c->nbuckets = 64;
  c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
  if (c->buckets == NULL) {
    free(c);
    return NULL;
  }
  c->max_bytes = max_bytes;
  pthread_mutex_init(&c->mu, NULL);
  return c;
}

void store_rcache_free(store_rcache *c) {
  entry *e, *next;
  if (c == NULL) return;
  for (e = c->head; e != NULL; e = next) {
    next = e->next;
    free(e->data);
    free(e);
  }
  free(c->buckets);
  pthread_mutex_destroy(&c->mu);
  free(c);
}

static entry **find_slot(store_rcache *c, const char *key, uint64_t h) {
  entry **p = &c->buckets[h & (c->nbuckets - 1)];
  while (*p != NULL && ((*p)->hash != h || strcmp((*p)->key, key) != 0))
    p = &(*p)->chain;
  return p;
}

static void lru_unlink(store_rcache *c, entry *e) {
  if (e->prev) e->prev->next = e->next; else c->head = e->next;
  if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
  e->prev = e->next = NULL;
}

static void lru_push_front(store_rcache *c, entry *e) {
  e->prev = NULL;
  e->next = c->head;
  if (c->head) c->head->prev = e; else c->tail = e;
  c->head = e;
}

/* Removes e from both structures and frees it. */
static void drop(store_rcache *c, entry *e) {
  entry **p = find_slot(c, e->key, e->hash);
  assert(*p == e);
  *p = e->chain;
  lru_unlink(c, e);
  c->bytes -= entry_cost(e);
  c->n--;
  free(e->data);
  free(e);
}

/* Doubles the table; on allocation failure keeps the old one (chains just
** get longer). */
static void grow(store_rcache *c) {
  size_t nb = c->nbuckets * 2;
  entry **b = calloc(nb, sizeof *b);
  if (b == NULL) return;
  for (size_t i = 0; i < c->nbuckets; i++) {
    entry *e = c->buckets[i], *next;
    for (; e != NULL; e = next) {
      next = e->chain;
      e->chain = b[e->hash & (nb - 1)];
      b[e->hash & (nb - 1)] = e;
    }
  }
  free(c->buckets);
  c->buckets = b;
  c->nbuckets = nb;
}

int store_rcache_get(store_rcache *c, const char *key, uint64_t gen,
                     void **data, size_t *len) {
  entry *e;
  void *copy = NULL;
  size_t n = 0;

  assert(c != NULL && key != NULL && data != NULL && len != NULL);
  pthread_mutex_lock(&c->mu);
  e = *find_slot(c, key, hash_key(key));
  if (e != NULL && e->gen == gen && (copy = malloc(e->len + 1)) != NULL) {
    memcpy(copy, e->data, e->len + 1);
    n = e->len;
    lru_unlink(c, e);
    lru_push_front(c, e);
  }
  pthread_mutex_unlock(&c->mu);
  if (copy == NULL) return 0;
  *data = copy;
  *len = n;
  return 1;
}

void store_rcache_put(store_rcache *c, const char *key, uint64_t gen,
                      const void *data, size_t len) {
  size_t klen = strlen(key);
  uint64_t h = hash_key(key);
  entry *e, **slot;

  assert(c != NULL && (data != NULL || len == 0));
  if (len > c->max_bytes / 4 || klen + 1 > c->max_bytes / 4 - len) return;
  e = malloc(sizeof *e + klen + 1);
  if (e == NULL) return;
  e->data = malloc(len + 1);
  if (e->data == NULL) {
    free(e);
    return;
  }
  if (len > 0) memcpy(e->data, data, len);
  e->data[len] = 0;
  memcpy(e->key, key, klen + 1);
  e->hash = h;
  e->gen = gen;
  e->len = len;

  pthread_mutex_lock(&c->mu);
  if (*(slot = find_slot(c, key, h)) != NULL) drop(c, *slot);
  while (c->tail != NULL && c->bytes + entry_cost(e) > c->max_bytes)
    drop(c, c->tail);
  if (c->n == c->nbuckets) grow(c);
  slot = &c->buckets[h & (c->nbuckets - 1)];
  e->chain = *slot;
  *slot = e;
  lru_push_front(c, e);
  c->bytes += entry_cost(e);
  c->n++;
  pthread_mutex_unlock(&c->mu);
}

void store_rcache_del(store_rcache *c, const char *key) {
  entry *e;
  assert(c != NULL && key != NULL);
  pthread_mutex_lock(&c->mu);
  if ((e = *find_slot(c, key, hash_key(key))) != NULL) drop(c, e);
  pthread_mutex_unlock(&c->mu);
}

size_t store_rcache_bytes(store_rcache *c) {
  size_t b;
  pthread_mutex_lock(&c->mu);
  b = c->bytes;
  pthread_mutex_unlock(&c->mu);
  return b;
}
