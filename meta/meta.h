/*
** meta.h — the vocabulary every part of profefs shares: profile types,
** ids, label sets, service names, times and durations.
**
** Nothing here does I/O or keeps state; every function is pure (apart from
** meta_id_new, which reads the clock's argument and getrandom()).  All other
** components (proto excepted) build on this one, so it must stay small.
**
** Canonical label strings
** -----------------------
** A label set is kept as one string "k=v,k=v" where:
**   - pairs are sorted by key, then by value (duplicates of a pair removed);
**   - keys and values were url-unescaped and trimmed of spaces on input,
**     and pairs with an empty key dropped;
**   - in the canonical form, every byte of a key or value that is '%', ',',
**     '=', '/', '+', a space, a control character or >= 0x7f is written
**     as %XX (upper-case hex), so ',' and '=' only ever separate;
**   - the empty set is the empty string "".
** The same canonical string is used in the SQLite store, as a FUSE label
** directory name and as the filter of a query, so comparing label sets is
** comparing strings and a subset test is a merge of two sorted lists.
*/
#ifndef PROFEFS_META_H
#define PROFEFS_META_H

#include <stddef.h>
#include <stdint.h>

/* Size of the error buffers that functions below fill (NUL included). */
#define META_ERRMAX 256

/* ---- profile types ------------------------------------------------------ */

typedef enum meta_type {
  META_CPU = 0,
  META_HEAP,
  META_BLOCK,
  META_MUTEX,
  META_GOROUTINE,
  META_THREADCREATE,
  META_OTHER,
  META_TRACE,
  /* Appended after trace, not beside cpu: the number of a type is stored
  ** (SQLite column, and code that names trace as 7), so existing numbers
  ** never move. */
  META_WALL,
  META_NTYPES
} meta_type;

/* Name of type t ("cpu", ...); t must be < META_NTYPES. Static storage. */
const char *meta_type_name(meta_type t);

/* Parses a type name (exact, lower case). Returns the type or -1. */
int meta_type_parse(const char *name);

/* ---- ids ----------------------------------------------------------------- */

/* An id is 20 characters of lower-case base32hex ("0-9a-v") encoding 12
** bytes: 4-byte big-endian unix seconds, then 8 random bytes.  Ids sort by
** creation second as strings. */
#define META_ID_LEN 20

/* Writes a new id for time now_sec into out (NUL-terminated). Never fails:
** falls back to a time+counter mix if getrandom() is unavailable. */
void meta_id_new(int64_t now_sec, char out[META_ID_LEN + 1]);

/* Writes the id of the 12 bytes raw (what meta_id_new encodes) into out. */
void meta_id_encode(const uint8_t raw[12], char out[META_ID_LEN + 1]);

/* The creation second of a valid id (its first 4 bytes). */
int64_t meta_id_time(const char *id);

/* 1 when s is exactly META_ID_LEN characters of base32hex (lower case). */
int meta_id_valid(const char *s);

/* ---- services -------------------------------------------------------------- */

/* The longest service name, in bytes. */
#define META_SERVICE_MAX 255

/* 1 when name may be a service: 1..META_SERVICE_MAX bytes, no '/', no
** control characters (< 0x20 or 0x7f), not starting with '.', and not
** "merge" or "diff" (reserved for the FUSE merge and diff views). */
int meta_service_valid(const char *name);

/* Why name may not be a service, for a user ("longer than 255 bytes",
** "contains '/'"; a static string), or NULL when it may. */
const char *meta_service_why(const char *name);

/* ---- labels -------------------------------------------------------------- */

/* Parses "k=v,k=v" as sent by clients (url-escaped, spaces around items
** allowed) into the canonical form described above.
** Returns 0 and sets *out (malloc'd, caller frees) on success; returns -1
** with a message in err (may be NULL) for a pair without '=', a bad %-escape
** or a total over 64 KiB; *out is then unchanged. in may be NULL or "". */
int meta_labels_parse(const char *in, char **out, char err[META_ERRMAX]);

/* The canonical set of n pairs given as they are (keys[i], values[i]: raw
** bytes, no escapes, as another protocol's attributes or tags come), with
** the rules of meta_labels_parse (pairs with an empty key dropped, spaces
** trimmed, duplicates removed).  Returns 0 and sets *out (malloc'd, caller
** frees), or -1 with a reason in err (may be NULL) when the set would be
** over 64 KiB or out of memory; *out is then unchanged. */
int meta_labels_from_pairs(const char *const *keys, const char *const *values,
                           size_t n, char **out, char err[META_ERRMAX]);

/* 1 when the canonical string s is a canonical label set (what
** meta_labels_parse would return for it). Used to validate FUSE dir names. */
int meta_labels_canonical(const char *s);

/* 1 when every pair of the canonical filter is among the canonical labels.
** An empty or NULL filter matches everything. */
int meta_labels_match(const char *filter, const char *labels);

/* Calls fn(key, value, arg) for each pair of the canonical string with key
** and value unescaped (NUL-terminated, valid only during the call).  Stops
** and returns fn's value as soon as it is non-zero; returns 0 at the end,
** -1 on a malformed string or out of memory. */
int meta_labels_foreach(const char *canon,
                        int (*fn)(const char *key, const char *value, void *arg),
                        void *arg);

/* Merges two canonical sets (union); the result is malloc'd, NULL on OOM. */
char *meta_labels_union(const char *a, const char *b);

/* ---- times and durations --------------------------------------------------- */

/* Parses a point in time to unix seconds (UTC).  Accepted:
**   2006-01-02T15:04:05            (UTC, profefe's format)
**   2006-01-02T15:04:05Z / +07:00  (RFC 3339, fractional seconds ignored)
**   1700000000                     (unix seconds, digits only)
**   now, now-1h30m, now+5m         (relative to now_sec)
** Returns 0 and sets *out, or -1 with *out unchanged. */
int meta_time_parse(const char *s, int64_t now_sec, int64_t *out);

/* Parses a Go-style duration of whole seconds or more: "90s", "1h30m",
** "120h", "7d" (days, an extension), "2w". Returns 0 and sets *out_sec
** (> 0), or -1 with *out_sec unchanged. */
int meta_duration_parse(const char *s, int64_t *out_sec);

/* Formats t as "2006-01-02T15:04:05Z" (21 bytes with NUL). */
#define META_TIME_MAX 32
void meta_time_format(int64_t t, char out[META_TIME_MAX]);

/* Formats t as the FUSE file-name stamp "20060102T150405Z". */
void meta_time_stamp(int64_t t, char out[META_TIME_MAX]);

#endif /* PROFEFS_META_H */
