/*
** remote_json.c — reads the JSON answers of a profefe/profefs server into
** store.h structures (see remote_json.h).
**
** The server is trusted to speak the protocol but not to be well-formed:
** anything unexpected is an error or a skipped entry, never a crash.
*/
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "backend.h"
#include "remote_json.h"

/* Loads text and returns its "body" member (a new reference) or NULL.
** Some profefe versions answer the bare value without the envelope: an
** object with no "code" is taken as the body itself. */
static json_t *load_body(const char *text, size_t len, char *err) {
  json_error_t jerr;
  json_t *root = json_loadb(text, len, 0, &jerr), *body;

  if (root == NULL) {
    store_seterr(err, STORE_IO, "remote server sent invalid JSON (%s)", jerr.text);
    return NULL;
  }
  if (!json_is_object(root) || json_object_get(root, "code") == NULL)
    return root;
  body = json_object_get(root, "body");
  if (body == NULL) {
    store_seterr(err, STORE_IO, "remote server sent JSON without a body");
    json_decref(root);
    return NULL;
  }
  json_incref(body);
  json_decref(root);
  return body;
}

char *store_rjson_error(const char *text, size_t len) {
  json_t *root = json_loadb(text, len, 0, NULL);
  const char *msg = json_string_value(json_object_get(root, "error"));
  char *copy = msg != NULL ? strdup(msg) : NULL;
  json_decref(root);
  return copy;
}

int store_rjson_is_code(const char *text, size_t len, int code) {
  json_t *root = json_loadb(text, len, 0, NULL);
  json_t *c = json_object_get(root, "code");
  int yes = json_is_integer(c) && json_integer_value(c) == code;
  json_decref(root);
  return yes;
}

/* ---- ids ------------------------------------------------------------------ */

int store_rjson_id_valid(const char *id) {
  size_t n = id != NULL ? strlen(id) : 0;
  if (n == 0 || n > STORE_RJSON_ID_MAX || strcmp(id, ".") == 0 ||
      strcmp(id, "..") == 0)
    return 0;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    if (*p < 0x20 || *p == 0x7f) return 0;
  return 1;
}

/* The digest of a key: the 20 characters after its last '/', ending the
** key or followed by ','; 0 when there is none. */
static int key_digest(const char *id, char out[META_ID_LEN + 1]) {
  const char *d = strrchr(id, '/');
  if (d == NULL || strlen(++d) < META_ID_LEN ||
      (d[META_ID_LEN] != '\0' && d[META_ID_LEN] != ','))
    return 0;
  memcpy(out, d, META_ID_LEN);
  out[META_ID_LEN] = '\0';
  return meta_id_valid(out);
}

int64_t store_rjson_id_time(const char *id) {
  char d[META_ID_LEN + 1];
  if (meta_id_valid(id)) return meta_id_time(id);
  return key_digest(id, d) ? meta_id_time(d) : -1;
}

void store_rjson_id_name(const char *id, int64_t created_at,
                         char out[META_ID_LEN + 1]) {
  uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a: spread, not secrecy */
  uint32_t t = (uint32_t)(created_at < 0 ? 0 : created_at > UINT32_MAX
                                                   ? UINT32_MAX : created_at);
  uint8_t raw[12];

  if (meta_id_valid(id)) {
    memcpy(out, id, META_ID_LEN + 1);
    return;
  }
  if (key_digest(id, out) && meta_id_time(out) == created_at) return;
  for (const unsigned char *p = (const unsigned char *)id; *p; p++)
    h = (h ^ *p) * 0x100000001b3ULL;
  for (int i = 0; i < 4; i++) raw[i] = (uint8_t)(t >> (24 - 8 * i));
  for (int i = 0; i < 8; i++) raw[4 + i] = (uint8_t)(h >> (56 - 8 * i));
  meta_id_encode(raw, out);
}

/* ---- metas ---------------------------------------------------------------- */

/* Appends s to b %-escaping every byte that is not unreserved, so that
** meta_labels_parse reads back exactly s. */
static void escape_into(char *b, size_t *at, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
        (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL) {
      b[(*at)++] = (char)*p;
    } else {
      b[(*at)++] = '%';
      b[(*at)++] = hex[*p >> 4];
      b[(*at)++] = hex[*p & 15];
    }
  }
}

