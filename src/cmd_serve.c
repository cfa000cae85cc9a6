/*
** cmd_serve.c — `profefs serve`: one process serving a local store over
** HTTP and, with --mount, as a FUSE filesystem.
**
** Start-up order is store -> httpd -> fs, shutdown the reverse, so no front
** end ever sees a closed store.  The main thread only waits for signals and
** runs retention (or, without it, an S3 store's upkeep); all serving
** happens in the front ends' own threads.
*/
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "fs.h"
#include "httpd.h"
#include "meta.h"
#include "store.h"

#define DEFAULT_MAX_BODY ((size_t)32 << 20)     /* httpd's default */
#define DEFAULT_MAX_INFLATE ((size_t)256 << 20) /* the store's default */
#define DEFAULT_MAX_MEMORY ((size_t)512 << 20)
#define BUDGET_WAIT_MS 2000

static const char usage[] =
  "Usage: profefs serve [OPTION]...\n"
  "\n"
  "Serves the profefe HTTP API of a local profile store and, with --mount,\n"
  "the same store as a FUSE filesystem. Stops cleanly on SIGINT/SIGTERM.\n"
  "\n"
  "  -d, --data DIR          data directory (default ./profefs-data), or\n"
  "                          s3://BUCKET[/PREFIX]: an S3 bucket in profefe's\n"
  "                          layout (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,\n"
  "                          AWS_SESSION_TOKEN, AWS_REGION; any number of nodes)\n"
  "      --s3-endpoint URL   S3 endpoint (default AWS_ENDPOINT_URL_S3, else\n"
  "                          AWS_ENDPOINT_URL, else AWS); path-style addressing\n"
  "      --cache DIR         S3: keep fetched and ingested objects in DIR (one\n"
  "                          node per DIR: it is locked); merges read them from\n"
  "                          there instead of S3\n"
  "      --cache-size SIZE   S3: bound of --cache, least recently used out\n"
  "                          first (default 1G)\n"
  "  -a, --addr HOST:PORT    listen address (default 127.0.0.1:10100; port 0 = any)\n"
  "  -m, --mount DIR         also mount the store at DIR\n"
  "      --read-only         refuse every write (HTTP 403, EROFS)\n"
  "      --retention DUR     delete profiles older than DUR (e.g. 120h, 30d);\n"
  "                          default: keep everything\n"
  "      --window DUR        FUSE: list only profiles of the last DUR in type\n"
  "                          directories (default: all)\n"
  "      --max-body SIZE     HTTP request body limit (default 32M)\n"
  "      --max-inflate SIZE  decompressed profile size limit (default 256M)\n"
  "      --max-memory SIZE   request bodies, profiles being inflated and files\n"
  "                          being written to the mount together (default\n"
  "                          512M); past it a request waits up to 2s, then\n"
  "                          gets 503 (ENOMEM on the mount)\n"
  "      --allow-other       FUSE: let other users see the mount\n"
  "      --fuse-debug        FUSE: print libfuse's debug output\n"
  "  -q, --quiet             no per-request log lines\n"
  "  -h, --help              show this help\n";

typedef struct serve_config {
  const char *data, *addr, *mount, *s3_endpoint, *cache;
  int read_only, quiet, allow_other, fuse_debug;
  int64_t retention, window;
  size_t max_body, max_inflate, max_memory, cache_size;
} serve_config;

