/*
** test_s3key.c — unit tests of the S3 backend's parts that need no server:
** profefe's key layout (keys a real profefe wrote parse; our keys round-trip),
** the deterministic digest (same profile, same key; any field changed, a
** different one; time-ordered), the start-after floor of a second, and the
** ListObjectsV2 / error XML readers.  Requests are covered by
** tests/integration/s3_nodes.sh against a real radosgw.
*/
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "s3_int.h"
#include "check.h"

static void test_profefe_keys(void) {
  store_meta m = {0};
  /* written by a real profefe over a real bucket */
  CHECK(store_s3_key_parse("P0.sbs/1/dc30ctr8di19hau9oijg,i=0", &m) == 0);
  CHECK_STR(m.service, "sbs");
  CHECK(m.type == META_CPU);
  CHECK_STR(m.labels, "i=0");
  CHECK_STR(m.id, "dc30ctr8di19hau9oijg");
  CHECK_STR(store_meta_id(&m), "P0.sbs/1/dc30ctr8di19hau9oijg,i=0");
  CHECK(m.created_at == meta_id_time("dc30ctr8di19hau9oijg"));
  CHECK(m.created_at > 1790000000 && m.created_at < 1800000000);
  store_meta_clear(&m);

  CHECK(store_s3_key_parse("P0.s3get/1/dc30d2r8di1a62kurskg,zone=z1", &m) == 0);
  CHECK_STR(m.service, "s3get");
  CHECK_STR(m.labels, "zone=z1");
  store_meta_clear(&m);

  /* every type number, and no labels */
  const int nums[] = {1, 2, 3, 4, 5, 6, 127, 128, 7};
  for (int t = 0; t < META_NTYPES; t++) {
    char k[64];
    CHECK(store_s3_type_num((meta_type)t) == nums[t]);
    snprintf(k, sizeof k, "P0.svc/%d/dc30ctr8di19hau9oijg", nums[t]);
    CHECK(store_s3_key_parse(k, &m) == 0 && m.type == (meta_type)t);
    CHECK_STR(m.labels, "");
    store_meta_clear(&m);
  }

  /* not profile keys: OUT untouched */
  const char *bad[] = {
    "P0.svc/1/short", "P0.svc/9/dc30ctr8di19hau9oijg", "P1.svc/1/dc30ctr8di19hau9oijg",
    "P0./1/dc30ctr8di19hau9oijg", "P0.svc/1/dc30ctr8di19hau9oijgX", "P0.svc/1/DC30CTR8DI19HAU9OIJG",
    "P0.svc/1/dc30ctr8di19hau9oijg,novalue", "P0.svc/1/dc30ctr8di19hau9oijg,a=b/c",
    "P0.svc", "profefs/rollups/x", "",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    m.size = 42;
    CHECK(store_s3_key_parse(bad[i], &m) != 0);
    CHECK(m.size == 42 && m.key == NULL);
  }
}

static void test_round_trip(void) {
  char d[META_ID_LEN + 1], *k;
  store_meta m = {0};
  const char *labels = "host=h%2C1,zone=z1"; /* canonical: ',' escaped */
  store_s3_digest(1795556966, "web", META_HEAP, "zone=z1", "abc", 3, d);
  k = store_s3_key("web", META_HEAP, d, "zone=z1");
  CHECK(k != NULL && strncmp(k, "P0.web/2/", 9) == 0);
  CHECK(strcmp(k + 9 + META_ID_LEN, ",zone=z1") == 0);
  CHECK(store_s3_key_parse(k, &m) == 0);
  CHECK_STR(m.id, d);
  CHECK(m.created_at == 1795556966);
  CHECK_STR(m.labels, "zone=z1");
  store_meta_clear(&m);
  free(k);
  /* raw in the key, as profefe writes labels: not escaped */
  k = store_s3_key("web", META_CPU, d, "a=x%20y");
  CHECK_STR(k + 9 + META_ID_LEN, ",a=x y");
  free(k);
  k = store_s3_key("web", META_CPU, d, "");
  CHECK(k != NULL && strlen(k) == 9 + META_ID_LEN);
  free(k);
  (void)labels;
  k = store_s3_key_dir("a b", META_OTHER);
  CHECK_STR(k, "P0.a b/127/");
  free(k);
}

