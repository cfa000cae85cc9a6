/*
** fs.c — mounting the profefs view: the FUSE session, the thread that runs
** libfuse's multi-threaded loop, and a stop that never leaves a stale mount.
**
** Before mounting, fs_start looks at the mount point: one left by a killed
** process ("Transport endpoint is not connected") is detached and reused,
** with a log line; one where a live filesystem is mounted is refused (a
** mount on top would hide it).
**
** Life of a mount: fs_start mounts and starts one thread in fuse_loop_mt,
** which spawns workers as requests come in (a slow merge occupies one
** worker; `ls` in another shell gets another).  The loop returns when the
** kernel connection ends: fs_stop unmounts (aborting the connection if the
** mount is busy, then detaching it), or someone ran `umount MNT`
** (fs_ended then says so).
*/
#include <assert.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs_int.h"

/* Merge cache bounds: enough for a few people looking at a few ranges. */
#define MCACHE_ENTRIES 64
#define MCACHE_BYTES (256u << 20)

/* Worker threads of the FUSE loop. */
#define MAX_THREADS 16
#define IDLE_THREADS 4

void fs_log(const char *fmt, ...) {
  char line[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  fprintf(stderr, "fs: %s\n", line);
}

int fs_errno(store_rc rc) {
  switch (rc) {
    case STORE_OK: return 0;
    case STORE_NOTFOUND: return ENOENT;
    case STORE_INVALID: return EINVAL;
    case STORE_BADPROFILE: return EINVAL;
    case STORE_TOOBIG: return EFBIG;
    case STORE_MISMATCH: return EINVAL;
    case STORE_UNSUPPORTED: return ENOTSUP;
    case STORE_READONLY: return EROFS;
    case STORE_NOSPACE: return ENOSPC;
    case STORE_IO: return EIO;
    case STORE_NOMEM: return ENOMEM;
    case STORE_BUSY: return ENOMEM; /* the memory budget */
    case STORE_UNAVAILABLE: return EIO;
  }
  return EIO;
}

static void *loop_main(void *arg) {
  fs *f = arg;
  struct fuse_loop_config *cfg = fuse_loop_cfg_create();

  if (cfg != NULL) {
    fuse_loop_cfg_set_max_threads(cfg, MAX_THREADS);
    fuse_loop_cfg_set_idle_threads(cfg, IDLE_THREADS);
  }
  if (fuse_loop_mt(f->fuse, cfg) != 0 && !fuse_session_exited(f->se))
    fs_log("FUSE loop at %s failed", f->mountpoint);
  fuse_loop_cfg_destroy(cfg);
  atomic_store(&f->ended, 1);
  return NULL;
}

/* Mount options for libfuse: fsname, subtype, ro, allow_other, debug. */
static struct fuse *new_fuse(fs *f, const fs_options *opts) {
  char o[128];
  char *argv[4];
  int argc = 0;
  struct fuse_args args;
  struct fuse *fu;

  snprintf(o, sizeof o, "fsname=profefs,subtype=profefs%s%s",
           opts->read_only ? ",ro" : "", opts->allow_other ? ",allow_other" : "");
  argv[argc++] = "profefs";
  argv[argc++] = "-o";
  argv[argc++] = o;
  if (opts->debug) argv[argc++] = "-d";
  args = (struct fuse_args)FUSE_ARGS_INIT(argc, argv);
  fu = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), f);
  fuse_opt_free_args(&args);
  return fu;
}

static void fs_free(fs *f) {
  if (f->fuse != NULL) {
    fuse_unmount(f->fuse);  /* no-op when already unmounted */
    fuse_destroy(f->fuse);
  }
  fs_handles_free_all(f);
  pthread_mutex_destroy(&f->handles_mu);
  fs_mcache_free(f->mc);
  fs_wbtab_free(f->pending);
  fs_dirset_free(f->mkdirs);
  free(f->mountpoint);
  free(f);
}

/* Detaches the dead mount at path: umount2 when privileged, else
** fusermount3 -u -z.  0 or -1. */
static int detach_dead(const char *path) {
  char *argv[] = { "fusermount3", "-u", "-z", (char *)path, NULL };
  extern char **environ;
  pid_t pid;
  int status;

  if (umount2(path, MNT_DETACH) == 0) return 0;
  if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0)
    return -1;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* The absolute mount point of path, checked: a directory, not where a
