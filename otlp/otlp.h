/*
** otlp.h — OpenTelemetry's OTLP profiles signal (v1development, as of
** opentelemetry-proto v1.11.0) read as pprof profiles, and the answers an
** OTLP/HTTP exporter expects.
**
** A request (ExportProfilesServiceRequest) holds resources, each with
** scopes, each with profiles, and one dictionary shared by all of them:
** strings, mappings, locations, functions, stacks and attributes, which
** the profiles name by index.  otlp_read resolves each profile against the
** dictionary into a self-contained pprof (only the locations,
** functions and mappings its samples reach) and hands it to a callback
** with what profefs needs to file it: service.name, the other attributes
** as text, and the sample type.
**
** Mapping of the tables (index 0 of every table is the "unset" entry, as
** the OTLP specification requires):
**   location i -> pprof location id i+1, function i -> function id i+1,
**   mapping 0 -> no mapping, mapping i > 0 -> mapping id i;
**   a stack's location_indices (leaf first) -> a sample's location ids;
**   a sample's value is the sum of its values, or the number of its
**   timestamps when it has none (each timestamp is one event);
**   a sample's attributes -> pprof labels (integers as numeric labels with
**   their unit, other scalars as strings, arrays and maps dropped);
**   time_unix_nano, duration_nano, period_type and period as in pprof.
**
** Every pprof handed over is valid by construction: pprof_check_types
** takes it, and finds the time_nanos and the types reported with it (the
** unit tests and the fuzz target check this of everything they convert),
** so that a store may file it without decoding it again.
**
** Memory: the decoded request is held in chunks taken from the budget
** given and never more than max_mem bytes, so a request that would expand
** past it fails with OTLP_ETOOBIG before it is held; one profile at a time
** is converted, in at most max_mem bytes more.
**
** Errors: functions return an otlp_rc and, where they take err, write a
** one-line reason for a user there (err may be NULL).
*/
#ifndef PROFEFS_OTLP_H
#define PROFEFS_OTLP_H

#include <stddef.h>
#include <stdint.h>

#include "budget.h"

#define OTLP_ERRMAX 256

typedef enum otlp_rc {
  OTLP_OK = 0,
  OTLP_EDECODE,  /* not an ExportProfilesServiceRequest in protobuf */
  OTLP_ETOOBIG,  /* decoding would take more than max_mem */
  OTLP_EBUSY,    /* the memory budget had no room: retry later */
  OTLP_ENOMEM
} otlp_rc;

/* One attribute as text: keys and values valid during the callback only. */
typedef struct otlp_attr {
  const char *key;
  const char *value;
} otlp_attr;

/* One converted profile, valid during the callback only. */
typedef struct otlp_profile {
  const char *service;     /* the resource's service.name; NULL if none */
  const otlp_attr *attrs;  /* the resource's other scalar attributes, then */
  size_t nattrs;           /* the profile's own (in the order sent) */
  const char *sample_type; /* e.g. "samples", "cpu", "alloc_space"; "" unset */
  const char *sample_unit;
  const char *period_type; /* e.g. "cpu"; "" unset */
  int64_t time_nanos;
  const void *pprof;       /* the profile as pprof (plain protobuf: stored
                           ** so; gzip cost the door more CPU than the
                           ** bytes it saved) */
  size_t len;
  const char *types;       /* its sample types as pprof_check_types writes
                           ** them (the store need not decode it again) */
} otlp_profile;

/* Called for each profile that converts: returns 0 when it was taken, or
** non-zero with a reason in err when it was refused (counted as rejected). */
typedef int (*otlp_each)(const otlp_profile *p, void *arg,
                         char err[OTLP_ERRMAX]);

typedef struct otlp_result {
  size_t profiles;              /* profiles in the request */
  size_t rejected;              /* of them: failed to convert or refused */
  char first_error[OTLP_ERRMAX]; /* the reason of the first rejection */
} otlp_result;

/* Decodes the request in buf (plain protobuf; inflate a gzip body first)
** and calls each(p, arg) for every profile of it, in order.  A profile that
** does not convert (an index outside its table, a sample without values or
** timestamps, more values than timestamps, no samples) is rejected with its
** reason and the others go on; that is not an error of the call.  Fails
** only for a request that does not decode (OTLP_EDECODE), one over max_mem
** (OTLP_ETOOBIG), a budget without room (OTLP_EBUSY) or out of memory;
** *res is filled in either case (zeroes when nothing was read). */
otlp_rc otlp_read(const void *buf, size_t len, size_t max_mem, budget *b,
                  otlp_each each, void *arg, otlp_result *res,
                  char err[OTLP_ERRMAX]);

/* An ExportProfilesServiceResponse: partial_success with rejected and
** message when rejected > 0, else empty.  *out is malloc'd (caller frees);
** -1 when out of memory (OUT parameters unchanged). */
int otlp_response(int64_t rejected, const char *message, void **out,
                  size_t *len);

/* A google.rpc.Status {code, message}, the body of OTLP/HTTP errors.
** *out is malloc'd (caller frees); -1 when out of memory. */
int otlp_status(int32_t code, const char *message, void **out, size_t *len);

#endif /* PROFEFS_OTLP_H */
