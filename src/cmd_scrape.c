/*
** cmd_scrape.c — `profefs scrape`: pulls the /debug/pprof endpoints of Go
** programs on a schedule into a local store (--data) or a server (--to).
**
** The targets come from the command line (--target and the options after
** it) and/or a file (--config); the scraping itself is scrape/'s.  The main
** thread only waits for a signal, then stops the scraper before closing the
** store it writes to.
*/
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "meta.h"
#include "scrape.h"
#include "store.h"

static const char usage[] =
  "Usage: profefs scrape --target URL --service NAME [OPTION]...\n"
  "       profefs scrape --config FILE [OPTION]...\n"
  "\n"
  "Pulls the /debug/pprof endpoints of Go programs every period and stores\n"
  "each profile with its service, type and labels. Stops cleanly on\n"
  "SIGINT/SIGTERM.\n"
  "\n"
  "Target (command line):\n"
  "  -t, --target URL     the program, e.g. http://app:6060\n"
  "  -s, --service NAME   service to store its profiles under\n"
  "  -l, --labels k=v,..  labels of its profiles\n"
  "  -e, --every DUR      period (default 60s)\n"
  "      --types LIST     types to pull (default cpu,heap,goroutine,mutex,block;\n"
  "                       also threadcreate, other = allocs, trace)\n"
  "      --seconds N      length of cpu and trace profiles (default: the period,\n"
  "                       at most 10)\n"
  "Targets (file):\n"
  "  -c, --config FILE    one target per line:\n"
  "                         URL service=S [labels=k=v,..] [every=60s]\n"
  "                         [types=cpu,heap] [seconds=10]     # comment\n"
  "Destination (one of):\n"
  "      --to URL         a profefs/profefe server, e.g. http://host:10100\n"
  "  -d, --data DIR       a local data directory (default ./profefs-data),\n"
  "                       or s3://BUCKET[/PREFIX] (see profefs serve --help)\n"
  "      --s3-endpoint URL  S3 endpoint for an s3:// --data\n"
  "Other:\n"
  "      --timeout DUR    limit of each request (default 30s, plus the profile\n"
  "                       length for cpu and trace)\n"
  "      --once           one round of every target, then exit; the status is\n"
  "                       1 when a scrape failed\n"
  "  -h, --help           show this help\n"
  "\n"
  "Each scrape logs one line: scrape TARGET TYPE STATUS BYTES MS [details];\n"
  "STATUS is ok, empty (a profile without samples, skipped), error, http-N\n"
  "or stopped. Failures that may pass are retried with backoff.\n";

typedef struct scrape_config {
  const char *target, *service, *labels, *config, *to, *data, *s3_endpoint;
  const char *every, *types, *seconds;
  long timeout_ms;
  int once;
} scrape_config;

/* Parses argv into *cfg; returns -1 on success, else the exit status. */
static int parse_args(int argc, char **argv, scrape_config *cfg) {
  enum { O_TYPES = 256, O_SECONDS, O_TO, O_TIMEOUT, O_ONCE, O_S3ENDPOINT };
  static const struct option longopts[] = {
    { "target", required_argument, NULL, 't' },
    { "service", required_argument, NULL, 's' },
    { "labels", required_argument, NULL, 'l' },
    { "every", required_argument, NULL, 'e' },
    { "types", required_argument, NULL, O_TYPES },
    { "seconds", required_argument, NULL, O_SECONDS },
    { "config", required_argument, NULL, 'c' },
    { "to", required_argument, NULL, O_TO },
    { "data", required_argument, NULL, 'd' },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "once", no_argument, NULL, O_ONCE },
    { "s3-endpoint", required_argument, NULL, O_S3ENDPOINT },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  int64_t sec;
  int c;

  while ((c = getopt_long(argc, argv, ":t:s:l:e:c:d:h", longopts, NULL)) != -1) {
    switch (c) {
      case 't': cfg->target = optarg; break;
      case 's': cfg->service = optarg; break;
      case 'l': cfg->labels = optarg; break;
      case 'e': cfg->every = optarg; break;
      case O_TYPES: cfg->types = optarg; break;
      case O_SECONDS: cfg->seconds = optarg; break;
      case 'c': cfg->config = optarg; break;
      case O_TO: cfg->to = optarg; break;
      case 'd': cfg->data = optarg; break;
      case O_ONCE: cfg->once = 1; break;
      case O_S3ENDPOINT: cfg->s3_endpoint = optarg; break;
      case O_TIMEOUT:
        if (meta_duration_parse(optarg, &sec) != 0 || sec > 86400)
          return cli_usage_error("scrape", "invalid --timeout '%s' (e.g. 30s)", optarg);
        cfg->timeout_ms = (long)sec * 1000;
        break;
      case 'h': fputs(usage, stdout); return 0;
      default: return cli_option_error("scrape", c, argv);
    }
  }
  if (optind < argc)
    return cli_usage_error("scrape", "unexpected argument '%s'", argv[optind]);
  if (cfg->target == NULL && cfg->config == NULL)
    return cli_usage_error("scrape", "give a --target URL or a --config FILE");
  if (cfg->target != NULL && cfg->service == NULL)
    return cli_usage_error("scrape", "missing --service NAME for --target");
  if (cfg->to != NULL && cfg->data != NULL)
    return cli_usage_error("scrape", "--to and --data exclude each other");
  return -1;
}

