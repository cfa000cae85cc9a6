/*
** dirlock.h — private to store/: the lock that gives one process at a time
** a directory (dirlock.c says why and how).
*/
#ifndef PROFEFS_STORE_DIRLOCK_H
#define PROFEFS_STORE_DIRLOCK_H

#include "backend.h"

/* Takes the exclusive lock of directory dir (`what` names it in messages:
** "data directory"); *fd holds it until store_dirunlock.  STORE_IO naming
** the holder's pid when another open (in any process) has it.  A read-only
** open of a directory without a lock file takes none (*fd = -1). */
store_rc store_dirlock(const char *dir, const char *what, int read_only,
                       int *fd, char *err);

/* Drops the lock taken as fd (-1: none). */
void store_dirunlock(int fd);

#endif /* PROFEFS_STORE_DIRLOCK_H */
