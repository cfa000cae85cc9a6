/*
** json.c — the JSON side of the profefe API: the {"code":N,"body":...} and
** {"code":N,"error":"..."} envelopes, and the JSON form of a profile's
** metadata.  jansson builds and serializes; nothing here writes JSON by hand.
**
** Replies end with a newline, as Go's json.Encoder (profefe) writes them.
** Strings that are not valid UTF-8 (a service name or a query echoed in an
** error) get U+FFFD for each bad byte, as Go's encoder does, instead of
** making the reply fail.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define JSON_CT "application/json"

/* The answer when even building an error fails. */
static const char oom_reply[] = "{\"code\":500,\"error\":\"out of memory\"}\n";

void httpd_reply_clear(httpd_reply *r)
{
  if (r == NULL)
    return;
  free(r->body);
  free(r->filename);
  memset(r, 0, sizeof *r);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
  size_t len, i;
  uint32_t cp;

  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf)
    len = 2, cp = s[0] & 0x1f;
  else if (s[0] >= 0xe0 && s[0] <= 0xef)
    len = 3, cp = s[0] & 0x0f;
  else if (s[0] >= 0xf0 && s[0] <= 0xf4)
    len = 4, cp = s[0] & 0x07;
  else
    return 0;
  if (len > n)
    return 0;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  /* overlong forms, surrogates, beyond U+10FFFF */
  if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
      (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
    return 0;
  return len;
}

int httpd_utf8_valid(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k;

  while (i < n) {
    if (p[i] == 0 || (k = utf8_seq(p + i, n - i)) == 0)
      return 0;
    i += k;
  }
  return 1;
}

json_t *httpd_json_string(const char *s)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t n = strlen(s), i = 0, o = 0, k;
  json_t *j;
  char *buf;

  j = json_stringn(s, n);
  if (j != NULL)
    return j;
  buf = malloc(3 * n + 1); /* every byte may become 3 */
  if (buf == NULL)
    return NULL;
  while (i < n) {
    k = utf8_seq(p + i, n - i);
    if (k == 0) {
      memcpy(buf + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    } else {
      memcpy(buf + o, p + i, k);
      o += k;
      i += k;
    }
  }
  j = json_stringn(buf, o);
  free(buf);
  return j;
}

/* Serializes doc (reference stolen) as out's body, with status. */
static void reply_doc(httpd_reply *out, unsigned status, json_t *doc)
{
  char *text = NULL, *body;
  size_t n;

  if (doc != NULL)
    text = json_dumps(doc, JSON_COMPACT);
  json_decref(doc);
  httpd_reply_clear(out);
  out->content_type = JSON_CT;
  if (text == NULL) {
    out->status = 500;
    out->body = strdup(oom_reply);
    out->len = out->body ? strlen(out->body) : 0;
    return;
  }
  n = strlen(text);
  body = realloc(text, n + 2);
  if (body == NULL) {
    out->status = status;
    out->body = text;
    out->len = n;
    return;
  }
  body[n] = '\n';
  body[n + 1] = '\0';
  out->status = status;
  out->body = body;
  out->len = n + 1;
}

void httpd_reply_json(httpd_reply *out, unsigned status, json_t *body)
{
  json_t *doc = NULL;

  if (body != NULL && (doc = json_object()) == NULL)
    json_decref(body);
  else if (body != NULL &&
           (json_object_set_new(doc, "code", json_integer(status)) ||
            json_object_set_new(doc, "body", body))) {
    json_decref(doc);
    doc = NULL;
  }
  if (doc == NULL)
    status = 500;
  reply_doc(out, status, doc);
}

void httpd_reply_verror(httpd_reply *out, unsigned status, const char *fmt,
                        va_list ap)
{
  char msg[1024];
  json_t *doc;

  vsnprintf(msg, sizeof msg, fmt, ap);
  doc = json_object();
  if (doc != NULL &&
      (json_object_set_new(doc, "code", json_integer(status)) ||
       json_object_set_new(doc, "error", httpd_json_string(msg)))) {
    json_decref(doc);
    doc = NULL;
  }
  reply_doc(out, status, doc);
}

void httpd_reply_error(httpd_reply *out, unsigned status, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  httpd_reply_verror(out, status, fmt, ap);
  va_end(ap);
}

void httpd_reply_bytes(httpd_reply *out, void *data, size_t len,
                       const char *filename)
{
  httpd_reply_clear(out);
  out->status = 200;
  out->content_type = "application/octet-stream";
  out->body = data;
  out->len = len;
  if (filename != NULL && (out->filename = strndup(filename, 128)) == NULL) {
    httpd_reply_error(out, 500, "out of memory");
    return;
  }
  /* An id may be an S3 key ('/', '"', spaces, UTF-8): the name must stay
  ** one quoted header token and a plain file name. */
  for (char *p = out->filename; p != NULL && *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
          (*p >= '0' && *p <= '9') || strchr("._,=+-", *p) != NULL))
      *p = '_';
}

/* meta_labels_foreach callback: appends {"key","value"} to the array. */
static int add_label(const char *key, const char *value, void *arg)
{
  json_t *arr = arg, *o = json_object();

  if (o == NULL || json_object_set_new(o, "key", httpd_json_string(key)) ||
      json_object_set_new(o, "value", httpd_json_string(value))) {
    json_decref(o);
    return -1;
  }
  return json_array_append_new(arr, o) ? -1 : 0;
}

json_t *httpd_json_meta(const store_meta *m)
{
  static const char *const keys[] = {"id", "type", "service", "labels",
                                     "created_at"};
  char when[META_TIME_MAX];
  json_t *o = json_object(), *labels = json_array(), *vals[5];
  size_t i;
  int bad = 0;

  if (labels != NULL &&
      meta_labels_foreach(m->labels ? m->labels : "", add_label, labels)) {
    json_decref(labels);
    labels = NULL;
  }
  meta_time_format(m->created_at, when);
  vals[0] = httpd_json_string(store_meta_id(m));
  vals[1] = httpd_json_string(meta_type_name(m->type));
  vals[2] = httpd_json_string(m->service);
  vals[3] = labels;
  vals[4] = httpd_json_string(when);
  /* json_object_set takes its own reference: every value is released
  ** below whatever failed, and the keys keep profefe's order */
  for (i = 0; i < 5; i++)
    if (o == NULL || vals[i] == NULL || json_object_set(o, keys[i], vals[i]))
      bad = 1;
  for (i = 0; i < 5; i++)
    json_decref(vals[i]);
  if (bad) {
    json_decref(o);
    return NULL;
  }
  return o;
}
