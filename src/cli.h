/*
** cli.h — the `profefs` command line: one function per subcommand, and the
** few helpers they share (messages, option values, signals, files).
**
** Every cmd_* takes the subcommand's own argc/argv (argv[0] is the
** subcommand name, so getopt works as usual) and returns the process exit
** status: 0 success, 1 failure at run time, 2 bad usage.
*/
#ifndef PROFEFS_CLI_H
#define PROFEFS_CLI_H

#include <stddef.h>
#include <stdint.h>

int cmd_serve(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_mount(int argc, char **argv);
int cmd_scrape(int argc, char **argv);

/* Version strings shown by `profefs version` and GET /api/0/version. */
extern const char cli_version[], cli_commit[], cli_build_time[];

/* Prints "profefs: MESSAGE\n" to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints "profefs: CMD: MESSAGE\nTry 'profefs CMD --help'.\n" and returns 2. */
int cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* After getopt_long (optstring starting with ':', opterr 0) returned c, '?'
** or ':', for argv: one line naming the unknown option or the one missing
** its value (getopt's own message would be a second line); returns 2. */
int cli_option_error(const char *cmd, int c, char **argv);

/* Parses a --window value: a duration (meta.h) in seconds, or "all" / "0"
** for none (0).  Returns 0, or -1 with *out unchanged. */
int cli_parse_window(const char *s, int64_t *out);

/* Parses a byte size "32M", "256MiB", "1G", "4096" into *out (> 0).
** Returns 0, or -1 with *out unchanged. */
int cli_parse_size(const char *s, size_t *out);

/* Reads a whole file ("-" = stdin) into *buf (malloc'd, caller frees).
** Returns 0, or -1 with errno set and *buf unchanged. */
int cli_read_file(const char *path, void **buf, size_t *len);

/* Blocks SIGINT, SIGTERM and SIGHUP in the calling thread (call before
** starting any thread so that all inherit the mask) and ignores SIGPIPE. */
void cli_signals_block(void);

/* Waits up to timeout_ms for SIGINT/SIGTERM/SIGHUP; returns the signal
** number, or 0 on timeout. */
int cli_signals_wait(long timeout_ms);

#endif /* PROFEFS_CLI_H */
