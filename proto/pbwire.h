/*
** pbwire.h — writing protobuf's wire format by hand: the varint, key and
** length helpers shared by the writers that build a message straight into
** one buffer of its exact size (proto/build.c for the folded door,
** otlp/otlp.c for OTLP).  Header-only (static inline), no state.
**
** Use: compute the size of every message first (pbwire_field_size,
** pbwire_msg_size), allocate once, then write with the put functions,
** which return the position after what they wrote.  The caller owns the
** buffer and guarantees its room.  Scalars follow proto3: a varint field
** of value zero is omitted (and has size 0).
*/
#ifndef PROFEFS_PBWIRE_H
#define PROFEFS_PBWIRE_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of v as a varint. */
static inline size_t pbwire_vsize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static inline uint8_t *pbwire_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* A length-delimited field's key and length (the payload follows). */
static inline uint8_t *pbwire_put_len(uint8_t *p, unsigned field, size_t len) {
  return pbwire_put_varint(pbwire_put_varint(p, (uint64_t)field << 3 | 2),
                           len);
}

/* A varint field (omitted when zero, as proto3 does). */
static inline uint8_t *pbwire_put_field(uint8_t *p, unsigned field,
                                        uint64_t v) {
  return v == 0 ? p
                : pbwire_put_varint(pbwire_put_varint(p, (uint64_t)field << 3),
                                    v);
}

static inline size_t pbwire_field_size(unsigned field, uint64_t v) {
  return v == 0 ? 0 : pbwire_vsize((uint64_t)field << 3) + pbwire_vsize(v);
}

/* Size of a message of len bytes as field (key, length, payload). */
static inline size_t pbwire_msg_size(unsigned field, size_t len) {
  return pbwire_vsize((uint64_t)field << 3 | 2) + pbwire_vsize(len) + len;
}

#endif /* PROFEFS_PBWIRE_H */
