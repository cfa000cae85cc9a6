/*
** cmd_merge.c — `profefs merge FILE... > merged.pb.gz`: the server's merge
** (proto/pprof.h), offline.  Files are added one at a time, so memory grows
** with distinct stacks, not with the number of files.  --format renders
** the merge as the server's views do (view/view.h).
*/
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "pprof.h"
#include "view.h"

static const char usage[] =
  "Usage: profefs merge [-o OUT] FILE...\n"
  "\n"
  "Merges pprof profiles (gzip or plain protobuf) into one gzip pprof, like\n"
  "`go tool pprof -proto FILE...`. Writes to OUT, or to standard output when\n"
  "it is not a terminal. FILE may be - for standard input.\n"
  "\n"
  "  -o, --output OUT      write the merged profile to OUT\n"
  "      --format F        pprof (default), folded, svg, top or json: the\n"
  "                        views of the server's format= parameter\n"
  "      --sample NAME     sample type of the views (default: pprof's)\n"
  "      --max-inflate N   limit on each file's inflated size (default 256M)\n"
  "  -h, --help            show this help\n";

/* "profefs merge: MESSAGE" on stderr. */
static void merge_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void merge_error(const char *fmt, ...) {
  va_list ap;
  fputs("profefs merge: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

static int write_all(FILE *f, const void *buf, size_t len) {
  return fwrite(buf, 1, len, f) == len && fflush(f) == 0 ? 0 : -1;
}

int cmd_merge(int argc, char **argv) {
  static const struct option longopts[] = {
    { "output", required_argument, NULL, 'o' },
    { "max-inflate", required_argument, NULL, 'I' },
    { "format", required_argument, NULL, 'F' },
    { "sample", required_argument, NULL, 'S' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  const char *output = NULL, *sample = NULL;
  view_format fmt = VIEW_PPROF;
  char verr[VIEW_ERRMAX];
  void *rendered = NULL;
  size_t max_inflate = 0;
  pprof_merge *m = NULL;
  void *out = NULL;
  size_t outlen = 0;
  char err[PPROF_ERRMAX];
  FILE *f = NULL;
  int c, rc = 1;

  while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
    switch (c) {
      case 'o': output = optarg; break;
      case 'I':
        if (cli_parse_size(optarg, &max_inflate) != 0)
          return cli_usage_error("merge", "invalid size '%s'", optarg);
        break;
      case 'F':
        if (view_format_parse(optarg, &fmt) != 0)
          return cli_usage_error("merge", "unknown format '%s'", optarg);
        break;
      case 'S': sample = optarg; break;
      case 'h': fputs(usage, stdout); return 0;
      default: return cli_option_error("merge", c, argv);
    }
  }
  if (optind >= argc) return cli_usage_error("merge", "no input files");
  if (output == NULL && fmt == VIEW_PPROF && isatty(STDOUT_FILENO))
    return cli_usage_error("merge", "refusing to write a binary profile to a "
                           "terminal; redirect standard output or use -o");

  m = pprof_merge_new(max_inflate);
  if (m == NULL) { merge_error("out of memory"); goto out; }
  for (int i = optind; i < argc; i++) {
    void *buf = NULL;
    size_t len = 0;
    pprof_rc prc;

    if (cli_read_file(argv[i], &buf, &len) != 0) {
      merge_error("%s: %s", argv[i], strerror(errno));
      goto out;
    }
    prc = pprof_merge_add(m, buf, len, err);
    free(buf);
    if (prc == PPROF_EMISMATCH) {
      merge_error("%s: %s", argv[i], err);
      goto out;
    }
    if (prc != PPROF_OK) {
      merge_error("%s: malformed profile (%s)", argv[i], err);
      goto out;
    }
  }
  if (pprof_merge_result(m, &out, &outlen, err) != PPROF_OK) {
    merge_error("%s", err);
    goto out;
  }
  if (fmt != VIEW_PPROF) {
    if (view_render(out, outlen, fmt, sample, NULL, &rendered, &outlen,
                    verr) != VIEW_OK) {
      merge_error("%s", verr);
      goto out;
    }
    free(out);
    out = rendered;
  }
  f = output ? fopen(output, "wb") : stdout;
  if (f == NULL) {
    merge_error("%s: %s", output, strerror(errno));
    goto out;
  }
  if (write_all(f, out, outlen) != 0) {
    merge_error("%s: %s", output ? output : "standard output", strerror(errno));
    goto out;
  }
  rc = 0;
out:
  if (f != NULL && f != stdout && fclose(f) != 0 && rc == 0) {
    merge_error("%s: %s", output, strerror(errno));
    rc = 1;
  }
  free(out);
  pprof_merge_free(m);
  return rc;
}
