/*
** main.c — `profefs`: dispatches to the subcommands of cli.h.
**
** The only process-wide set-up (libcurl's global init, which is not
** thread-safe) happens here, before any thread exists.
*/
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

static const char usage[] =
  "profefs — a continuous-profiling repository (profefe API + FUSE view)\n"
  "\n"
  "Usage:\n"
  "  profefs serve [--data DIR] [--addr HOST:PORT] [--mount DIR] [--retention DURATION]\n"
  "                                  serve the HTTP API (and a FUSE view) of a store\n"
  "  profefs mount DIR --remote URL  FUSE view of a remote profefs/profefe server\n"
  "  profefs merge FILE... > merged.pb.gz\n"
  "                                  merge pprof files offline (same code as the server)\n"
  "  profefs scrape --target URL --service S [--every 60s] [--to URL | --data DIR]\n"
  "                                  pull /debug/pprof endpoints on a schedule\n"
  "  profefs version                 print version, commit and build time\n"
  "\n"
  "Run 'profefs COMMAND --help' for the options of a command.\n";

static const char version_usage[] =
  "Usage: profefs version\n"
  "\n"
  "Prints the version, the git commit and the build time of this binary\n"
  "(GET /api/0/version of a server answers the same).\n";

static int cmd_version(void) {
  printf("profefs %s (commit %s, built %s)\n", cli_version, cli_commit,
         cli_build_time);
  return 0;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    int (*run)(int, char **);
  } cmds[] = {
    { "serve", cmd_serve },
    { "mount", cmd_mount },
    { "merge", cmd_merge },
    { "scrape", cmd_scrape },
  };
  int rc = 2;

  if (argc < 2) {
    fputs(usage, stderr);
    return 2;
  }
  if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    fputs(usage, stdout);
    return 0;
  }
  if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
    if (argc > 2 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
      fputs(version_usage, stdout);
      return 0;
    }
    if (argc > 2)
      return cli_usage_error("version", "unexpected argument '%s'", argv[2]);
    return cmd_version();
  }
  /* the subcommands report bad options themselves, in one line */
  opterr = 0;

  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
    if (strcmp(argv[1], cmds[i].name) == 0) {
      if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cli_errorf("cannot initialise libcurl");
        return 1;
      }
      rc = cmds[i].run(argc - 1, argv + 1);
      curl_global_cleanup();
      return rc;
    }
  }
  cli_errorf("unknown command '%s'", argv[1]);
  fputs(usage, stderr);
  return 2;
}
