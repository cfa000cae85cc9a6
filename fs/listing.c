/*
** listing.c — the listing of one open directory (listing.h).
**
** Invariants: v[0..n) hold copies of what the filler was given, in order;
** an entry's offset is its index + 1 (0 means "from the start").  A
** listing is used by one directory handle, and libfuse serialises the
** readdirs of a handle, so it has no lock.
*/
#include <stdlib.h>
#include <string.h>

#include "listing.h"

typedef struct entry {
  char *name;
  struct stat st;
  int plus; /* st holds its attributes (FUSE_FILL_DIR_PLUS) */
} entry;

struct fs_listing {
  entry *v;
  size_t n, cap;
  int ready;
};

fs_listing *fs_listing_new(void) { return calloc(1, sizeof(fs_listing)); }

static void clear(fs_listing *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].name);
  l->n = 0;
  l->ready = 0;
}

void fs_listing_free(fs_listing *l) {
  if (l == NULL) return;
  clear(l);
  free(l->v);
  free(l);
}

static int append(void *buf, const char *name, const struct stat *st,
                  off_t off, enum fuse_fill_dir_flags flags) {
  fs_listing *l = buf;
  (void)off;
  if (l->n == l->cap) {
    size_t ncap = l->cap ? 2 * l->cap : 64;
    entry *nv = realloc(l->v, ncap * sizeof *nv);
    if (nv == NULL) return 1;
    l->v = nv;
    l->cap = ncap;
  }
  entry *e = &l->v[l->n];
  if ((e->name = strdup(name)) == NULL) return 1;
  if (st != NULL) e->st = *st;
  else memset(&e->st, 0, sizeof e->st);
  e->plus = st != NULL && (flags & FUSE_FILL_DIR_PLUS) != 0;
  l->n++;
  return 0;
}

fuse_fill_dir_t fs_listing_reset(fs_listing *l) {
  clear(l);
  return append;
}

int fs_listing_ready(const fs_listing *l) { return l->ready; }

void fs_listing_set_ready(fs_listing *l) { l->ready = 1; }

void fs_listing_emit(const fs_listing *l, off_t off, void *buf,
                     fuse_fill_dir_t filler, int plus) {
  for (size_t i = off > 0 ? (size_t)off : 0; i < l->n; i++) {
    const entry *e = &l->v[i];
    /* libfuse looks up no "." or "..": with PLUS they would go out with
    ** inode 0, which readdir(3) skips; without, with "unknown". */
    int dots = strcmp(e->name, ".") == 0 || strcmp(e->name, "..") == 0;
    if (filler(buf, e->name, &e->st, (off_t)(i + 1),
               plus && e->plus && !dots ? FUSE_FILL_DIR_PLUS : 0) != 0)
      break; /* the kernel's buffer is full: it asks again from i + 1 */
  }
}
