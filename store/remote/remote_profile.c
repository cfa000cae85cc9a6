/*
** remote_profile.c — the remote backend's operations on one profile by id:
** get, stat, ingest and delete, and the cache of what the server said about
** each id (see remote_int.h for the state and invariants).
**
** The protocol can fetch a profile's bytes by id but not its metadata: that
** comes from lists (every find remembers the metas it saw) and from our
** own ingests.  For an id never seen in a list (a path typed straight after
** mounting), the services are searched around the second the id was made;
** a profile whose created_at is more than a day away from that is then
** not found until its directory has been listed.
**
** Ids are whatever the server answers (remote_json.h): on an S3-backed
** node the object key.  The FUSE view names a profile by a 20-character
** name instead, so every meta learned of a long id also maps
** (service, type, name) to the id ("D" entries of the meta cache), and
** stat_named turns a FUSE name back into the id, listing the name's second
** when it is not known yet.
*/
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "remote_int.h"
#include "remote_json.h"

/* How far around an id's creation second to look for its metadata. */
#define META_SEARCH_SLACK 86400

/* ---- metadata cache ------------------------------------------------------ */

/* Cache keys: "P <id>" (bytes), "I <id>" (meta), "D <service>\n<type>\n<name>"
** (the id of a FUSE name); malloc'd, NULL when out of memory. */
char *store_remote_bytes_key(const char *id) {
  return store_remote_strfmt("P %s", id);
}

static char *name_key(const char *service, meta_type type, const char *name) {
  return store_remote_strfmt("D %s\n%d\n%s", service, (int)type, name);
}

/* A meta is kept under "I <id>" as "<created_at> <size> <type> <name>
** <labels>\n<service>": the canonical labels have no space or newline, a
** service no newline. */
void store_remote_meta_put(store_remote *r, const store_meta *m) {
  const char *id = store_meta_id(m);
  char *s = store_remote_strfmt("%" PRId64 " %" PRId64 " %d %s %s\n%s",
                                m->created_at, m->size, (int)m->type, m->id,
                                m->labels, m->service);
  char *k = store_remote_strfmt("I %s", id), *d = NULL;
  if (s != NULL && k != NULL) store_rcache_put(r->metas, k, 0, s, strlen(s));
  if (m->key != NULL && (d = name_key(m->service, m->type, m->id)) != NULL)
    store_rcache_put(r->metas, d, 0, id, strlen(id));
  free(s);
  free(k);
  free(d);
}

/* 1 and *m (caller clears) when id's metadata is known; else 0. */
int store_remote_meta_get(store_remote *r, const char *id, store_meta *m) {
  void *data;
  size_t len;
  char *s, *end, *nl, *sp, *k = store_remote_strfmt("I %s", id);
  long long created, size;
  long type;
  int ok = 0, hit = k != NULL && store_rcache_get(r->metas, k, 0, &data, &len);

  free(k);
  if (!hit) return 0;
  s = data;
  created = strtoll(s, &end, 10);
  size = strtoll(end, &end, 10);
  type = strtol(end, &end, 10);
  nl = strchr(end, '\n');
  sp = end + 1 + META_ID_LEN;
  if (*end == ' ' && nl != NULL && nl > sp && *sp == ' ' && type >= 0 &&
      type < META_NTYPES) {
    memset(m, 0, sizeof *m);
    memcpy(m->id, end + 1, META_ID_LEN);
    m->created_at = created;
    m->size = size;
    m->type = (meta_type)type;
    m->labels = strndup(sp + 1, (size_t)(nl - sp - 1));
    m->service = strdup(nl + 1);
    m->key = meta_id_valid(id) ? NULL : strdup(id);
    ok = m->labels != NULL && m->service != NULL &&
         (m->key != NULL || meta_id_valid(id)) && meta_id_valid(m->id);
    if (!ok) store_meta_clear(m);
  }
  free(data);
  return ok;
}

