/*
** ingest.h — what the ingest doors of other agents (Pyroscope's /ingest
** and Connect push; any later converter, such as OTLP profiles) share
** before a profile reaches store_ingest: the mapping of their profile-type
** names to profefs types, the label set built from their key/value pairs,
** Pyroscope's application names (`app.cpu{k=v}`), and the conversion of
** folded or lines stacks into a real pprof.
**
** Nothing here does I/O or keeps state between calls; the store does the
** validation, the budget and idempotency as for every other ingest.
**
** The type table (README.md, "Types of other agents"):
**   cpu        cpu, process_cpu, itimer
**   wall       wall
**   heap       memory, heap, alloc_objects, alloc_space, inuse_objects,
**              inuse_space, alloc_in_new_tlab_objects, alloc_in_new_tlab_bytes,
**              alloc_outside_tlab_objects, alloc_outside_tlab_bytes
**   mutex      mutex, mutex_count, mutex_duration, lock_count, lock_duration
**   block      block, block_count, block_duration
**   goroutine  goroutine, goroutines
**   threadcreate threadcreate
**   other      anything else, its name kept as the label sample_type=NAME
*/
#ifndef PROFEFS_INGEST_H
#define PROFEFS_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"
#include "meta.h"

#define INGEST_ERRMAX 256

/* The label key that keeps the name of a type that maps to none. */
#define INGEST_OTHER_KEY "sample_type"

/* ---- types ------------------------------------------------------------------- */

/* The type of a profile-type name of the table above (exact, lower case),
** or -1 when it names none (the caller then uses META_OTHER and keeps the
** name as a label). */
int ingest_type_of_name(const char *name);

/* A display name that Pyroscope's sample_type_config gives a sample type:
** {"contentions": {"display-name": "mutex_count"}} is {"contentions",
** "mutex_count"}. */
typedef struct ingest_display {
  const char *sample_type;
  const char *display;
} ingest_display;

/* The type of a pprof from its sample types ("type/unit,type/unit" as
** pprof_check_types writes them), as Pyroscope names a pprof it ingests: a
** sample type "wall" makes it wall; else the first sample type (renamed by
** disp, ndisp entries, may be NULL/0) whose name contains "cpu" (cpu),
** "alloc_" or "inuse_" or is "space" or "objects" (heap), "mutex" (mutex),
** "block" (block), "goroutine" (goroutine), or is a name of the table.
** Otherwise META_OTHER, and the last sample type's name is written to
** other (NUL-terminated, cut to othermax - 1 bytes; othermax > 0). */
meta_type ingest_type_of_types(const char *types, const ingest_display *disp,
                               size_t ndisp, char *other, size_t othermax);

/* ---- labels -------------------------------------------------------------------- */

typedef struct ingest_labels ingest_labels;

/* An empty set.  NULL when out of memory.  Free with ingest_labels_free. */
ingest_labels *ingest_labels_new(void);
void ingest_labels_free(ingest_labels *l);

/* Adds the pair (key, value) as sent (raw bytes, no escapes: ',', '=' and
** '%' are taken literally; a NUL ends a key or value).  Keys that start with "__" (Pyroscope's and
** Prometheus' reserved labels: __name__, __session_id__, __delta__, ...)
** and empty keys are dropped.  Returns 0, or -1 when out of memory or past
** 64 KiB in all. */
int ingest_labels_add(ingest_labels *l, const char *key, size_t klen,
                      const char *value, size_t vlen);

/* The canonical label string (meta.h, meta_labels_from_pairs) of what was
** added, malloc'd in *out (caller frees).  Returns 0, or -1 with a reason
** in err (too long, out of memory) and *out unchanged. */
int ingest_labels_canonical(const ingest_labels *l, char **out,
                            char err[INGEST_ERRMAX]);

/* ---- Pyroscope application names ----------------------------------------------- */

/* A parsed `name` of Pyroscope's /ingest. */
typedef struct ingest_name {
  char *service;     /* malloc'd */
  meta_type type;    /* when typed (see ingest_name_parse) */
  char *type_name;   /* malloc'd: the type part as sent ("cpu"), or NULL */
  ingest_labels *labels;
} ingest_name;

/* Parses `app{k=v,k=v}` (the labels part is optional; no quoting, as in
** Pyroscope).  With typed, the last dot-separated part of app names the
** type (`my.app.cpu`: service my.app, type cpu; no dot: cpu, as Pyroscope
** does; a name of no type: META_OTHER with the label sample_type=NAME);
** without, app is the whole service and type is left META_OTHER.
** Returns 0 and fills *out (clear with ingest_name_clear), or -1 with a
** reason in err (no name, an invalid service name, a pair without '=',
** an unclosed '{', out of memory); *out is then unchanged. */
int ingest_name_parse(const char *name, int typed, ingest_name *out,
                      char err[INGEST_ERRMAX]);

