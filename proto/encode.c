/*
** encode.c — packs a protobuf-c Profile message and gzips it: the one way
** profiles leave proto/ (pprof_encode and pprof_merge_result); and the
** inflating of compressed request bodies (pprof_decompress).
*/
#include <assert.h>
#include <libdeflate.h>
#include <stdlib.h>

#include "internal.h"
#include "profile.pb-c.h"

pprof_rc pprof_pack_gzip(const Perftools__Profiles__Profile *msg, void **out,
                         size_t *len) {
  uint8_t *raw;
  size_t n;
  pprof_rc rc;

  assert(msg != NULL && out != NULL && len != NULL);
  n = perftools__profiles__profile__get_packed_size(msg);
  raw = malloc(n ? n : 1);
  if (raw == NULL)
    return PPROF_ENOMEM;
  perftools__profiles__profile__pack(msg, raw);
  rc = pprof_gzip(raw, n, PPROF_GZIP_MERGE, out, len);
  free(raw);
  return rc;
}

pprof_rc pprof_decompress(const void *in, size_t len, size_t limit, budget *b,
                          void **out, size_t *outlen, size_t *held,
                          char err[PPROF_ERRMAX]) {
  struct libdeflate_decompressor *d;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  pprof_rc rc;

  assert(out != NULL && outlen != NULL && held != NULL);
  if ((d = libdeflate_alloc_decompressor()) == NULL)
    return pprof_fail(PPROF_ENOMEM, err, "out of memory");
  rc = pprof_gunzip(d, in, len, limit ? limit : PPROF_DEFAULT_INFLATE, &buf,
                    &cap, &n, b, held, err);
  libdeflate_free_decompressor(d);
  if (rc != PPROF_OK) {
    free(buf);
    return rc;
  }
  *out = buf;
  *outlen = n;
  return PPROF_OK;
}
