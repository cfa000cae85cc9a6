/*
** s3_xml.c — the XML of S3 answers, read with expat: ListObjectsV2 pages
** (keys, sizes, common prefixes, continuation) and error bodies (Code,
** Message).  Element names are matched without their namespace.
*/
#include <stdlib.h>
#include <string.h>

#include <expat.h>

#include "s3_int.h"

typedef struct xstate {
  s3_list *l;
  char path[4][32];   /* the last elements opened, innermost last */
  int depth;
  s3_buf text;        /* character data of the current element */
  int64_t size;
  char *key;
  int failed;
  /* error answers */
  char *code, *msg;
  size_t code_cap, msg_cap;
} xstate;

static const char *local_name(const char *n) {
  const char *c = strrchr(n, ':');
  return c ? c + 1 : n;
}

static void on_start(void *ud, const char *name, const char **attrs) {
  xstate *x = ud;
  (void)attrs;
  if (x->depth < 4) {
    strncpy(x->path[x->depth], local_name(name), sizeof x->path[0] - 1);
    x->path[x->depth][sizeof x->path[0] - 1] = '\0';
  }
  x->depth++;
  x->text.len = 0;
  if (x->text.p != NULL) x->text.p[0] = '\0';
}

static void on_text(void *ud, const char *s, int len) {
  xstate *x = ud;
  if (store_s3_buf_add(&x->text, s, (size_t)len) != 0) x->failed = 1;
}

static int push(char ***v, size_t *n, char *s) {
  char **nv = realloc(*v, (*n + 1) * sizeof *nv);
  if (nv == NULL) return -1;
  nv[(*n)++] = s;
  *v = nv;
  return 0;
}

static void copy_to(char *dst, size_t cap, const char *s) {
  if (dst == NULL || cap == 0) return;
  strncpy(dst, s, cap - 1);
  dst[cap - 1] = '\0';
}

static void on_end(void *ud, const char *name) {
  xstate *x = ud;
  const char *n = local_name(name);
  const char *t = x->text.p ? x->text.p : "";
  const char *parent = x->depth >= 2 && x->depth <= 5 ? x->path[x->depth - 2] : "";
  x->depth--;
  if (x->failed) return;
  if (x->l == NULL) { /* an error body */
    if (strcmp(parent, "Error") == 0 && strcmp(n, "Code") == 0)
      copy_to(x->code, x->code_cap, t);
    else if (strcmp(parent, "Error") == 0 && strcmp(n, "Message") == 0)
      copy_to(x->msg, x->msg_cap, t);
    return;
  }
  if (strcmp(parent, "Contents") == 0) {
    if (strcmp(n, "Key") == 0) {
      free(x->key);
      if ((x->key = strdup(t)) == NULL) x->failed = 1;
    } else if (strcmp(n, "Size") == 0) {
      x->size = strtoll(t, NULL, 10);
    }
  } else if (strcmp(n, "Contents") == 0) {
    s3_list *l = x->l;
    int64_t *ns;
    if (x->key == NULL) return;
    if ((ns = realloc(l->sizes, (l->nkeys + 1) * sizeof *ns)) == NULL) {
      x->failed = 1;
      return;
    }
    l->sizes = ns;
    l->sizes[l->nkeys] = x->size;
    if (push(&l->keys, &l->nkeys, x->key) != 0) {
      x->failed = 1;
      return;
    }
    x->key = NULL;
    x->size = -1;
  } else if (strcmp(parent, "CommonPrefixes") == 0 && strcmp(n, "Prefix") == 0) {
    char *p = strdup(t);
    if (p == NULL || push(&x->l->prefixes, &x->l->nprefixes, p) != 0) {
      free(p);
      x->failed = 1;
    }
  } else if (strcmp(parent, "ListBucketResult") == 0) {
    if (strcmp(n, "IsTruncated") == 0) {
      x->l->truncated = strcmp(t, "true") == 0;
    } else if (strcmp(n, "NextContinuationToken") == 0) {
      free(x->l->next_token);
      if ((x->l->next_token = strdup(t)) == NULL) x->failed = 1;
    }
  }
}

static int parse(const char *xml, size_t len, xstate *x) {
  XML_Parser p = XML_ParserCreateNS(NULL, ':');
  int ok;
  if (p == NULL) return -1;
  XML_SetUserData(p, x);
  XML_SetElementHandler(p, on_start, on_end);
  XML_SetCharacterDataHandler(p, on_text);
  ok = XML_Parse(p, xml, (int)len, 1) == XML_STATUS_OK && !x->failed;
  XML_ParserFree(p);
  free(x->text.p);
  free(x->key);
  return ok ? 0 : -1;
}

void store_s3_list_clear(s3_list *l) {
  if (l == NULL) return;
  for (size_t i = 0; i < l->nkeys; i++) free(l->keys[i]);
  for (size_t i = 0; i < l->nprefixes; i++) free(l->prefixes[i]);
  free(l->keys);
  free(l->sizes);
  free(l->prefixes);
  free(l->next_token);
  memset(l, 0, sizeof *l);
}

int store_s3_xml_list(const char *xml, size_t len, s3_list *l) {
  xstate x = {.l = l, .size = -1};
  l->truncated = 0;
  free(l->next_token);
  l->next_token = NULL;
  return parse(xml, len, &x);
}

void store_s3_xml_error(const char *xml, size_t len, char *code,
                        size_t code_cap, char *msg, size_t msg_cap) {
  xstate x = {.code = code, .msg = msg, .code_cap = code_cap, .msg_cap = msg_cap};
  copy_to(code, code_cap, "");
  copy_to(msg, msg_cap, "");
  if (xml != NULL && len > 0) (void)parse(xml, len, &x);
}