/* Parses argv into *cfg; returns -1 on success, else the exit status. */
static int parse_args(int argc, char **argv, serve_config *cfg) {
  enum { O_READONLY = 256, O_RETENTION, O_WINDOW, O_MAXBODY, O_MAXINFLATE, O_MAXMEMORY,
         O_ALLOWOTHER, O_FUSEDEBUG, O_S3ENDPOINT, O_CACHE, O_CACHESIZE };
  static const struct option longopts[] = {
    { "data", required_argument, NULL, 'd' },
    { "addr", required_argument, NULL, 'a' },
    { "mount", required_argument, NULL, 'm' },
    { "read-only", no_argument, NULL, O_READONLY },
    { "retention", required_argument, NULL, O_RETENTION },
    { "window", required_argument, NULL, O_WINDOW },
    { "max-body", required_argument, NULL, O_MAXBODY },
    { "max-inflate", required_argument, NULL, O_MAXINFLATE },
    { "max-memory", required_argument, NULL, O_MAXMEMORY },
    { "allow-other", no_argument, NULL, O_ALLOWOTHER },
    { "fuse-debug", no_argument, NULL, O_FUSEDEBUG },
    { "s3-endpoint", required_argument, NULL, O_S3ENDPOINT },
    { "cache", required_argument, NULL, O_CACHE },
    { "cache-size", required_argument, NULL, O_CACHESIZE },
    { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  size_t body, inflate;
  int c;

  while ((c = getopt_long(argc, argv, ":d:a:m:qh", longopts, NULL)) != -1) {
    switch (c) {
      case 'd': cfg->data = optarg; break;
      case 'a': cfg->addr = optarg; break;
      case 'm': cfg->mount = optarg; break;
      case O_S3ENDPOINT: cfg->s3_endpoint = optarg; break;
      case O_CACHE: cfg->cache = optarg; break;
      case O_CACHESIZE:
        if (cli_parse_size(optarg, &cfg->cache_size) != 0 || cfg->cache_size == 0)
          return cli_usage_error("serve", "invalid --cache-size '%s' (e.g. 1G)", optarg);
        break;
      case 'q': cfg->quiet = 1; break;
      case O_READONLY: cfg->read_only = 1; break;
      case O_ALLOWOTHER: cfg->allow_other = 1; break;
      case O_FUSEDEBUG: cfg->fuse_debug = 1; break;
      case O_RETENTION:
        if (meta_duration_parse(optarg, &cfg->retention) != 0)
          return cli_usage_error("serve", "invalid --retention '%s' (e.g. 120h, 30d)", optarg);
        break;
      case O_WINDOW:
        if (cli_parse_window(optarg, &cfg->window) != 0)
          return cli_usage_error("serve", "invalid --window '%s' (e.g. 24h, all)", optarg);
        break;
      case O_MAXBODY:
        if (cli_parse_size(optarg, &cfg->max_body) != 0)
          return cli_usage_error("serve", "invalid --max-body '%s' (e.g. 32M)", optarg);
        break;
      case O_MAXINFLATE:
        if (cli_parse_size(optarg, &cfg->max_inflate) != 0)
          return cli_usage_error("serve", "invalid --max-inflate '%s' (e.g. 256M)", optarg);
        break;
      case O_MAXMEMORY:
        if (cli_parse_size(optarg, &cfg->max_memory) != 0 || cfg->max_memory == 0)
          return cli_usage_error("serve", "invalid --max-memory '%s' (e.g. 512M)", optarg);
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: return cli_option_error("serve", c, argv);
    }
  }
  if (optind < argc)
    return cli_usage_error("serve", "unexpected argument '%s'", argv[optind]);
  if ((cfg->cache != NULL || cfg->cache_size != 0) && strncmp(cfg->data, "s3://", 5) != 0)
    return cli_usage_error("serve", "--cache and --cache-size need --data s3://BUCKET");
  if (cfg->cache_size != 0 && cfg->cache == NULL)
    return cli_usage_error("serve", "--cache-size needs --cache DIR");
  /* a request at both limits (its body, then the body inflated) must fit
  ** in the budget on its own */
  body = cfg->max_body ? cfg->max_body : DEFAULT_MAX_BODY;
  inflate = cfg->max_inflate ? cfg->max_inflate : DEFAULT_MAX_INFLATE;
  if (cfg->max_memory < body || cfg->max_memory - body < inflate)
    return cli_usage_error("serve", "--max-memory must be at least --max-body "
                           "plus --max-inflate");
  return -1;
}

static void run_retention(store *st, int64_t retention) {
  char err[STORE_ERRMAX];
  size_t deleted = 0;
  int64_t cutoff = (int64_t)time(NULL) - retention;
  char when[META_TIME_MAX];

  if (store_retain(st, cutoff, &deleted, err) != STORE_OK) {
    cli_errorf("retention: %s", err);
    return;
  }
  if (deleted > 0) {
    meta_time_format(cutoff, when);
    cli_errorf("retention: deleted %zu profiles older than %s", deleted, when);
  }
}

/* store_maintain where the backend has no schedule of its own (S3);
** quiet where it has no upkeep at all (a remote server). */
static void run_upkeep(store *st) {
  char err[STORE_ERRMAX];
  store_rc rc = store_maintain(st, NULL, err);
  if (rc != STORE_OK && rc != STORE_UNSUPPORTED) cli_errorf("upkeep: %s", err);
}

int cmd_serve(int argc, char **argv) {
  serve_config cfg = { .data = "./profefs-data", .addr = "127.0.0.1:10100",
                       .max_memory = DEFAULT_MAX_MEMORY };
  store_options sopts = { 0 };
  httpd_options hopts = { 0 };
  fs_options fopts = { 0 };
  budget *mem = NULL;
  store *st = NULL;
  httpd *h = NULL;
  fs *f = NULL;
  char err[STORE_ERRMAX];
  int rc, sig, started, mount_gone = 0;
  unsigned port;
  time_t next_retention = 0;
  unsigned seed = (unsigned)getpid() ^ (unsigned)time(NULL);

  if ((rc = parse_args(argc, argv, &cfg)) >= 0) return rc;
  rc = 1;
  cli_signals_block();

  /* Buffers of 1 MiB and more come from mmap and go back to the system when
  ** freed, so that the process's size follows the budget: glibc's adaptive
  ** threshold would rise to 32 MiB after the first big body and keep freed
  ** bodies in per-thread arenas. */
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  /* Bind first: a port in use must not leave a new data directory behind. */
  if (httpd_listen(cfg.addr, &hopts.listen_fd, &port, err) != 0) {
    cli_errorf("serve: %s", err);
    goto out;
  }
  if ((mem = budget_new(cfg.max_memory, BUDGET_WAIT_MS)) == NULL) {
    cli_errorf("serve: out of memory");
    goto out;
  }
  sopts.read_only = cfg.read_only;
  sopts.max_inflate = cfg.max_inflate;
  sopts.budget = mem;
  sopts.s3_endpoint = cfg.s3_endpoint;
  sopts.s3_cache_dir = cfg.cache;
  sopts.s3_cache_max = cfg.cache_size;
  if (store_open(cfg.data, &sopts, &st, err) != STORE_OK) {
    cli_errorf("serve: %s", err);
    goto out;
  }

  hopts.addr = cfg.addr;
  hopts.max_body = cfg.max_body;
  hopts.max_inflate = cfg.max_inflate;
  hopts.budget = mem;
  hopts.quiet = cfg.quiet;
  hopts.version = cli_version;
  hopts.commit = cli_commit;
  hopts.build_time = cli_build_time;
  started = httpd_start(st, &hopts, &h, err);
  hopts.listen_fd = 0; /* httpd_start owns it now */
  if (started != 0) {
    cli_errorf("serve: %s", err);
    goto out;
  }
  /* The port it really got: with port 0 the system picked one. */
  cli_errorf("serving %s on http://%.*s:%u%s", cfg.data,
             (int)(strrchr(cfg.addr, ':') != NULL
                       ? strrchr(cfg.addr, ':') - cfg.addr : 0),
             cfg.addr, httpd_port(h), cfg.read_only ? ", read-only" : "");

  if (cfg.mount != NULL) {
    fopts.mountpoint = cfg.mount;
    fopts.read_only = cfg.read_only;
    fopts.window_sec = cfg.window;
    fopts.debug = cfg.fuse_debug;
    fopts.allow_other = cfg.allow_other;
    fopts.budget = mem;
    if (fs_start(st, &fopts, &f, err) != 0) {
      cli_errorf("serve: %s", err);
      goto out;
    }
    cli_errorf("mounted at %s", cfg.mount);
  }

  for (;;) {
    if (cfg.retention > 0 && time(NULL) >= next_retention) {
      run_retention(st, cfg.retention);
      /* every 45 to 75 s: nodes over one bucket that started together
      ** drift apart instead of listing it at the same moments */
      next_retention = time(NULL) + 45 + rand_r(&seed) % 31;
    } else if (cfg.retention == 0 && !cfg.read_only && store_is_remote(st) &&
               time(NULL) >= next_retention) {
      /* no retention pass: an S3 store's upkeep (its rollups' old
      ** versions and count) still runs, every 50 to 70 minutes */
      run_upkeep(st);
      next_retention = time(NULL) + 3000 + rand_r(&seed) % 1201;
    }
    sig = cli_signals_wait(1000);
    if (sig != 0) {
      cli_errorf("%s received, shutting down", strsignal(sig));
      break;
    }
    if (f != NULL && !mount_gone && fs_ended(f)) {
      cli_errorf("the mount at %s was unmounted from outside; still serving HTTP",
                 cfg.mount);
      mount_gone = 1;
    }
  }
  rc = 0;
out:
  if (hopts.listen_fd > 0) close(hopts.listen_fd);
  fs_stop(f);
  httpd_stop(h);
  store_close(st);
  budget_free(mem);
  if (rc == 0) cli_errorf("stopped");
  return rc;
}
