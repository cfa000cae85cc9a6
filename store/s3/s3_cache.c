/*
** s3_cache.c — the S3 backend's on-disk cache of objects (s3_cache.h).
**
** One file per object, named by a 64-bit hash of its key (16 hex digits;
** keys are taken within the cache's scope, the bucket and prefix, so a
** directory reused for another bucket never serves its objects), written
** to a temporary name and renamed, so a reader sees a whole file
** or none.  A file is a 32-byte header (magic, object length, CRC-32 of
** the object, key length), the scope and key, then the object; a read
** checks all of it, so a hash collision, a torn or a corrupt file is a miss, never
** another object.
**
** The index (hash -> file size) lives in memory: a chained hash table
** plus a list in recency order (most recent first); it is rebuilt from the
** directory at open, ordered by mtime.
**
** Invariants (under mu): bytes = the sum of the sizes of the entries;
** bytes <= max after every put; every entry is in both the table and the
** list.
*/
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libdeflate.h>

#include "dirlock.h"
#include "s3_cache.h"

#define MAGIC "PFSCACH1"
#define HEADER 32

typedef struct entry {
  uint64_t h;
  uint64_t size;              /* of the file */
  int64_t mtime;              /* at open only: the order to rebuild */
  struct entry *prev, *next;  /* recency list */
  struct entry *chain;        /* hash bucket */
} entry;

struct s3_cache {
  char *dir;
  char *scope;                /* prefixed to every key */
  int lock_fd;
  uint64_t max;
  pthread_mutex_t mu;         /* guards what follows */
  entry **tab;
  size_t nbuckets, n;
  entry *head, *tail;         /* most / least recently used */
  uint64_t bytes;
  int64_t hits, misses;
  uint64_t tmp_seq;
};

/* FNV-1a of the scope and key. */
static uint64_t key_hash(const s3_cache *c, const char *key) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *p = (const unsigned char *)c->scope; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  for (const unsigned char *p = (const unsigned char *)key; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  return h;
}

static void path_of(const s3_cache *c, uint64_t h, char *out, size_t cap) {
  snprintf(out, cap, "%s/%016" PRIx64, c->dir, h);
}

/* ---- index ------------------------------------------------------------------------ */

static entry **slot_of(s3_cache *c, uint64_t h) {
  entry **pp = &c->tab[h & (c->nbuckets - 1)];
  while (*pp != NULL && (*pp)->h != h) pp = &(*pp)->chain;
  return pp;
}

static void list_unlink(s3_cache *c, entry *e) {
  if (e->prev) e->prev->next = e->next; else c->head = e->next;
  if (e->next) e->next->prev = e->prev; else c->tail = e->prev;
  e->prev = e->next = NULL;
}

static void list_front(s3_cache *c, entry *e) {
  e->next = c->head;
  e->prev = NULL;
  if (c->head) c->head->prev = e; else c->tail = e;
  c->head = e;
}

/* Doubles the table when it is full; failure only makes chains longer. */
static void grow(s3_cache *c) {
  size_t nb = c->nbuckets * 2;
  entry **t;
  if (c->n < c->nbuckets || (t = calloc(nb, sizeof *t)) == NULL) return;
  for (size_t i = 0; i < c->nbuckets; i++) {
    for (entry *e = c->tab[i], *next; e != NULL; e = next) {
      next = e->chain;
      e->chain = t[e->h & (nb - 1)];
      t[e->h & (nb - 1)] = e;
    }
  }
  free(c->tab);
  c->tab = t;
  c->nbuckets = nb;
}

/* Removes h from the index (and its file when unlink_file); under mu. */
static void drop(s3_cache *c, uint64_t h, int unlink_file) {
  entry **pp = slot_of(c, h), *e = *pp;
  char path[4096];
  if (e == NULL) return;
  *pp = e->chain;
  list_unlink(c, e);
  c->bytes -= e->size;
  c->n--;
  if (unlink_file) {
    path_of(c, h, path, sizeof path);
    unlink(path);
  }
  free(e);
}

/* Adds or resizes h as most recent, then evicts down to max; under mu.
** -1 when out of memory. */
static int add(s3_cache *c, uint64_t h, uint64_t size, int64_t mtime) {
  entry **pp = slot_of(c, h), *e = *pp;
  if (e == NULL) {
    if ((e = calloc(1, sizeof *e)) == NULL) return -1;
    e->h = h;
    *pp = e;
    c->n++;
  } else {
    list_unlink(c, e);
    c->bytes -= e->size;
  }
  e->size = size;
  e->mtime = mtime;
  c->bytes += size;
  list_front(c, e);
  while (c->bytes > c->max && c->tail != NULL) drop(c, c->tail->h, 1);
  grow(c);
  return 0;
}

