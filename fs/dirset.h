/*
** dirset.h — private to fs/: label directories made with mkdir.
**
** A label directory normally exists because some stored profile has labels
** that match it; one made by mkdir must exist before anything is written
** into it, so the view remembers it here (in memory, for this mount only:
** after a restart it exists again once it holds a profile).
** Keys are "<service>/<type>/<labels>".  Safe to use from many threads.
*/
#ifndef PROFEFS_FS_DIRSET_H
#define PROFEFS_FS_DIRSET_H

typedef struct fs_dirset fs_dirset;

fs_dirset *fs_dirset_new(void);         /* NULL on OOM */
void fs_dirset_free(fs_dirset *ds);     /* accepts NULL */

/* 0, or -ENOMEM.  Adding a present key is a no-op. */
int fs_dirset_add(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* 1 when present. */
int fs_dirset_has(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* Removes the key; 1 when it was present. */
int fs_dirset_del(fs_dirset *ds, const char *service, const char *type,
                  const char *labels);

/* Calls fn(labels, arg) for each key of service/type, stopping at the first
** non-zero return, which it returns (0 otherwise).  fn runs with the set
** locked and must not call back into ds. */
int fs_dirset_foreach(fs_dirset *ds, const char *service, const char *type,
                      int (*fn)(const char *labels, void *arg), void *arg);

#endif /* PROFEFS_FS_DIRSET_H */
