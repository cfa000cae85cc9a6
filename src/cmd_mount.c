/*
** cmd_mount.c — `profefs mount DIR --remote URL`: the FUSE view of a remote
** profefs/profefe server, through the remote store backend.
**
** Same view as `serve --mount`, only the store is an HTTP client: the same
** default (every profile listed: a profile copied in, of any time, shows in
** the directory it was copied to; --window narrows listings of big remote
** repositories), and every request is bounded by --timeout so that a dead
** server shows as EIO, never as a hung `ls`.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "fs.h"
#include "meta.h"
#include "store.h"

static const char usage[] =
  "Usage: profefs mount DIR --remote URL [OPTION]...\n"
  "\n"
  "Mounts the repository of a remote profefs or profefe server at DIR, with\n"
  "the same layout as `profefs serve --mount`. Stops (and unmounts) cleanly\n"
  "on SIGINT/SIGTERM or when DIR is unmounted.\n"
  "\n"
  "  -r, --remote URL     the server, e.g. http://host:10100 (required)\n"
  "      --read-only      refuse every write (EROFS)\n"
  "      --window DUR     list only profiles of the last DUR in type\n"
  "                       directories (default: all, as serve --mount)\n"
  "      --timeout DUR    limit of each request to the server (default 10s;\n"
  "                       e.g. 2s, 500ms); past it an operation fails with EIO\n"
  "      --allow-other    let other users see the mount\n"
  "      --fuse-debug     print libfuse's debug output\n"
  "  -h, --help           show this help\n"
  "\n"
  "A plain profefe server has no DELETE: rm then fails (EOPNOTSUPP or EPERM,\n"
  "as the filesystem maps it), and a directory made with mkdir shows only in\n"
  "this mount until a profile of that service arrives.\n";

typedef struct mount_config {
  const char *dir, *remote;
  int read_only, allow_other, fuse_debug;
  int64_t window;
  long timeout_ms;
} mount_config;

/* "10s", "1m", "500ms" -> milliseconds; 0 or -1. */
static int parse_timeout(const char *s, long *out_ms) {
  size_t n = strlen(s);
  int64_t sec;
  char *end;

  if (n > 2 && strcmp(s + n - 2, "ms") == 0) {
    long v = strtol(s, &end, 10);
    if (end != s + n - 2 || v <= 0) return -1;
    *out_ms = v;
    return 0;
  }
  if (meta_duration_parse(s, &sec) != 0 || sec > 86400) return -1;
  *out_ms = (long)sec * 1000;
  return 0;
}

/* Parses argv into *cfg; returns -1 on success, else the exit status. */
static int parse_args(int argc, char **argv, mount_config *cfg) {
  enum { O_READONLY = 256, O_WINDOW, O_TIMEOUT, O_ALLOWOTHER, O_FUSEDEBUG };
  static const struct option longopts[] = {
    { "remote", required_argument, NULL, 'r' },
    { "read-only", no_argument, NULL, O_READONLY },
    { "window", required_argument, NULL, O_WINDOW },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "allow-other", no_argument, NULL, O_ALLOWOTHER },
    { "fuse-debug", no_argument, NULL, O_FUSEDEBUG },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int c;

  while ((c = getopt_long(argc, argv, ":r:h", longopts, NULL)) != -1) {
    switch (c) {
      case 'r': cfg->remote = optarg; break;
      case O_READONLY: cfg->read_only = 1; break;
      case O_ALLOWOTHER: cfg->allow_other = 1; break;
      case O_FUSEDEBUG: cfg->fuse_debug = 1; break;
      case O_WINDOW:
        if (cli_parse_window(optarg, &cfg->window) != 0)
          return cli_usage_error("mount", "invalid --window '%s' (e.g. 24h, all)", optarg);
        break;
      case O_TIMEOUT:
        if (parse_timeout(optarg, &cfg->timeout_ms) != 0)
          return cli_usage_error("mount", "invalid --timeout '%s' (e.g. 10s, 500ms)", optarg);
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: return cli_option_error("mount", c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error("mount", "missing mount directory");
  cfg->dir = argv[optind++];
  if (optind < argc)
    return cli_usage_error("mount", "unexpected argument '%s'", argv[optind]);
  if (cfg->remote == NULL)
    return cli_usage_error("mount", "missing --remote URL (e.g. http://host:10100)");
  return -1;
}

int cmd_mount(int argc, char **argv) {
  mount_config cfg = { .timeout_ms = 10000 };
  store_options sopts = { 0 };
  fs_options fopts = { 0 };
  store *st = NULL;
  fs *f = NULL;
  char err[STORE_ERRMAX];
  int rc, sig;

  if ((rc = parse_args(argc, argv, &cfg)) >= 0) return rc;
  rc = 1;
  cli_signals_block();

  sopts.read_only = cfg.read_only;
  sopts.timeout_ms = cfg.timeout_ms;
  sopts.user_agent = "profefs-mount";
  if (store_open_remote(cfg.remote, &sopts, &st, err) != STORE_OK) {
    cli_errorf("mount: %s", err);
    goto out;
  }
  fopts.mountpoint = cfg.dir;
  fopts.read_only = cfg.read_only;
  fopts.window_sec = cfg.window;
  fopts.debug = cfg.fuse_debug;
  fopts.allow_other = cfg.allow_other;
  if (fs_start(st, &fopts, &f, err) != 0) {
    cli_errorf("mount: %s", err);
    goto out;
  }
  cli_errorf("mounted %s at %s%s", cfg.remote, cfg.dir,
             cfg.read_only ? " (read-only)" : "");

  for (;;) {
    if ((sig = cli_signals_wait(1000)) != 0) {
      cli_errorf("%s received, unmounting", strsignal(sig));
      break;
    }
    if (fs_ended(f)) {
      cli_errorf("%s was unmounted", cfg.dir);
      break;
    }
  }
  rc = 0;
out:
  fs_stop(f);
  store_close(st);
  if (rc == 0) cli_errorf("stopped");
  return rc;
}
