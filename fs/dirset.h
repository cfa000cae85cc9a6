/*
** dirset.h — private to fs/: type and label directories made with mkdir.
**
** A type or label directory normally exists because it holds stored
** profiles; one made by mkdir (or by cp -r, tar, rsync) must exist before
** anything is written into it, so the view remembers it here (in memory,
** for this mount only: after a restart it exists again once it holds a
** profile).  Keys are "<service>/<type>/<labels>", labels "" for the type
** directory itself.  Safe to use from many threads.  What the set holds
** is taken from a memory budget (budget.h), so that mkdirs cannot grow it
** past --max-memory.
*/
#ifndef PROFEFS_FS_DIRSET_H
#define PROFEFS_FS_DIRSET_H

#include "budget.h"

typedef struct fs_dirset fs_dirset;

/* A set whose entries take their bytes from b (not owned; NULL: none).
** NULL on OOM. */
fs_dirset *fs_dirset_new(budget *b);
void fs_dirset_free(fs_dirset *ds);     /* accepts NULL */

/* 0, or -ENOMEM (out of memory, or the budget has no room).  Adding a
** present key is a no-op. */
int fs_dirset_add(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* 1 when present. */
int fs_dirset_has(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* Removes the key; 1 when it was present. */
int fs_dirset_del(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* Removes every key of service; returns how many there were. */
int fs_dirset_del_service(fs_dirset *ds, const char *service);

/* Calls fn(labels, arg) for each key of service/type (labels never "": the
** type directory itself is not passed), stopping at the first
** non-zero return, which it returns (0 otherwise).  fn runs with the set
** locked and must not call back into ds. */
int fs_dirset_foreach(fs_dirset *ds, const char *service, const char *type,
                      int (*fn)(const char *labels, void *arg), void *arg);

#endif /* PROFEFS_FS_DIRSET_H */