** live filesystem is mounted; a dead FUSE mount there is detached first.
** NULL with a reason in err. */
static char *check_mountpoint(const char *path, char err[FS_ERRMAX]) {
  struct stat sb, parent;
  char *abs = realpath(path, NULL), *up = NULL;

  if ((abs == NULL && errno == ENOTCONN) ||
      (abs != NULL && stat(abs, &sb) != 0 && errno == ENOTCONN)) {
    if (detach_dead(abs != NULL ? abs : path) != 0) {
      snprintf(err, FS_ERRMAX, "mount point %s: a dead mount is there and "
               "cannot be detached (try fusermount3 -u -z %s)", path, path);
      goto fail;
    }
    fs_log("%s: stale mount of a killed process (transport endpoint not "
           "connected): detached it", path);
    if (abs == NULL) abs = realpath(path, NULL);
  }
  if (abs == NULL || stat(abs, &sb) != 0) {
    snprintf(err, FS_ERRMAX, "mount point %s: %s", path, strerror(errno));
    goto fail;
  }
  if (!S_ISDIR(sb.st_mode)) {
    snprintf(err, FS_ERRMAX, "mount point %s: not a directory", path);
    goto fail;
  }
  if (asprintf(&up, "%s/..", abs) < 0) {
    up = NULL;
    snprintf(err, FS_ERRMAX, "out of memory");
    goto fail;
  }
  if (strcmp(abs, "/") == 0 ||
      (stat(up, &parent) == 0 && parent.st_dev != sb.st_dev)) {
    snprintf(err, FS_ERRMAX, "mount point %s: a filesystem is already "
             "mounted there (unmount it first)", path);
    goto fail;
  }
  free(up);
  return abs;
fail:
  free(up);
  free(abs);
  return NULL;
}

int fs_start(store *st, const fs_options *opts, fs **out, char err[FS_ERRMAX]) {
  sigset_t all, old;
  fs *f;

  assert(st != NULL && opts != NULL && opts->mountpoint != NULL && out != NULL);
  f = calloc(1, sizeof *f);
  if (f == NULL) {
    snprintf(err, FS_ERRMAX, "out of memory");
    return -1;
  }
  f->st = st;
  f->read_only = opts->read_only;
  f->window_sec = opts->window_sec;
  f->budget = opts->budget;
  f->mounted_at = (int64_t)time(NULL);
  f->uid = getuid();
  f->gid = getgid();
  atomic_init(&f->ended, 0);
  pthread_mutex_init(&f->handles_mu, NULL);
  if ((f->mountpoint = check_mountpoint(opts->mountpoint, err)) == NULL)
    goto fail;
  f->mc = fs_mcache_new(st, FS_MERGE_TTL_SEC, MCACHE_ENTRIES, MCACHE_BYTES);
  f->pending = fs_wbtab_new(FS_WRITTEN_TTL_SEC);
  f->mkdirs = fs_dirset_new(opts->budget);
  if (f->mc == NULL || f->pending == NULL || f->mkdirs == NULL) {
    snprintf(err, FS_ERRMAX, "out of memory");
    goto fail;
  }
  if ((f->fuse = new_fuse(f, opts)) == NULL) {
    snprintf(err, FS_ERRMAX, "cannot set up FUSE (see the message above)");
    goto fail;
  }
  if (fuse_mount(f->fuse, f->mountpoint) != 0) {
    snprintf(err, FS_ERRMAX, "cannot mount at %s (is /dev/fuse usable?)",
             f->mountpoint);
    goto fail;
  }
  f->se = fuse_get_session(f->fuse);
  /* Signals are for the main thread: the loop and its workers block them. */
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  errno = pthread_create(&f->thread, NULL, loop_main, f);
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (errno != 0) {
    snprintf(err, FS_ERRMAX, "cannot start the FUSE thread: %s", strerror(errno));
    goto fail;
  }
  f->thread_started = 1;
  *out = f;
  return 0;
fail:
  fs_free(f);
  return -1;
}

int fs_ended(const fs *f) {
  return atomic_load((atomic_int *)&f->ended);
}

/* Ends the kernel connection so that the loop's workers return.  A plain
** unmount does it when nothing uses the mount; when something does (a
** shell's cwd, an open file), MNT_FORCE aborts the connection and
** MNT_DETACH removes the mount point anyway.  Without the privilege for
** umount2, libfuse's fusermount3 -u -z does the lazy part. */
static void unmount(fs *f) {
  if (umount2(f->mountpoint, 0) == 0) return;
  if (errno == EBUSY) {
    fs_log("%s is busy: aborting the connection", f->mountpoint);
    if (umount2(f->mountpoint, MNT_FORCE) != 0 &&
        umount2(f->mountpoint, MNT_DETACH) != 0)
      fs_log("cannot detach %s: %s", f->mountpoint, strerror(errno));
    return;
  }
  fuse_unmount(f->fuse);
}

void fs_stop(fs *f) {
  if (f == NULL) return;
  if (f->thread_started) {
    fuse_session_exit(f->se);
    if (!fs_ended(f)) unmount(f);
    pthread_join(f->thread, NULL);
  }
  fs_free(f);
}