/* ---- opening ---------------------------------------------------------------------- */

static int by_mtime(const void *a, const void *b) {
  const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
  return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Indexes the files of an earlier run, oldest first so they go first;
** removes temporary files a crash left. */
static store_rc scan(s3_cache *c, char *err) {
  DIR *d = opendir(c->dir);
  struct dirent *de;
  entry **v = NULL;
  size_t n = 0, cap = 0;
  store_rc rc = STORE_OK;

  if (d == NULL)
    return store_seterr(err, STORE_IO, "cache directory %s: %s", c->dir, strerror(errno));
  while ((de = readdir(d)) != NULL) {
    char path[4096], *end;
    struct stat sb;
    uint64_t h;
    snprintf(path, sizeof path, "%s/%s", c->dir, de->d_name);
    if (strncmp(de->d_name, "tmp.", 4) == 0) {
      unlink(path);
      continue;
    }
    if (strlen(de->d_name) != 16) continue;
    h = strtoull(de->d_name, &end, 16);
    if (*end != '\0' || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
    if (n == cap) {
      entry **nv = realloc(v, (cap = cap ? 2 * cap : 256) * sizeof *nv);
      if (nv == NULL) break;
      v = nv;
    }
    if ((v[n] = calloc(1, sizeof **v)) == NULL) break;
    v[n]->h = h;
    v[n]->size = (uint64_t)sb.st_size;
    v[n++]->mtime = (int64_t)sb.st_mtime;
  }
  closedir(d);
  if (n > 1) qsort(v, n, sizeof *v, by_mtime);
  for (size_t i = 0; i < n; i++) {
    if (add(c, v[i]->h, v[i]->size, v[i]->mtime) != 0)
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
    free(v[i]);
  }
  free(v);
  return rc;
}

store_rc store_s3_cache_open(const char *dir, const char *scope,
                             uint64_t max_bytes, s3_cache **out, char *err) {
  s3_cache *c = calloc(1, sizeof *c);
  store_rc rc;

  if (c == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_init(&c->mu, NULL);
  c->lock_fd = -1;
  c->max = max_bytes;
  c->nbuckets = 1024;
  if ((c->dir = strdup(dir)) == NULL || (c->scope = strdup(scope)) == NULL ||
      (c->tab = calloc(c->nbuckets, sizeof *c->tab)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto fail;
  }
  if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
    rc = store_seterr(err, STORE_IO, "cannot create cache directory %s: %s", dir,
                      strerror(errno));
    goto fail;
  }
  if ((rc = store_dirlock(dir, "cache directory", 0, &c->lock_fd, err)) != STORE_OK ||
      (rc = scan(c, err)) != STORE_OK)
    goto fail;
  *out = c;
  return STORE_OK;
fail:
  store_s3_cache_close(c);
  return rc;
}

void store_s3_cache_close(s3_cache *c) {
  if (c == NULL) return;
  while (c->head != NULL) {
    entry *e = c->head;
    c->head = e->next;
    free(e);
  }
  free(c->tab);
  store_dirunlock(c->lock_fd);
  pthread_mutex_destroy(&c->mu);
  free(c->dir);
  free(c->scope);
  free(c);
}

/* ---- use -------------------------------------------------------------------------- */

int store_s3_cache_has(s3_cache *c, const char *key) {
  int has;
  if (c == NULL) return 0;
  pthread_mutex_lock(&c->mu);
  has = *slot_of(c, key_hash(c, key)) != NULL;
  if (!has) c->misses++;
  pthread_mutex_unlock(&c->mu);
  return has;
}

static void put_u64(unsigned char *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static uint32_t crc_of(const void *data, size_t len) {
  return libdeflate_crc32(0, data, len);
}

/* Reads and checks the file of scope + key: the object (malloc'd) or NULL
** with why in *bad (NULL: simply not there). */
static void *read_file(const char *path, const char *scope, const char *key,
                       size_t *len, const char **bad) {
  size_t slen = strlen(scope), klen = slen + strlen(key);
  unsigned char hdr[HEADER];
  char *buf = NULL;
  struct stat sb;
  uint64_t olen;
  int fd = open(path, O_RDONLY | O_CLOEXEC);

  *bad = NULL;
  if (fd < 0) return NULL;
  if (fstat(fd, &sb) != 0 || pread(fd, hdr, HEADER, 0) != HEADER ||
      memcmp(hdr, MAGIC, 8) != 0) {
    *bad = "bad header";
    goto out;
  }
  olen = get_u64(hdr + 8);
  if (get_u64(hdr + 24) != klen || (uint64_t)sb.st_size != HEADER + klen + olen) {
    *bad = "wrong size";
    goto out;
  }
  if ((buf = malloc(klen + olen + 1)) == NULL) goto out;
  if (pread(fd, buf, klen + olen, HEADER) != (ssize_t)(klen + olen) ||
      memcmp(buf, scope, slen) != 0 || memcmp(buf + slen, key, klen - slen) != 0) {
    *bad = "another key";
  } else if (crc_of(buf + klen, olen) != (uint32_t)get_u64(hdr + 16)) {
    *bad = "CRC mismatch";
  } else {
    memmove(buf, buf + klen, olen);
    buf[olen] = '\0';
    *len = olen;
    close(fd);
    return buf;
  }
out:
  free(buf);
  close(fd);
  return NULL;
}

int store_s3_cache_get(s3_cache *c, const char *key, void **data, size_t *len) {
  uint64_t h;
  char path[4096];
  const char *bad;
  void *buf;
  size_t n = 0;
  int known;

  if (c == NULL) return 0;
  h = key_hash(c, key);
  pthread_mutex_lock(&c->mu);
  entry *e = *slot_of(c, h);
  if ((known = e != NULL)) {
    list_unlink(c, e);
    list_front(c, e);
  }
  pthread_mutex_unlock(&c->mu);
  path_of(c, h, path, sizeof path);
  buf = known ? read_file(path, c->scope, key, &n, &bad) : NULL;
  pthread_mutex_lock(&c->mu);
  if (buf != NULL) {
    c->hits++;
  } else {
    c->misses++;
    if (known) {
      drop(c, h, 1);
      fprintf(stderr, "s3 cache: %s (%.200s): %s, fetching it again\n", path,
              key, bad ? bad : "unreadable");
    }
  }
  pthread_mutex_unlock(&c->mu);
  if (buf == NULL) return 0;
  *data = buf;
  *len = n;
  return 1;
}

void store_s3_cache_put(s3_cache *c, const char *key, const void *data,
                        size_t len) {
  size_t klen;
  uint64_t h, size, seq;
  unsigned char hdr[HEADER] = {0};
  char tmp[4096], path[4096];
  int fd, ok;

  if (c == NULL) return;
  klen = strlen(c->scope) + strlen(key);
  size = HEADER + klen + (uint64_t)len;
  if (size > c->max / 4) return;
  h = key_hash(c, key);
  pthread_mutex_lock(&c->mu);
  seq = c->tmp_seq++;
  pthread_mutex_unlock(&c->mu);
  memcpy(hdr, MAGIC, 8);
  put_u64(hdr + 8, len);
  put_u64(hdr + 16, crc_of(data, len));
  put_u64(hdr + 24, klen);
  snprintf(tmp, sizeof tmp, "%s/tmp.%" PRIu64, c->dir, seq);
  path_of(c, h, path, sizeof path);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) return;
  ok = write(fd, hdr, HEADER) == HEADER &&
       write(fd, c->scope, strlen(c->scope)) == (ssize_t)strlen(c->scope) &&
       write(fd, key, strlen(key)) == (ssize_t)strlen(key) &&
       write(fd, data, len) == (ssize_t)len;
  ok = close(fd) == 0 && ok;
  pthread_mutex_lock(&c->mu);
  /* rename under mu: an eviction of h cannot unlink the new file */
  if (ok && rename(tmp, path) == 0) {
    if (add(c, h, size, 0) != 0) unlink(path); /* no file the index lacks */
  } else {
    unlink(tmp);
  }
  pthread_mutex_unlock(&c->mu);
}

void store_s3_cache_del(s3_cache *c, const char *key) {
  if (c == NULL) return;
  pthread_mutex_lock(&c->mu);
  drop(c, key_hash(c, key), 1);
  pthread_mutex_unlock(&c->mu);
}

void store_s3_cache_stats(s3_cache *c, s3_cache_stats *out) {
  if (c == NULL) {
    *out = (s3_cache_stats){-1, -1, -1};
    return;
  }
  pthread_mutex_lock(&c->mu);
  *out = (s3_cache_stats){c->hits, c->misses, (int64_t)c->bytes};
  pthread_mutex_unlock(&c->mu);
}
