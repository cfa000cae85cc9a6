/*
** labelsets.c — fills a local store with many label sets, fast, for
** tests/integration/labelsets.sh and the label-set rows of scripts/bench:
**
**     labelsets DATA_DIR SERVICE SETS PROFILES FILE...
**
** Ingests PROFILES profiles of type cpu into DATA_DIR through the store
** API (store_ingest, the path every front end takes, without HTTP in the
** way: what is measured afterwards goes through the mount and HTTP).
** Profile i carries the label set pod=pNNNNN,region=rR with pod i % SETS
** and region pod % 3 (eu, us, ap), and the bytes of FILE[i % nfiles]:
** give files of distinct time_nanos (bench/gen_profiles.py) to spread the
** profiles over time; profile i gets i in its gzip header's MTIME (bytes
** 4-7, which no decoder reads), so that no two are the same bytes and
** every ingest stores one (ingest is idempotent: a load of one label set
** would otherwise store each file once).  8 threads, so that group commit
** batches the fsyncs.
** Prints "profiles=N bytes=B seconds=S" on stdout; exits 1 on any error.
*/
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

#define THREADS 8

static const char *const regions[] = {"eu", "us", "ap"};

typedef struct job {
  store *st;
  const char *service;
  long sets, profiles;
  void **data;
  size_t *len;
  int nfiles;
  atomic_long next, bytes;
  atomic_int failed;
} job;

static void *run(void *arg) {
  job *j = arg;
  char err[STORE_ERRMAX], labels[64];
  unsigned char *copy;
  long i;

  while (!atomic_load(&j->failed) &&
         (i = atomic_fetch_add(&j->next, 1)) < j->profiles) {
    long pod = i % j->sets;
    int f = (int)(i % j->nfiles);
    snprintf(labels, sizeof labels, "pod=p%06ld,region=%s", pod,
             regions[pod % 3]);
    if ((copy = malloc(j->len[f])) == NULL) {
      atomic_store(&j->failed, 1);
      break;
    }
    memcpy(copy, j->data[f], j->len[f]);
    if (j->len[f] > 8 && copy[0] == 0x1f && copy[1] == 0x8b)
      for (int b = 0; b < 4; b++) copy[4 + b] = (unsigned char)(i >> (8 * b));
    if (store_ingest(j->st, j->service, META_CPU, labels, 0, copy, j->len[f],
                     NULL, err) != STORE_OK) {
      fprintf(stderr, "labelsets: ingest %ld: %s\n", i, err);
      atomic_store(&j->failed, 1);
    }
    free(copy);
    atomic_fetch_add(&j->bytes, (long)j->len[f]);
  }
  return NULL;
}

static int slurp(const char *path, void **out, size_t *len) {
  FILE *fp = fopen(path, "rb");
  char *buf = NULL;
  long n;
  int rc = -1;

  if (fp == NULL) return -1;
  if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) > 0 &&
      fseek(fp, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
      fread(buf, 1, (size_t)n, fp) == (size_t)n) {
    *out = buf;
    *len = (size_t)n;
    buf = NULL;
    rc = 0;
  }
  free(buf);
  fclose(fp);
  return rc;
}

int main(int argc, char **argv) {
  job j = {0};
  pthread_t th[THREADS];
  char err[STORE_ERRMAX];
  struct timespec t0, t1;
  int rc = 1, i, started = 0;

  if (argc < 6) {
    fprintf(stderr, "usage: labelsets DATA_DIR SERVICE SETS PROFILES FILE...\n");
    return 2;
  }
  j.service = argv[2];
  j.sets = atol(argv[3]);
  j.profiles = atol(argv[4]);
  j.nfiles = argc - 5;
  j.data = calloc((size_t)j.nfiles, sizeof *j.data);
  j.len = calloc((size_t)j.nfiles, sizeof *j.len);
  if (j.sets <= 0 || j.profiles <= 0 || j.data == NULL || j.len == NULL)
    goto out;
  for (i = 0; i < j.nfiles; i++)
    if (slurp(argv[5 + i], &j.data[i], &j.len[i]) != 0) {
      fprintf(stderr, "labelsets: cannot read %s\n", argv[5 + i]);
      goto out;
    }
  if (store_open(argv[1], NULL, &j.st, err) != STORE_OK) {
    fprintf(stderr, "labelsets: %s\n", err);
    goto out;
  }
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (started = 0; started < THREADS; started++)
    if (pthread_create(&th[started], NULL, run, &j) != 0) break;
  for (i = 0; i < started; i++) pthread_join(th[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (started == THREADS && !atomic_load(&j.failed)) {
    printf("profiles=%ld bytes=%ld seconds=%.3f\n", j.profiles,
           atomic_load(&j.bytes),
           (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
    rc = 0;
  }
out:
  store_close(j.st);
  for (i = 0; j.data != NULL && i < j.nfiles; i++) free(j.data[i]);
  free(j.data);
  free(j.len);
  return rc;
}
