/*
** meta.c — profile type names, ids and service names (see meta.h).
**
** Ids have the shape of profefe's (rs/xid) ids: 12 bytes written as 20
** characters of lower-case base32hex, most significant bits first, the last
** character carrying the final 4 bits followed by 1 zero bit.  The first 4
** bytes are the big-endian creation second, so ids sort by time as strings.
** The other 8 bytes come from getrandom(): ids are made by many threads and
** (with a remote store) many processes, so a per-process counter would not
** be enough and random bytes need no shared state.
*/
#include "meta.h"

#include <assert.h>
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static const char *const type_names[META_NTYPES] = {
  [META_CPU] = "cpu",
  [META_HEAP] = "heap",
  [META_BLOCK] = "block",
  [META_MUTEX] = "mutex",
  [META_GOROUTINE] = "goroutine",
  [META_THREADCREATE] = "threadcreate",
  [META_OTHER] = "other",
  [META_TRACE] = "trace",
  [META_WALL] = "wall",
};

const char *meta_type_name(meta_type t) {
  assert((unsigned)t < META_NTYPES);
  return type_names[t];
}

int meta_type_parse(const char *name) {
  if (name == NULL) return -1;
  for (int t = 0; t < META_NTYPES; t++)
    if (strcmp(name, type_names[t]) == 0) return t;
  return -1;
}

/* ---- ids ----------------------------------------------------------------- */

static const char b32hex[] = "0123456789abcdefghijklmnopqrstuv";

/* splitmix64: spreads the fallback entropy sources over all 64 bits. */
static uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

/* Fills 8 unique-enough bytes.  getrandom() of 8 bytes never returns short
** once the pool is initialised; the fallback (ENOSYS, or an early-boot
** EAGAIN) mixes clocks, pid, thread id and a stack address, which differ
** between any two concurrent callers. */
static void random_bytes(uint8_t out[8]) {
  ssize_t n;
  do {
    n = getrandom(out, 8, GRND_NONBLOCK);
  } while (n < 0 && errno == EINTR);
  if (n == 8) return;

  struct timespec rt, mt;
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mt);
  uint64_t x = mix64((uint64_t)rt.tv_nsec ^ ((uint64_t)mt.tv_nsec << 20));
  x = mix64(x ^ (uint64_t)getpid() ^ ((uint64_t)gettid() << 32));
  x = mix64(x ^ (uint64_t)(uintptr_t)&x);
  for (int i = 0; i < 8; i++) out[i] = (uint8_t)(x >> (56 - 8 * i));
}

void meta_id_encode(const uint8_t raw[12], char out[META_ID_LEN + 1]) {
  /* 96 bits -> 20 groups of 5 bits; the last group is zero-padded. */
  uint32_t acc = 0;
  int bits = 0, o = 0;
  for (int i = 0; i < 12; i++) {
    acc = (acc << 8) | raw[i];
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out[o++] = b32hex[(acc >> bits) & 31];
    }
  }
  out[o++] = b32hex[(acc << (5 - bits)) & 31];
  assert(o == META_ID_LEN);
  out[o] = '\0';
}

void meta_id_new(int64_t now_sec, char out[META_ID_LEN + 1]) {
  uint8_t raw[12];
  uint32_t sec = (uint32_t)now_sec;
  raw[0] = (uint8_t)(sec >> 24);
  raw[1] = (uint8_t)(sec >> 16);
  raw[2] = (uint8_t)(sec >> 8);
  raw[3] = (uint8_t)sec;
  random_bytes(raw + 4);
  meta_id_encode(raw, out);
}

int64_t meta_id_time(const char *id) {
  /* The first 7 characters hold 35 bits: the 32 of the second, then 3. */
  uint64_t acc = 0;
  for (int i = 0; i < 7; i++) {
    char c = id[i];
    acc = (acc << 5) | (uint64_t)(c <= '9' ? c - '0' : c - 'a' + 10);
  }
  return (int64_t)(uint32_t)(acc >> 3);
}

int meta_id_valid(const char *s) {
  if (s == NULL) return 0;
  for (int i = 0; i < META_ID_LEN; i++) {
    char c = s[i];
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'v'))) return 0;
  }
  return s[META_ID_LEN] == '\0';
}

/* ---- services -------------------------------------------------------------- */

const char *meta_service_why(const char *name) {
  if (name == NULL || name[0] == '\0') return "empty";
  if (name[0] == '.') return "starts with '.'";
  /* The FUSE view shows merges under MNT/merge and diffs under MNT/diff,
  ** so no service may take those names (DESIGN.md); refusing them
  ** everywhere keeps the views equal. */
  if (strcmp(name, "merge") == 0) return "\"merge\" is reserved";
  if (strcmp(name, "diff") == 0) return "\"diff\" is reserved";
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)name; *p; p++, n++) {
    if (*p == '/') return "contains '/'";
    if (*p < 0x20 || *p == 0x7f) return "contains a control character";
    if (n >= META_SERVICE_MAX) return "longer than 255 bytes";
  }
  return NULL;
}

int meta_service_valid(const char *name) {
  return meta_service_why(name) == NULL;
}