static void test_digest(void) {
  char a[META_ID_LEN + 1], b[META_ID_LEN + 1], f[META_ID_LEN + 1];
  CHECK(store_s3_digest(1795556966, "web", META_CPU, "k=v", "bytes", 5, a) == 0);
  /* SHA-256, as Python's hashlib computes it: the time's 4 bytes, then the
  ** first 8 of sha256(b"web\0" + bytes([0]) + b"k=v\0" + the time's 8
  ** bytes big-endian + b"bytes"), in xid's base32hex */
  CHECK_STR(a, "dc30cpguq755l8al44m0");
  store_s3_digest(1795556966, "web", META_CPU, "k=v", "bytes", 5, b);
  CHECK_STR(a, b); /* same profile, same key: idempotent ingest */
  CHECK(meta_id_valid(a) && meta_id_time(a) == 1795556966);
  store_s3_digest(1795556966, "web", META_CPU, "k=v", "bytez", 5, b);
  CHECK(strcmp(a, b) != 0);
  store_s3_digest(1795556966, "web2", META_CPU, "k=v", "bytes", 5, b);
  CHECK(strcmp(a, b) != 0);
  store_s3_digest(1795556966, "web", META_HEAP, "k=v", "bytes", 5, b);
  CHECK(strcmp(a, b) != 0);
  store_s3_digest(1795556966, "web", META_CPU, "k=w", "bytes", 5, b);
  CHECK(strcmp(a, b) != 0);
  store_s3_digest(1795556967, "web", META_CPU, "k=v", "bytes", 5, b);
  CHECK(strcmp(a, b) < 0); /* time-ordered */
  /* the floor of a second sorts before every digest of it and after every
  ** digest of the second before */
  store_s3_digest_floor(1795556966, f);
  CHECK(meta_id_time(f) == 1795556966);
  f[META_ID_LEN - 1] = '\0';
  CHECK(strcmp(f, a) < 0);
  store_s3_digest(1795556965, "web", META_CPU, "k=v", "bytes", 5, b);
  CHECK(strcmp(b, f) < 0);
}

