/*
** encode.c — packs a protobuf-c Profile message and gzips it: the one way
** profiles leave proto/ (pprof_encode and pprof_merge_result).
*/
#include <assert.h>
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
  rc = pprof_gzip(raw, n, out, len);
  free(raw);
  return rc;
}
