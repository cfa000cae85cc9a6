/*
** remote_json.h — private to store/: reading the JSON answers of a
** profefe/profefs server (jansson), for the remote backend.
**
** Answers are {"code":N,"body":...} or {"code":N,"error":"..."} (a bare
** body without the envelope is accepted too, as some profefe versions
** send it).  A meta is
** {"id","service","type","labels":[{"key","value"}],"created_at"}; labels
** are turned into the canonical string of meta.h, created_at (RFC 3339)
** into unix seconds.  Sizes are unknown in JSON: size is -1.
**
** Ids: a profefs/profefe server on its own disk answers 20-character ids,
** one on S3 the object key (profefe's S3 store does the same), which is
** longer and holds '/' and ','.  Any id up to STORE_RJSON_ID_MAX bytes is
** taken: a 20-character one lands in meta.id, any other in meta.key (so
** store_meta_id gives it back), with meta.id the 20-character name the
** FUSE view shows (store_rjson_id_name).
*/
#ifndef PROFEFS_STORE_REMOTE_JSON_H
#define PROFEFS_STORE_REMOTE_JSON_H

#include <stddef.h>

#include "store.h"

/* Longest id taken from a server (S3 keys are at most 1024 bytes). */
#define STORE_RJSON_ID_MAX 1024

/* 1 when id can be a profile id of a server: 1..STORE_RJSON_ID_MAX bytes,
** no control character, not "." or ".." (it goes into a URL path,
** path-escaped, where those two would be dot segments). */
int store_rjson_id_valid(const char *id);

/* The 20-character name of id, whose profile was created at created_at:
** id itself when it is 20 characters of base32hex; else the digest of a
** key of profefe's S3 layout ("P0.<service>/<type>/<digest>[,labels]") when
** it encodes created_at; else an id made of created_at and a hash of id.
** Names are time-ordered and, within a service and type, tell ids apart. */
void store_rjson_id_name(const char *id, int64_t created_at,
                         char out[META_ID_LEN + 1]);

/* The second id was made (a 20-character id, or the digest after the last
** '/' of a key), or -1 when it does not say. */
int64_t store_rjson_id_time(const char *id);

/* The "error" string of an answer (malloc'd), or NULL when there is none. */
char *store_rjson_error(const char *text, size_t len);

/* 1 when text is a JSON answer whose "code" is `code`. */
int store_rjson_is_code(const char *text, size_t len, int code);

/* Parses the body of a POST answer into *out (caller clears).
** STORE_IO with a reason when it is not a valid meta. */
store_rc store_rjson_meta(const char *text, size_t len, store_meta *out,
                          char *err);

/* Parses the body list of a find answer into *out (caller frees); entries
** that are not valid metas are skipped.  STORE_IO when it is no list. */
store_rc store_rjson_meta_list(const char *text, size_t len,
                               store_meta_list *out, char *err);

/* Parses a body list of strings (services) into *names / *n (free with
** store_names_free).  STORE_IO when it is no list of strings. */
store_rc store_rjson_names(const char *text, size_t len, char ***names,
                           size_t *n, char *err);

#endif /* PROFEFS_STORE_REMOTE_JSON_H */