/* Seconds from "10" or "10s"; -1 when invalid. */
static int64_t seconds_of(const char *s) {
  char *end;
  long long v = strtoll(s, &end, 10);
  int64_t d;
  if (end != s && *end == 0 && v > 0) return v;
  return meta_duration_parse(s, &d) == 0 ? d : -1;
}

/* Fills *t from the command-line target options (strings malloc'd); returns
** -1 on success, else the exit status. */
static int cli_target(const scrape_config *cfg, scrape_target *t) {
  size_t n;

  memset(t, 0, sizeof *t);
  if (strncmp(cfg->target, "http://", 7) != 0 && strncmp(cfg->target, "https://", 8) != 0)
    return cli_usage_error("scrape", "--target must be an http:// URL, got '%s'", cfg->target);
  if (meta_service_why(cfg->service) != NULL)
    return cli_usage_error("scrape", "invalid --service '%.64s': %s", cfg->service,
                           meta_service_why(cfg->service));
  if (meta_labels_parse(cfg->labels, &t->labels, NULL) != 0)
    return cli_usage_error("scrape", "invalid --labels '%s' (want k=v,k=v)", cfg->labels);
  if (cfg->every != NULL && meta_duration_parse(cfg->every, &t->every_sec) != 0)
    return cli_usage_error("scrape", "invalid --every '%s' (e.g. 60s)", cfg->every);
  if (cfg->seconds != NULL && (t->cpu_seconds = seconds_of(cfg->seconds)) < 0)
    return cli_usage_error("scrape", "invalid --seconds '%s'", cfg->seconds);
  if (cfg->types != NULL && scrape_types_parse(cfg->types, &t->types) != 0)
    return cli_usage_error("scrape", "invalid --types '%s' (e.g. cpu,heap)", cfg->types);
  if ((t->url = strdup(cfg->target)) == NULL || (t->service = strdup(cfg->service)) == NULL) {
    cli_errorf("scrape: out of memory");
    return 1;
  }
  n = strlen(t->url);
  while (n > 0 && t->url[n - 1] == '/') t->url[--n] = 0;
  if (n > 12 && strcmp(t->url + n - 12, "/debug/pprof") == 0) t->url[n - 12] = 0;
  return -1;
}

/* The targets of the file and of the command line, in that order; returns
** -1 on success, else the exit status. */
static int load_targets(const scrape_config *cfg, scrape_target **out, size_t *n) {
  char err[SCRAPE_ERRMAX];
  scrape_target *v = NULL, *grown;
  size_t nv = 0;
  int rc;

  if (cfg->config != NULL && scrape_config_load(cfg->config, &v, &nv, err) != 0) {
    cli_errorf("scrape: %s", err);
    return 2;
  }
  if (cfg->target != NULL) {
    if ((grown = realloc(v, (nv + 1) * sizeof *v)) == NULL) {
      scrape_targets_free(v, nv);
      cli_errorf("scrape: out of memory");
      return 1;
    }
    v = grown;
    rc = cli_target(cfg, &v[nv]);
    nv++;
    if (rc >= 0) {
      scrape_targets_free(v, nv);
      return rc;
    }
  }
  *out = v;
  *n = nv;
  return -1;
}

int cmd_scrape(int argc, char **argv) {
  scrape_config cfg = { 0 };
  store_options sopts = { 0 };
  scrape_target *targets = NULL;
  size_t n = 0;
  store *st = NULL;
  scrape *s = NULL;
  char err[STORE_ERRMAX];
  const char *dest;
  int rc, sig, failed;

  if ((rc = parse_args(argc, argv, &cfg)) >= 0) return rc;
  if ((rc = load_targets(&cfg, &targets, &n)) >= 0) return rc;
  rc = 1;
  /* A daemon collects the signals in this thread; --once just dies of one. */
  if (!cfg.once) cli_signals_block();

  sopts.user_agent = "profefs-scrape";
  if (cfg.to != NULL) {
    dest = cfg.to;
    if (store_open_remote(cfg.to, &sopts, &st, err) != STORE_OK) {
      cli_errorf("scrape: %s", err);
      goto out;
    }
  } else {
    dest = cfg.data != NULL ? cfg.data : "./profefs-data";
    sopts.s3_endpoint = cfg.s3_endpoint;
    if (store_open(dest, &sopts, &st, err) != STORE_OK) {
      cli_errorf("scrape: %s", err);
      goto out;
    }
  }

  if (cfg.once) {
    failed = scrape_once(st, targets, n, cfg.timeout_ms);
    if (failed > 0) cli_errorf("scrape: %d scrapes failed", failed);
    rc = failed > 0;
    goto out;
  }
  if (scrape_start(st, targets, n, cfg.timeout_ms, &s, err) != 0) {
    cli_errorf("scrape: %s", err);
    goto out;
  }
  cli_errorf("scraping %zu target%s into %s", n, n == 1 ? "" : "s", dest);
  while ((sig = cli_signals_wait(60000)) == 0) {
  }
  cli_errorf("%s received, stopping", strsignal(sig));
  rc = 0;
out:
  scrape_stop(s);
  store_close(st);
  scrape_targets_free(targets, n);
  if (rc == 0 && !cfg.once) cli_errorf("stopped");
  return rc;
}