/* The id (malloc'd) that the FUSE name `name` of service/type stands for,
** when a list showed it; else NULL. */
static char *name_lookup(store_remote *r, const char *service, meta_type type,
                         const char *name) {
  char *k = name_key(service, type, name);
  void *data = NULL;
  size_t len;
  int hit = k != NULL && store_rcache_get(r->metas, k, 0, &data, &len);
  free(k);
  return hit ? data : NULL;
}

/* Records a size learned for id, keeping what else is known. */
static void meta_set_size(store_remote *r, const char *id, int64_t size) {
  store_meta m;
  if (!store_remote_meta_get(r, id, &m)) return;
  if (m.size != size) {
    m.size = size;
    store_remote_meta_put(r, &m);
  }
  store_meta_clear(&m);
}

/* ---- single profiles ----------------------------------------------------- */

/* Looks for id's metadata when the cache does not have it: the protocol
** cannot ask by id, so search each service and type around the second the
** id was made.  Every meta seen on the way is cached, so a directory's
** worth of misses costs one search.  STORE_NOTFOUND when not found. */
static store_rc meta_search(store_remote *r, const char *id, store_meta *m,
                            char *err) {
  char **svcs = NULL;
  size_t nsvcs = 0;
  int64_t t = store_rjson_id_time(id);
  store_rc rc;

  if ((rc = store_remote_services(r, &svcs, &nsvcs, err)) != STORE_OK) return rc;
  rc = STORE_NOTFOUND;
  for (size_t i = 0; i < nsvcs && rc == STORE_NOTFOUND; i++) {
    for (int ty = 0; ty < META_NTYPES && rc == STORE_NOTFOUND; ty++) {
      /* an id that does not say when it was made: all of time */
      store_query q = { .service = svcs[i], .type = (meta_type)ty,
                        .from = t < 0 ? 0 : t - META_SEARCH_SLACK,
                        .to = t < 0 ? INT32_MAX : t + META_SEARCH_SLACK };
      store_meta_list l = { 0 };
      store_rc frc = store_remote_find(r, &q, &l, err);
      store_meta_list_free(&l);
      if (frc == STORE_IO) {
        rc = frc;
      } else if (store_remote_meta_get(r, id, m)) {
        rc = STORE_OK;
      }
    }
  }
  store_names_free(svcs, nsvcs);
  if (rc == STORE_NOTFOUND)
    store_seterr(err, rc, "profile %.200s not found on the remote server", id);
  return rc;
}

/* The URL of id's profile (id path-escaped), malloc'd or NULL. */
static char *profile_url(store_remote *r, const char *id) {
  char *e = store_rhttp_escape(id), *url = NULL;
  if (e != NULL) url = store_remote_strfmt("%s/api/0/profiles/%s", r->base, e);
  free(e);
  return url;
}

/* The stored bytes of id, from the cache or the server. */
static store_rc fetch_bytes(store_remote *r, const char *id,
                            store_rhttp_resp *resp, char *err) {
  char *url = profile_url(r, id), *key = store_remote_bytes_key(id);
  store_rc rc;

  if (url == NULL || key == NULL) {
    free(url);
    free(key);
    return store_seterr(err, STORE_NOMEM, "out of memory");
  }
  rc = store_remote_cached_get(r, key, 0, url, resp, err);
  if (rc == STORE_OK && resp->status != 200) {
    rc = store_remote_status_rc("get", resp, STORE_INVALID, err);
    store_rhttp_resp_clear(resp);
  }
  free(url);
  free(key);
  if (rc == STORE_OK) meta_set_size(r, id, (int64_t)resp->len);
  return rc;
}

