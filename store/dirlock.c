/*
** dirlock.c — a directory's lock: one process at a time uses it (the
** SQLite store's data directory, the S3 store's object cache).
**
** Two processes on one data directory break what the SQLite store assumes
** of itself: the rollup marks (rollup_dirty's sequence numbers) and the
** generation counter that the FUSE merge cache trusts are per process, so
** another writer's changes would leave rollups stale and cached merges old;
** two on one cache directory would evict each other's files unseen.
**
** The lock is flock(LOCK_EX | LOCK_NB) on DIR/profefs.lock, held by the
** open file description until the store closes or the process dies (also
** by kill -9: the kernel drops it, so a crash never leaves a stale lock).
** flock and not fcntl: fcntl locks belong to the process, so a second open
** in the same process would not conflict, and closing any descriptor of the
** file would drop them.  The holder writes its pid into the file so that a
** refused opener can say who holds it; the pid is informative only (it is
** read without the lock and may be missing while the holder starts).
*/
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "dirlock.h"

#define LOCK_NAME "profefs.lock"

/* The pid written in the lock file open as fd, 0 when unknown. */
static long holder_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  char *end;
  long pid;

  if (n <= 0)
    return 0;
  buf[n] = '\0';
  pid = strtol(buf, &end, 10);
  return end != buf && pid > 0 ? pid : 0;
}

store_rc store_dirlock(const char *dir, const char *what, int read_only,
                       int *fd_out, char *err) {
  char path[4096], pid[32];
  int fd, n;
  store_rc rc = STORE_OK;

  if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, LOCK_NAME) >=
      sizeof path)
    return store_seterr(err, STORE_IO, "%s name too long", what);
  fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  /* A read-only store on a directory this user cannot write still opens:
  ** it locks the file if it can read it, and needs none when there is none
  ** (nothing that writes has ever opened the directory). */
  if (fd < 0 && read_only && (errno == EACCES || errno == EROFS))
    fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && read_only && errno == ENOENT) {
    *fd_out = -1;
    return STORE_OK;
  }
  if (fd < 0)
    return store_seterr(err, STORE_IO, "cannot open lock file %s: %s", path,
                        strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    long holder = errno == EWOULDBLOCK ? holder_pid(fd) : 0;
    if (errno != EWOULDBLOCK)
      rc = store_seterr(err, STORE_IO, "cannot lock %s: %s", path,
                        strerror(errno));
    else if (holder > 0)
      rc = store_seterr(err, STORE_IO, "%s %s is in use by process %ld "
                        "(lock file %s)", what, dir, holder, path);
    else
      rc = store_seterr(err, STORE_IO, "%s %s is in use by another process "
                        "(lock file %s)", what, dir, path);
    close(fd);
    return rc;
  }
  n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    /* best effort: the pid only improves another opener's message */
  }
  *fd_out = fd;
  return STORE_OK;
}

void store_dirunlock(int fd) {
  if (fd >= 0)
    close(fd); /* drops the flock; the file stays, with a stale pid */
}
