/*
** s3_key.c — profefe's S3 key layout, which this store shares so that a
** profefe bucket can be switched to profefs in place and back:
**
**   P0.<service>/<type number>/<digest>[,<k=v,k=v>]
**
** The digest is a 20-character xid whose first 4 bytes are created_at, so
** keys of one service/type sort by time and a list can seek to a time with
** start-after.  profefe fills the other 8 bytes with machine/pid/counter;
** we fill them with the first 8 bytes of the SHA-256 of (bytes, service,
** type, labels, created_at): the same profile ingested twice (a client
** retry, two nodes behind a load balancer) gets the same key, and the
** second PUT (If-None-Match, s3_obj.c) finds it there and answers with the
** same id.  That is how ingest is idempotent here without any
** coordination between nodes.  A cryptographic hash, so that no one can
** craft a profile with another's key (the FNV-1a of before was invertible
** byte by byte: about 2^32 work); keys written with it stay valid ids
** (only the shape of a key is checked), they just never come again.
**
** Labels are written raw (k=v sorted by key, joined by ','), as profefe
** does; we read them back through meta_labels_parse, so a label value that
** itself contains ',', '=' or '%' does not survive the round trip (profefe
** has the same ambiguity).
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "s3_int.h"

static const int type_nums[META_NTYPES] = {
  [META_CPU] = 1, [META_HEAP] = 2, [META_BLOCK] = 3, [META_MUTEX] = 4,
  [META_GOROUTINE] = 5, [META_THREADCREATE] = 6, [META_OTHER] = 127,
  [META_TRACE] = 128,
  /* profefe has no wall-clock type; 7 is the next number after its Go
  ** kinds, which profefe itself does not use */
  [META_WALL] = 7,
};

int store_s3_type_num(meta_type t) { return type_nums[t]; }

static int type_of_num(const char *s, size_t n) {
  char buf[8];
  if (n == 0 || n >= sizeof buf) return -1;
  memcpy(buf, s, n);
  buf[n] = '\0';
  for (size_t i = 0; i < n; i++)
    if (buf[i] < '0' || buf[i] > '9') return -1;
  int v = atoi(buf);
  for (int t = 0; t < META_NTYPES; t++)
    if (type_nums[t] == v) return t;
  return -1;
}

char *store_s3_key_dir(const char *service, meta_type type) {
  char *s = NULL;
  if (asprintf(&s, "P0.%s/%d/", service, type_nums[type]) < 0) return NULL;
  return s;
}

static int add_raw(const char *k, const char *v, void *arg) {
  s3_buf *b = arg;
  if ((b->len > 0 && store_s3_buf_add(b, ",", 1) != 0) ||
      store_s3_buf_add(b, k, strlen(k)) != 0 ||
      store_s3_buf_add(b, "=", 1) != 0 ||
      store_s3_buf_add(b, v, strlen(v)) != 0)
    return 1;
  return 0;
}

/* The raw form of canonical labels (malloc'd; "" for none; NULL on OOM). */
static char *labels_raw(const char *labels) {
  s3_buf b = {0};
  if (store_s3_buf_add(&b, "", 0) != 0) return NULL;
  if (labels != NULL && labels[0] != '\0' &&
      meta_labels_foreach(labels, add_raw, &b) != 0) {
    free(b.p);
    return NULL;
  }
  return b.p;
}

char *store_s3_key(const char *service, meta_type type, const char *digest,
                   const char *labels) {
  char *raw = labels_raw(labels), *s = NULL;
  if (raw == NULL) return NULL;
  if (asprintf(&s, "P0.%s/%d/%s%s%s", service, type_nums[type], digest,
               raw[0] ? "," : "", raw) < 0)
    s = NULL;
  free(raw);
  return s;
}

int store_s3_key_parse(const char *key, store_meta *m) {
  const char *svc, *slash1, *slash2, *dig, *lab;
  char digest[META_ID_LEN + 1], *service = NULL, *labels = NULL, *k = NULL;
  char lerr[META_ERRMAX];
  int t;

  /* an id with a control character could never be sent back (id_valid) */
  if (!store_s3_id_valid(key)) return -1;
  svc = key + 3;
  if ((slash1 = strchr(svc, '/')) == NULL || slash1 == svc) return -1;
  if ((slash2 = strchr(slash1 + 1, '/')) == NULL) return -1;
  if ((t = type_of_num(slash1 + 1, (size_t)(slash2 - slash1 - 1))) < 0)
    return -1;
  dig = slash2 + 1;
  if (strlen(dig) < META_ID_LEN || (dig[META_ID_LEN] != '\0' &&
                                    dig[META_ID_LEN] != ','))
    return -1;
  memcpy(digest, dig, META_ID_LEN);
  digest[META_ID_LEN] = '\0';
  if (!meta_id_valid(digest)) return -1;
  lab = dig[META_ID_LEN] == ',' ? dig + META_ID_LEN + 1 : "";
  if (strchr(lab, '/') != NULL) return -1;
  if ((service = strndup(svc, (size_t)(slash1 - svc))) == NULL) return -1;
  if (!meta_service_valid(service) ||
      meta_labels_parse(lab, &labels, lerr) != 0 ||
      (k = strdup(key)) == NULL) {
    free(service);
    free(labels);
    return -1;
  }
  memcpy(m->id, digest, sizeof m->id);
  m->key = k;
  m->service = service;
  m->type = (meta_type)t;
  m->labels = labels;
  m->created_at = meta_id_time(digest);
  m->size = -1;
  return 0;
}

int store_s3_id_valid(const char *id) {
  size_t n = strlen(id);
  if (n < 3 + 1 + 2 + 1 + META_ID_LEN || n > S3_KEY_MAX ||
      strncmp(id, "P0.", 3) != 0)
    return 0;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

static void put_be(uint8_t *out, uint64_t v, int n) {
  for (int i = 0; i < n; i++) out[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

int store_s3_digest(int64_t created_at, const char *service, meta_type type,
                     const char *labels, const void *data, size_t len,
                     char out[META_ID_LEN + 1]) {
  uint8_t raw[12], t = (uint8_t)type, when[8], h[EVP_MAX_MD_SIZE];
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  int ok;
  put_be(when, (uint64_t)created_at, 8);
  /* the NULs end service and labels: no two field lists hash the same */
  ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
       EVP_DigestUpdate(c, service, strlen(service) + 1) == 1 &&
       EVP_DigestUpdate(c, &t, 1) == 1 &&
       EVP_DigestUpdate(c, labels, strlen(labels) + 1) == 1 &&
       EVP_DigestUpdate(c, when, sizeof when) == 1 &&
       EVP_DigestUpdate(c, data, len) == 1 &&
       EVP_DigestFinal_ex(c, h, NULL) == 1;
  EVP_MD_CTX_free(c);
  if (!ok) return -1;
  put_be(raw, (uint64_t)(uint32_t)created_at, 4);
  memcpy(raw + 4, h, 8);
  meta_id_encode(raw, out);
  return 0;
}

void store_s3_digest_floor(int64_t t, char out[META_ID_LEN + 1]) {
  uint8_t raw[12] = {0};
  put_be(raw, (uint64_t)(uint32_t)(t < 0 ? 0 : t > UINT32_MAX ? UINT32_MAX : t), 4);
  meta_id_encode(raw, out);
}