/* Asks the server (not the cache) whether id exists: HEAD when it can,
** else GET.  Sets *size to its length. */
static store_rc probe(store_remote *r, const char *id, int64_t *size, char *err) {
  char *url = profile_url(r, id), *key = NULL;
  store_rhttp_resp resp = { 0 };
  int use_head;
  store_rc rc;

  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  pthread_mutex_lock(&r->mu);
  use_head = !r->head_unsupported;
  pthread_mutex_unlock(&r->mu);
  if (use_head) {
    rc = store_rhttp_request(r->http, "HEAD", url, NULL, 0, 0, &resp, err);
    if (rc != STORE_OK) goto out;
    if (resp.status == 200 && resp.content_length >= 0) {
      *size = resp.content_length;
      goto out;
    }
    if (resp.status == 404) {
      rc = store_seterr(err, STORE_NOTFOUND, "profile %.200s not found", id);
      goto out;
    }
    /* A plain profefe answers HEAD with 405 (or without a length): from
    ** now on just GET. */
    pthread_mutex_lock(&r->mu);
    r->head_unsupported = 1;
    pthread_mutex_unlock(&r->mu);
    store_rhttp_resp_clear(&resp);
  }
  rc = store_rhttp_request(r->http, "GET", url, NULL, 0, r->answer_max, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200) {
    if ((key = store_remote_bytes_key(id)) != NULL)
      store_rcache_put(r->bytes, key, 0, resp.body, resp.len);
    *size = (int64_t)resp.len;
  } else {
    rc = store_remote_status_rc("get", &resp, STORE_INVALID, err);
  }
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  free(key);
  return rc;
}

store_rc store_remote_get(void *impl, const char *id, store_meta *meta,
                           void **data, size_t *len, char *err) {
  store_remote *r = impl;
  store_rhttp_resp resp = { 0 };
  store_meta m;
  store_rc rc;

  if ((rc = fetch_bytes(r, id, &resp, err)) != STORE_OK) return rc;
  if (meta != NULL) {
    if (!store_remote_meta_get(r, id, &m) &&
        (rc = meta_search(r, id, &m, err)) != STORE_OK) {
      store_rhttp_resp_clear(&resp);
      return rc;
    }
    m.size = (int64_t)resp.len;
    *meta = m;
  }
  *data = resp.body;
  *len = resp.len;
  return STORE_OK;
}

store_rc store_remote_stat(void *impl, const char *id, store_meta *meta,
                            char *err) {
  store_remote *r = impl;
  char *key;
  store_meta m;
  void *data;
  size_t len;
  store_rc rc;

  if (!store_remote_meta_get(r, id, &m) &&
      (rc = meta_search(r, id, &m, err)) != STORE_OK)
    return rc;
  if (m.size < 0) {
    key = store_remote_bytes_key(id);
    if (key != NULL && store_rcache_get(r->bytes, key, 0, &data, &len)) {
      m.size = (int64_t)len;
      free(data);
    } else if ((rc = probe(r, id, &m.size, err)) != STORE_OK) {
      free(key);
      store_meta_clear(&m);
      return rc;
    }
    free(key);
    meta_set_size(r, id, m.size);
  }
  *meta = m;
  return STORE_OK;
}

/* A FUSE name is the id itself on servers with 20-character ids; on others
** (S3 keys) it maps to the id through what lists showed, and a name not
** seen yet is looked for in a list of its second (the name begins with
** created_at). */
store_rc store_remote_stat_named(void *impl, const char *service,
                                 meta_type type, const char *name,
                                 store_meta *meta, char *err) {
  store_remote *r = impl;
  store_meta m;
  char *id;
  store_rc rc;

  if (store_remote_meta_get(r, name, &m)) {
    store_meta_clear(&m);
    return store_remote_stat(r, name, meta, err);
  }
  if ((id = name_lookup(r, service, type, name)) == NULL) {
    store_query q = { .service = service, .type = type,
                      .from = meta_id_time(name), .to = meta_id_time(name) };
    store_meta_list l = { 0 };
    rc = store_remote_find(r, &q, &l, err);
    store_meta_list_free(&l);
    if (rc != STORE_OK) return rc;
    id = name_lookup(r, service, type, name);
  }
  if (id == NULL) return store_remote_stat(r, name, meta, err);
  rc = store_remote_stat(r, id, meta, err);
  free(id);
  return rc;
}

/* ---- writes -------------------------------------------------------------- */

