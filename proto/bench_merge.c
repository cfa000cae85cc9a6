/*
** bench_merge.c — measures the streaming merge: FILE... are read into
** memory once, then added ROUNDS times each (default 100) to one
** accumulator, and the result is encoded.  Prints microseconds per add,
** the result time and the peak RSS.  With -z it first compares inflating
** the gzip inputs with zlib and with libdeflate (the reason gzip.c uses
** libdeflate).  With -o FILE it writes the merged profile there.
**
**   meson compile -C BUILD proto/bench_merge
**   BUILD/proto/bench_merge [-z] [-n ROUNDS] [-o OUT] tests/fixtures/cpu_*
*/
#include <libdeflate.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "pprof.h"

typedef struct file {
  const char *name;
  unsigned char *buf;
  size_t len;
} file;

static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int slurp(file *f) {
  FILE *fp = fopen(f->name, "rb");
  long n;

  if (fp == NULL || fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 ||
      fseek(fp, 0, SEEK_SET) != 0 || (f->buf = malloc((size_t)n + 1)) == NULL ||
      fread(f->buf, 1, (size_t)n, fp) != (size_t)n) {
    if (fp != NULL)
      fclose(fp);
    return -1;
  }
  f->len = (size_t)n;
  fclose(fp);
  return 0;
}

static size_t zlib_inflate(const file *f, unsigned char *out, size_t cap) {
  z_stream z;
  size_t n;

  memset(&z, 0, sizeof z);
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
    return 0;
  z.next_in = f->buf;
  z.avail_in = (uInt)f->len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  n = inflate(&z, Z_FINISH) == Z_STREAM_END ? z.total_out : 0;
  inflateEnd(&z);
  return n;
}

static void compare_inflate(const file *fs, int nf, int rounds) {
  struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
  size_t cap = 64 << 20, n, total = 0;
  unsigned char *out = malloc(cap);
  double t0, tz, tl;
  int r, i;

  if (d == NULL || out == NULL) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  t0 = now();
  for (r = 0; r < rounds; r++)
    for (i = 0; i < nf; i++)
      total += zlib_inflate(&fs[i], out, cap);
  tz = now() - t0;
  t0 = now();
  for (r = 0; r < rounds; r++)
    for (i = 0; i < nf; i++)
      if (libdeflate_gzip_decompress(d, fs[i].buf, fs[i].len, out, cap, &n) ==
          LIBDEFLATE_SUCCESS)
        total -= n;
  tl = now() - t0;
  printf("inflate: zlib %.1f us/profile, libdeflate %.1f us/profile%s\n",
         tz * 1e6 / (rounds * nf), tl * 1e6 / (rounds * nf),
         total == 0 ? "" : " (outputs differ!)");
  libdeflate_free_decompressor(d);
  free(out);
}

int main(int argc, char **argv) {
  char err[PPROF_ERRMAX];
  const char *outname = NULL;
  int rounds = 100, zcmp = 0, opt, nf, i, r, rc = 1;
  file *fs = NULL;
  pprof_merge *m = NULL;
  struct rusage ru;
  void *res = NULL;
  size_t reslen;
  double t0, tadd, tres;

  while ((opt = getopt(argc, argv, "n:o:z")) != -1) {
    if (opt == 'n')
      rounds = atoi(optarg);
    else if (opt == 'o')
      outname = optarg;
    else if (opt == 'z')
      zcmp = 1;
    else
      goto usage;
  }
  nf = argc - optind;
  if (nf <= 0 || rounds <= 0)
    goto usage;
  if ((fs = calloc((size_t)nf, sizeof *fs)) == NULL)
    goto out;
  for (i = 0; i < nf; i++) {
    fs[i].name = argv[optind + i];
    if (slurp(&fs[i]) != 0) {
      fprintf(stderr, "bench_merge: cannot read %s\n", fs[i].name);
      goto out;
    }
  }
  if (zcmp)
    compare_inflate(fs, nf, rounds);
  if ((m = pprof_merge_new(0)) == NULL)
    goto out;
  t0 = now();
  for (r = 0; r < rounds; r++)
    for (i = 0; i < nf; i++)
      if (pprof_merge_add(m, fs[i].buf, fs[i].len, err) != PPROF_OK) {
        fprintf(stderr, "bench_merge: %s: %s\n", fs[i].name, err);
        goto out;
      }
  tadd = now() - t0;
  t0 = now();
  if (pprof_merge_result(m, &res, &reslen, err) != PPROF_OK) {
    fprintf(stderr, "bench_merge: result: %s\n", err);
    goto out;
  }
  tres = now() - t0;
  getrusage(RUSAGE_SELF, &ru);
  printf("merge: %zu adds in %.3f s = %.1f us/profile; result %zu bytes in "
         "%.2f ms; total %.1f us/profile; peak RSS %ld MB\n",
         pprof_merge_count(m), tadd, tadd * 1e6 / ((double)rounds * nf),
         reslen, tres * 1e3, (tadd + tres) * 1e6 / ((double)rounds * nf),
         ru.ru_maxrss / 1024);
  if (outname != NULL) {
    FILE *fp = fopen(outname, "wb");
    if (fp == NULL || fwrite(res, 1, reslen, fp) != reslen || fclose(fp)) {
      fprintf(stderr, "bench_merge: cannot write %s\n", outname);
      goto out;
    }
  }
  rc = 0;
out:
  free(res);
  pprof_merge_free(m);
  for (i = 0; fs != NULL && i < nf; i++)
    free(fs[i].buf);
  free(fs);
  return rc;
usage:
  fprintf(stderr, "usage: bench_merge [-z] [-n ROUNDS] [-o OUT] FILE...\n");
  return 2;
}
