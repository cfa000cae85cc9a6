/*
** web.c — the web page at "/" (README, "The web page"): serves the files
** of httpd/web/, embedded in the binary at build time (web/embed.py), so
** the page works air-gapped and matches the binary's API.  "/" is
** index.html; "/ui/NAME" is the file NAME.  The page itself only calls
** the API of this server (/api/0/...), from the browser.
**
** The table is read-only: requests share it without locking.
*/
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define UI_PREFIX "/ui/"

/* The embedded file of a request path, or NULL. */
static const httpd_web_file *web_find(const char *path)
{
  const char *name;
  size_t i;

  if (strcmp(path, "/") == 0)
    name = "index.html";
  else if (strncmp(path, UI_PREFIX, strlen(UI_PREFIX)) == 0)
    name = path + strlen(UI_PREFIX);
  else
    return NULL;
  for (i = 0; i < httpd_web_nfiles; i++)
    if (strcmp(httpd_web_files[i].name, name) == 0)
      return &httpd_web_files[i];
  return NULL;
}

void httpd_web_get(httpd_req *r, httpd_reply *out)
{
  const httpd_web_file *f = web_find(r->path);
  char *copy;

  if (f == NULL) {
    httpd_reply_error(out, 404, "unknown path \"%s\"", r->path);
    return;
  }
  /* the reply owns a malloc'd body (libmicrohttpd frees it) */
  if ((copy = malloc(f->len)) == NULL) {
    httpd_reply_error(out, 500, "out of memory");
    return;
  }
  memcpy(copy, f->data, f->len);
  httpd_reply_clear(out);
  out->status = 200;
  out->content_type = f->content_type;
  out->body = copy;
  out->len = f->len;
}
