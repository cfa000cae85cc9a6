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
*/
#ifndef PROFEFS_STORE_REMOTE_JSON_H
#define PROFEFS_STORE_REMOTE_JSON_H

#include <stddef.h>

#include "store.h"

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