static void test_xml(void) {
  const char *page =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>profiles</Name><Prefix>P0.</Prefix><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated>"
    "<Contents><Key>P0.a/1/x,k=a&amp;b</Key><Size>5192</Size><Owner><ID>o</ID></Owner></Contents>"
    "<Contents><Key>P0.b/2/y</Key><Size>7</Size></Contents>"
    "<CommonPrefixes><Prefix>P0.c/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>";
  s3_list l = {0};
  char code[32], msg[64];
  CHECK(store_s3_xml_list(page, strlen(page), &l) == 0);
  CHECK(l.nkeys == 2 && l.nprefixes == 1 && l.truncated);
  if (l.nkeys == 2) {
    CHECK_STR(l.keys[0], "P0.a/1/x,k=a&b");
    CHECK(l.sizes[0] == 5192 && l.sizes[1] == 7);
  }
  if (l.nprefixes == 1) CHECK_STR(l.prefixes[0], "P0.c/");
  CHECK_STR(l.next_token, "tok+/=");
  store_s3_list_clear(&l);
  CHECK(store_s3_xml_list("<ListBucketResult><Contents>", 28, &l) != 0);
  store_s3_list_clear(&l);
  /* an entry's Size and LastModified are its own: none is carried over
  ** from a Contents before it, with a key or without */
  {
    const char *gaps =
      "<ListBucketResult><Contents><Size>9</Size>"
      "<LastModified>2026-12-06T10:00:00.000Z</LastModified></Contents>"
      "<Contents><Key>a</Key></Contents>"
      "<Contents><Key>b</Key><Size>3</Size>"
      "<LastModified>2026-12-06T10:00:00.000Z</LastModified></Contents>"
      "<Contents><Key>c</Key></Contents></ListBucketResult>";
    CHECK(store_s3_xml_list(gaps, strlen(gaps), &l) == 0);
    CHECK(l.nkeys == 3);
    if (l.nkeys == 3) {
      CHECK(l.sizes[0] == -1 && l.mtimes[0] == -1);
      CHECK(l.sizes[1] == 3 && l.mtimes[1] == 1796551200);
      CHECK(l.sizes[2] == -1 && l.mtimes[2] == -1);
    }
    store_s3_list_clear(&l);
  }

  /* radosgw 16 with encoding-type=url, as it answered: keys and prefixes
  ** percent-encoded (a prefix keeps its '/'), the token raw, a control
  ** character in it as a character reference XML 1.0 forbids */
  const char *enc =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<EncodingType>url</EncodingType><Name>profiles</Name><Prefix>t1/</Prefix><MaxKeys>1</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>t1%2FP0.roll%2F1%2Faaaaaaaaaaaaaaaaaaaa%2Cl%3Da%01b</Key><Size>2</Size></Contents>"
    "<Contents><Key>t1%2Fa%2Bb%20c%C3%A9+d</Key><Size>3</Size></Contents>"
    "<Contents><Key>t1%2Fnul%00</Key><Size>4</Size></Contents>"
    "<CommonPrefixes><Prefix>t2/P0.a%25b%2Bc%20d%01/</Prefix></CommonPrefixes>"
    "<NextContinuationToken>t1/P0.roll/1/aaaaaaaaaaaaaaaaaaaa,l=a&#x01;b&#1;&#xFFFF;</NextContinuationToken>"
    "<KeyCount>1</KeyCount><StartAfter>t1/P0&#x1f;</StartAfter></ListBucketResult>";
  CHECK(store_s3_xml_list(enc, strlen(enc), &l) == 0);
  CHECK(l.nkeys == 2 && l.nprefixes == 1 && l.truncated); /* %00: dropped */
  if (l.nkeys == 2) {
    CHECK_STR(l.keys[0], "t1/P0.roll/1/aaaaaaaaaaaaaaaaaaaa,l=a\x01" "b");
    CHECK_STR(l.keys[1], "t1/a+b c\xc3\xa9 d");
    CHECK(l.sizes[0] == 2 && l.sizes[1] == 3);
  }
  if (l.nprefixes == 1) CHECK_STR(l.prefixes[0], "t2/P0.a%b+c d\x01/");
  CHECK_STR(l.next_token, "t1/P0.roll/1/aaaaaaaaaaaaaaaaaaaa,l=a\x01" "b\x01\xef\xbf\xbd");
  store_s3_list_clear(&l);

  const char *e = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>"
                  "<Message>no</Message><RequestId>r</RequestId></Error>";
  store_s3_xml_error(e, strlen(e), code, sizeof code, msg, sizeof msg);
  CHECK_STR(code, "SignatureDoesNotMatch");
  CHECK_STR(msg, "no");
  store_s3_xml_error("not xml", 7, code, sizeof code, msg, sizeof msg);
  CHECK_STR(code, "");
}

static void test_encoding(void) {
  s3_buf b = {0};
  CHECK(store_s3_buf_enc(&b, "P0.a b/1/x,k=v~_-.", 1) == 0);
  CHECK_STR(b.p, "P0.a%20b/1/x%2Ck%3Dv~_-.");
  b.len = 0;
  CHECK(store_s3_buf_enc(&b, "a/b+\xc3\xa9", 0) == 0);
  CHECK_STR(b.p, "a%2Fb%2B%C3%A9");
  free(b.p);
}

int main(void) {
  test_profefe_keys();
  test_round_trip();
  test_digest();
  test_xml();
  test_encoding();
  return check_done("test_s3key");
}