/* Frees what n holds and zeroes it; accepts NULL. */
void ingest_name_clear(ingest_name *n);

/* ---- folded and lines stacks -> pprof -------------------------------------------- */

typedef struct ingest_stacks_opts {
  int lines;              /* 1: Pyroscope's "lines" (one stack per line,
                          ** value 1); 0: "folded" (`a;b;c 123`) */
  const char *type_name;  /* the type part of the name ("cpu", "wall",
                          ** "inuse_space", ...), NULL: cpu */
  const char *units;      /* Pyroscope's units; NULL: "samples" */
  long sample_rate;       /* Hz, > 0 */
  int64_t from, until;    /* unix seconds, 0 when unknown */
  size_t max_stacks;      /* 0 = no limit but the budget */
  int gzip;               /* compress the pprof (else plain protobuf) */
} ingest_stacks_opts;

/* Turns folded or lines text into a pprof (gzip or plain) in *out (malloc'd, caller
** frees) / *len: frames as functions and locations, the sample types that
** the type and units give (cpu: samples/count and cpu/nanoseconds, as Go
** writes them, with the period 1e9 / sample_rate ns; wall alike; heap,
** mutex, block and goroutine kinds as Go names them), time and duration
** from from/until.  Lines that are empty are skipped.  Fails with -1 and
** a reason in err naming the line (no value, a bad value, an empty frame,
** no stacks at all, budget or memory exhausted); *busy (may be NULL) is
** set to 1 when the memory budget had no room (the caller answers 503).
** Memory is taken from budget b (NULL: none). */
int ingest_stacks_to_pprof(const char *text, size_t len,
                           const ingest_stacks_opts *o, budget *b,
                           void **out, size_t *outlen, int *busy,
                           char err[INGEST_ERRMAX]);

/* ---- multipart/form-data ----------------------------------------------------------- */

/* 1 when the Content-Type ctype (may be NULL) is multipart/form-data. */
int ingest_multipart_is(const char *ctype);

/* Finds the form field name in the multipart body (Content-Type ctype,
** whose boundary it uses).  Returns 0 with *data / *dlen pointing into
** body, 1 when the body has no such field, -1 with a reason in err for a
** malformed body (no boundary, a part without headers or end); the OUT
** parameters are set only on 0. */
int ingest_multipart_field(const char *body, size_t len, const char *ctype,
                           const char *name, const char **data,
                           size_t *dlen, char err[INGEST_ERRMAX]);

/* ---- Connect push (push.v1.PusherService/Push) ------------------------------------- */

typedef struct ingest_push ingest_push;

/* What ingest_push_decode says of the memory budget in *busy. */
enum {
  INGEST_PUSH_BUSY = 1,    /* no room now: retry later (503) */
  INGEST_PUSH_TOOBIG = 2   /* more than the whole budget, with what the
                           ** request holds already: never (413) */
};

/* Decodes a PushRequest (json: Connect's application/json, else
** application/proto) with its memory taken from budget b (NULL: none),
** of which the caller holds held bytes already for the same request (its
** body).  Returns 0 and *out (free with ingest_push_free), or -1 with a
** reason in err (not protobuf / JSON, wrong shapes, bad base64, out of
** memory, the budget) and *busy (may be NULL) set to INGEST_PUSH_BUSY or
** INGEST_PUSH_TOOBIG when it was the budget; *out then unchanged. */
int ingest_push_decode(const void *body, size_t len, int json, budget *b,
                       size_t held, ingest_push **out, int *busy,
                       char err[INGEST_ERRMAX]);
void ingest_push_free(ingest_push *p);

/* Number of series. */
size_t ingest_push_series(const ingest_push *p);

/* The labels of series i: *names and *values (NUL-terminated strings,
** owned by p); returns their number. */
size_t ingest_push_labels(const ingest_push *p, size_t i, const char ***names,
                          const char ***values);

/* Number of raw samples of series i. */
size_t ingest_push_samples(const ingest_push *p, size_t i);

/* Sample j of series i: its bytes (a pprof, owned by p) and *len. */
const void *ingest_push_sample(const ingest_push *p, size_t i, size_t j,
                               size_t *len);

#endif /* PROFEFS_INGEST_H */