store_rc store_remote_ingest(void *impl, const char *service, meta_type type,
                              const char *labels, int64_t created_at_hint,
                              const void *data, size_t len, store_meta *out,
                              char *err) {
  store_remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char *svc = NULL, *lab = NULL, *url = NULL, created[64] = "";
  char *key = NULL;
  store_meta m;
  store_rc rc;

  if (r->read_only) return store_seterr(err, STORE_READONLY, "read-only store");
  if ((svc = store_rhttp_escape(service)) == NULL ||
      (labels != NULL && labels[0] != 0 &&
       (lab = store_rhttp_escape(labels)) == NULL)) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  if (created_at_hint > 0) {
    memcpy(created, "&created_at=", 12);
    store_remote_time_param(created_at_hint, created + 12);
  }
  url = store_remote_strfmt("%s/api/0/profiles?service=%s&type=%s%s%s%s", r->base, svc,
               meta_type_name(type), lab ? "&labels=" : "", lab ? lab : "", created);
  if (url == NULL) {
    rc = store_seterr(err, STORE_NOMEM, "out of memory");
    goto out;
  }
  rc = store_rhttp_request(r->http, "POST", url, data, len, 1 << 20, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status != 200) {
    rc = store_remote_status_rc("ingest", &resp, STORE_BADPROFILE, err);
    goto out;
  }
  if ((rc = store_rjson_meta(resp.body, resp.len, &m, err)) != STORE_OK) goto out;
  m.size = (int64_t)len;
  /* profefs says whether it stored the profile; profefe does not */
  if (strcmp(resp.ingest, "new") == 0) m.ingested = STORE_INGESTED_NEW;
  else if (strcmp(resp.ingest, "existing") == 0) m.ingested = STORE_INGESTED_EXISTING;
  store_remote_meta_put(r, &m);
  if ((key = store_remote_bytes_key(store_meta_id(&m))) != NULL)
    store_rcache_put(r->bytes, key, 0, data, len);
  store_remote_count_write(r, 1);
  if (out != NULL)
    *out = m;
  else
    store_meta_clear(&m);
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  free(svc);
  free(lab);
  free(key);
  return rc;
}

static void forget(store_remote *r, const char *id) {
  char *b = store_remote_bytes_key(id), *i = store_remote_strfmt("I %s", id);
  char *d = NULL;
  store_meta m;
  if (store_remote_meta_get(r, id, &m)) {
    if (m.key != NULL) d = name_key(m.service, m.type, m.id);
    store_meta_clear(&m);
  }
  if (b != NULL) store_rcache_del(r->bytes, b);
  if (i != NULL) store_rcache_del(r->metas, i);
  if (d != NULL) store_rcache_del(r->metas, d);
  free(b);
  free(i);
  free(d);
}

store_rc store_remote_del(void *impl, const char *id, char *err) {
  store_remote *r = impl;
  store_rhttp_resp resp = { 0 };
  char *url = profile_url(r, id);
  int64_t size;
  store_rc rc;

  if (r->read_only) return store_seterr(err, STORE_READONLY, "read-only store");
  if (url == NULL) return store_seterr(err, STORE_NOMEM, "out of memory");
  rc = store_rhttp_request(r->http, "DELETE", url, NULL, 0, 1 << 20, &resp, err);
  if (rc != STORE_OK) goto out;
  if (resp.status == 200 && store_rjson_is_code(resp.body, resp.len, 200)) {
    forget(r, id);
    store_remote_count_write(r, 0);
  } else if (resp.status == 200 || resp.status == 404 || resp.status == 405 ||
             resp.status == 501) {
    /* A plain profefe has no DELETE: it serves DELETE like GET (200 with
    ** the profile's bytes, or 404 for an unknown id) or refuses it.  Only
    ** a JSON {"code":200} means deleted; otherwise tell "cannot delete"
    ** from a real unknown id by asking for the profile. */
    rc = probe(r, id, &size, err);
    if (rc == STORE_OK)
      rc = store_seterr(err, STORE_UNSUPPORTED,
                        "the remote server does not support deleting profiles");
    if (rc == STORE_NOTFOUND) forget(r, id);
  } else {
    rc = store_remote_status_rc("delete", &resp, STORE_INVALID, err);
  }
out:
  store_rhttp_resp_clear(&resp);
  free(url);
  return rc;
}