/* Canonical label string of a [{"key","value"}] array (null = none);
** NULL when malformed or out of memory. */
static char *labels_of(json_t *arr) {
  size_t i, need = 1, at = 0;
  json_t *it;
  char *raw, *canon = NULL;

  if (arr == NULL || json_is_null(arr)) return strdup("");
  if (!json_is_array(arr)) return NULL;
  json_array_foreach(arr, i, it) {
    const char *k = json_string_value(json_object_get(it, "key"));
    const char *v = json_string_value(json_object_get(it, "value"));
    if (k == NULL || v == NULL) return NULL;
    need += 3 * (strlen(k) + strlen(v)) + 2;
  }
  if ((raw = malloc(need)) == NULL) return NULL;
  json_array_foreach(arr, i, it) {
    if (i > 0) raw[at++] = ',';
    escape_into(raw, &at, json_string_value(json_object_get(it, "key")));
    raw[at++] = '=';
    escape_into(raw, &at, json_string_value(json_object_get(it, "value")));
  }
  raw[at] = 0;
  if (meta_labels_parse(raw, &canon, NULL) != 0) canon = NULL;
  free(raw);
  return canon;
}

/* Fills *m from one meta object; -1 (m untouched) when it is not one. */
static int meta_of(json_t *o, store_meta *m) {
  const char *id = json_string_value(json_object_get(o, "id"));
  const char *svc = json_string_value(json_object_get(o, "service"));
  const char *type = json_string_value(json_object_get(o, "type"));
  const char *created = json_string_value(json_object_get(o, "created_at"));
  int t = type != NULL ? meta_type_parse(type) : -1;
  int64_t when = 0;
  char *service, *labels, *key = NULL;

  /* The service becomes a FUSE directory name: one the server should never
  ** have accepted ("a/b", "..", "merge", control characters) is no entry. */
  if (!store_rjson_id_valid(id) || !meta_service_valid(svc) || t < 0)
    return -1;
  if (created != NULL && meta_time_parse(created, (int64_t)time(NULL), &when) != 0)
    return -1;
  if ((labels = labels_of(json_object_get(o, "labels"))) == NULL) return -1;
  if ((service = strdup(svc)) == NULL ||
      (!meta_id_valid(id) && (key = strdup(id)) == NULL)) {
    free(service);
    free(labels);
    return -1;
  }
  memset(m, 0, sizeof *m);
  store_rjson_id_name(id, when, m->id);
  m->key = key;
  m->service = service;
  m->type = (meta_type)t;
  m->labels = labels;
  m->created_at = when;
  m->size = -1;
  return 0;
}

store_rc store_rjson_meta(const char *text, size_t len, store_meta *out,
                          char *err) {
  json_t *body = load_body(text, len, err);
  store_rc rc = STORE_IO;

  if (body == NULL) return STORE_IO;
  if (meta_of(body, out) == 0)
    rc = STORE_OK;
  else
    store_seterr(err, STORE_IO, "remote server sent an invalid profile meta");
  json_decref(body);
  return rc;
}

store_rc store_rjson_meta_list(const char *text, size_t len,
                               store_meta_list *out, char *err) {
  json_t *body = load_body(text, len, err), *it;
  store_meta_list l = { 0 };
  size_t i;

  if (body == NULL) return STORE_IO;
  if (!json_is_array(body)) {
    json_decref(body);
    return store_seterr(err, STORE_IO, "remote server sent no list of profiles");
  }
  if (json_array_size(body) > 0 &&
      (l.v = calloc(json_array_size(body), sizeof *l.v)) == NULL) {
    json_decref(body);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  json_array_foreach(body, i, it) {
    if (meta_of(it, &l.v[l.n]) == 0) l.n++;
  }
  json_decref(body);
  *out = l;
  return STORE_OK;
}

store_rc store_rjson_names(const char *text, size_t len, char ***names,
                           size_t *n, char *err) {
  json_t *body = load_body(text, len, err), *it;
  char **v = NULL;
  size_t i, k = 0;
  store_rc rc = STORE_OK;

  if (body == NULL) return STORE_IO;
  if (!json_is_array(body)) {
    rc = store_seterr(err, STORE_IO, "remote server sent no list of names");
    goto out;
  }
  if (json_array_size(body) > 0 &&
      (v = calloc(json_array_size(body), sizeof *v)) == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  json_array_foreach(body, i, it) {
    if (!json_is_string(it)) {
      rc = store_seterr(err, STORE_IO, "remote server sent a name that is no string");
      goto out;
    }
    /* names become FUSE directory names: skip what cannot be one */
    if (!meta_service_valid(json_string_value(it))) continue;
    if ((v[k] = strdup(json_string_value(it))) == NULL) {
      rc = store_seterr(err, STORE_NOMEM, "out of memory");
      goto out;
    }
    k++;
  }
  *names = v;
  *n = k;
  v = NULL;
out:
  if (v != NULL) store_names_free(v, k);
  json_decref(body);
  return rc;
}
