/*
** config.c — the scraper's targets file (format in scrape.h) and the
** parsing of type lists shared with the command line.
**
** A file is read whole and line by line; the first bad line fails the load
** with "file:line: reason", since a scraper quietly skipping a target would
** leave a hole in the data that nobody notices until it is needed.
*/
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scrape.h"

int scrape_types_parse(const char *list, unsigned *out) {
  unsigned set = 0;
  char *copy = strdup(list), *save = NULL, *tok;
  int rc = 0;

  if (copy == NULL) return -1;
  for (tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
    int t = meta_type_parse(tok);
    /* Go's /debug/pprof has no wall-clock endpoint */
    if (t < 0 || t == META_WALL) {
      rc = -1;
      break;
    }
    set |= 1u << t;
  }
  free(copy);
  if (rc != 0 || set == 0) return -1;
  *out = set;
  return 0;
}

void scrape_targets_free(scrape_target *t, size_t n) {
  if (t == NULL) return;
  for (size_t i = 0; i < n; i++) {
    free(t[i].url);
    free(t[i].service);
    free(t[i].labels);
  }
  free(t);
}

/* "10", "10s", "1m": whole seconds > 0. */
static int parse_seconds(const char *s, int64_t *out) {
  char *end;
  long long v;

  errno = 0;
  v = strtoll(s, &end, 10);
  if (*end == 0 && errno == 0 && v > 0 && end != s) {
    *out = v;
    return 0;
  }
  return meta_duration_parse(s, out);
}

/* Parses one key=value word into t; NULL or the reason it is bad. */
static const char *parse_word(char *w, scrape_target *t) {
  char *eq = strchr(w, '='), *v;

  if (eq == NULL) return "expected key=value";
  *eq = 0;
  v = eq + 1;
  if (strcmp(w, "service") == 0) {
    if (!meta_service_valid(v)) return "invalid service name";
    free(t->service);
    if ((t->service = strdup(v)) == NULL) return "out of memory";
  } else if (strcmp(w, "labels") == 0) {
    char *canon = NULL;
    if (meta_labels_parse(v, &canon, NULL) != 0) return "invalid labels (want k=v,k=v)";
    free(t->labels);
    t->labels = canon;
  } else if (strcmp(w, "every") == 0) {
    if (parse_seconds(v, &t->every_sec) != 0) return "invalid every (e.g. 60s, 5m)";
  } else if (strcmp(w, "seconds") == 0) {
    if (parse_seconds(v, &t->cpu_seconds) != 0) return "invalid seconds (e.g. 10)";
  } else if (strcmp(w, "types") == 0) {
    if (scrape_types_parse(v, &t->types) != 0)
      return "invalid types (e.g. cpu,heap,goroutine,mutex,block)";
  } else {
    return "unknown key (want service, labels, every, types, seconds)";
  }
  return NULL;
}

/* Parses one non-empty line into *t (zeroed by the caller). */
static const char *parse_line(char *line, scrape_target *t) {
  char *save = NULL, *w = strtok_r(line, " \t\r", &save);
  const char *why;
  size_t n;

  if (strncmp(w, "http://", 7) != 0 && strncmp(w, "https://", 8) != 0)
    return "the line must start with the target's http:// URL";
  if ((t->url = strdup(w)) == NULL) return "out of memory";
  n = strlen(t->url);
  while (n > 0 && t->url[n - 1] == '/') t->url[--n] = 0;
  if (n > 12 && strcmp(t->url + n - 12, "/debug/pprof") == 0) t->url[n - 12] = 0;
  while ((w = strtok_r(NULL, " \t\r", &save)) != NULL)
    if ((why = parse_word(w, t)) != NULL) return why;
  if (t->service == NULL) return "missing service=NAME";
  if (t->labels == NULL && (t->labels = strdup("")) == NULL) return "out of memory";
  return NULL;
}

/* Cuts a comment: '#' at the start or after blank space. */
static void strip_comment(char *line) {
  for (char *p = line; *p; p++) {
    if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) {
      *p = 0;
      return;
    }
  }
}

static int blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return 0;
  return 1;
}

int scrape_config_load(const char *path, scrape_target **out, size_t *n,
                       char err[SCRAPE_ERRMAX]) {
  FILE *f = fopen(path, "r");
  scrape_target *v = NULL, *grown;
  size_t nv = 0, cap = 0, lineno = 0, linecap = 0;
  char *line = NULL;
  const char *why;
  int rc = -1;

  if (f == NULL) {
    snprintf(err, SCRAPE_ERRMAX, "%s: %s", path, strerror(errno));
    return -1;
  }
  while (getline(&line, &linecap, f) >= 0) {
    lineno++;
    line[strcspn(line, "\n")] = 0;
    strip_comment(line);
    if (blank(line)) continue;
    if (nv == cap) {
      cap = cap ? cap * 2 : 4;
      if ((grown = realloc(v, cap * sizeof *v)) == NULL) {
        snprintf(err, SCRAPE_ERRMAX, "%s: out of memory", path);
        goto out;
      }
      v = grown;
    }
    memset(&v[nv], 0, sizeof v[nv]);
    nv++; /* counted now so that a half-parsed target is freed */
    if ((why = parse_line(line, &v[nv - 1])) != NULL) {
      snprintf(err, SCRAPE_ERRMAX, "%s:%zu: %s", path, lineno, why);
      goto out;
    }
  }
  if (ferror(f)) {
    snprintf(err, SCRAPE_ERRMAX, "%s: %s", path, strerror(errno));
    goto out;
  }
  if (nv == 0) {
    snprintf(err, SCRAPE_ERRMAX, "%s: no targets", path);
    goto out;
  }
  *out = v;
  *n = nv;
  v = NULL;
  rc = 0;
out:
  scrape_targets_free(v, nv);
  free(line);
  fclose(f);
  return rc;
}
