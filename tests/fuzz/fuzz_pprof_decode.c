/*
** fuzz_pprof_decode.c — libFuzzer target for pprof_decode (proto/pprof.h).
**
** Input: any bytes, as a client would POST them (gzip or plain protobuf).
** Beyond "no crash, no sanitizer report" it checks the codec's promises:
** a profile that decodes must re-encode, and the re-encoded bytes must
** decode again to a profile with the same sample count and time_nanos;
** a failed decode must leave *out untouched and say why in err.
*/
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "pprof.h"

/* Small inflate limit: the fuzzer must not spend its time (or its RSS
** budget) inflating zip bombs that the limit check rejects anyway. */
#define FUZZ_MAX_INFLATE (8u << 20)


static void check_roundtrip(const pprof_profile *p) {
  void *enc = NULL;
  size_t enc_len = 0;
  pprof_profile *q = NULL;
  char err[PPROF_ERRMAX];
  pprof_rc rc;

  rc = pprof_encode(p, &enc, &enc_len);
  if (rc == PPROF_ENOMEM) return;
  FUZZ_CHECK(rc == PPROF_OK && enc != NULL && enc_len > 0);
  rc = pprof_decode(enc, enc_len, 0, &q, err);
  FUZZ_CHECK(rc == PPROF_OK);
  FUZZ_CHECK(pprof_sample_count(q) == pprof_sample_count(p));
  FUZZ_CHECK(pprof_time_nanos(q) == pprof_time_nanos(p));
  /* pprof_check is the ingest path: it must agree with pprof_decode. */
  {
    int64_t tn = -1;
    rc = pprof_check(enc, enc_len, 0, &tn, err);
    FUZZ_CHECK(rc == PPROF_OK && tn == pprof_time_nanos(p));
  }
  pprof_free(q);
  free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  pprof_profile *p = (pprof_profile *)&p; /* sentinel: must stay unchanged */
  pprof_profile *sentinel = p;
  char err[PPROF_ERRMAX];
  pprof_rc rc;

  err[0] = '\0';
  rc = pprof_decode(data, size, FUZZ_MAX_INFLATE, &p, err);
  if (rc != PPROF_OK) {
    FUZZ_CHECK(p == sentinel);
    FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof err) != NULL);
    FUZZ_CHECK(pprof_strerror(rc) != NULL);
    return 0;
  }
  FUZZ_CHECK(p != NULL && p != sentinel);
  FUZZ_CHECK(pprof_sample_count(p) > 0);
  check_roundtrip(p);
  pprof_free(p);
  return 0;
}
