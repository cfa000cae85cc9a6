/*
** listen.c — the listening socket of the server: parses "HOST:PORT",
** "[V6]:PORT" or ":PORT", binds and listens.  Binding here rather than in
** libmicrohttpd gives the caller errno-precise reasons ("Address already in
** use") and the port actually bound when PORT is 0.
*/
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

void httpd_seterr(char *err, const char *fmt, ...)
{
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(err, HTTPD_ERRMAX, fmt, ap);
  va_end(ap);
}

/* Parses "HOST:PORT", "[V6]:PORT" or ":PORT" (all IPv4 interfaces) into sa.
** HOST may be a name (the first address it resolves to is used). */
static int parse_addr(const char *addr, struct sockaddr_storage *sa,
                      socklen_t *salen, char *err)
{
  char host[256], *end;
  const char *colon, *h0, *h1;
  struct addrinfo hints, *res = NULL;
  unsigned long port;
  int gai;

  colon = strrchr(addr, ':');
  if (colon == NULL || colon[1] == '\0')
    goto bad;
  errno = 0;
  port = strtoul(colon + 1, &end, 10);
  if (!isdigit((unsigned char)colon[1]) || errno || *end != '\0' ||
      port > 65535)
    goto bad;
  h0 = addr;
  h1 = colon;
  if (*h0 == '[') { /* [::1]:port */
    if (h1 == h0 || h1[-1] != ']')
      goto bad;
    h0++;
    h1--;
  }
  if ((size_t)(h1 - h0) >= sizeof host)
    goto bad;
  memcpy(host, h0, (size_t)(h1 - h0));
  host[h1 - h0] = '\0';
  if (strchr(host, '[') || strchr(host, ']') ||
      (strchr(host, ':') && *addr != '['))
    goto bad;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  gai = getaddrinfo(host[0] ? host : "0.0.0.0", colon + 1, &hints, &res);
  if (gai != 0) {
    httpd_seterr(err, "bad address \"%s\": %s", addr,
             gai_strerror(gai));
    return -1;
  }
  memcpy(sa, res->ai_addr, res->ai_addrlen);
  *salen = res->ai_addrlen;
  freeaddrinfo(res);
  return 0;
bad:
  httpd_seterr(err, "bad address \"%s\" (want HOST:PORT)", addr);
  return -1;
}

/* A listening TCP socket on sa (SO_REUSEADDR; IPv6 sockets are v6 only).
** Returns the socket, or -1 with a reason in err. */
static int listen_on(const struct sockaddr_storage *sa, socklen_t salen,
                     const char *addr, char *err)
{
  int fd, one = 1;

  fd = socket(sa->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    goto fail;
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (sa->ss_family == AF_INET6 &&
       setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one) != 0) ||
      bind(fd, (const struct sockaddr *)sa, salen) != 0 ||
      listen(fd, SOMAXCONN) != 0)
    goto fail;
  return fd;
fail:
  httpd_seterr(err, "cannot listen on %s: %s", addr, strerror(errno));
  if (fd >= 0)
    close(fd);
  return -1;
}

unsigned httpd_bound_port(int fd)
{
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;

  if (getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
    return 0;
  if (sa.ss_family == AF_INET6)
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
  return ntohs(((struct sockaddr_in *)&sa)->sin_port);
}

int httpd_listen(const char *addr, int *fd_out, unsigned *port_out,
                 char err[HTTPD_ERRMAX])
{
  struct sockaddr_storage sa;
  socklen_t salen = 0;
  int fd;

  if (parse_addr(addr, &sa, &salen, err) != 0 ||
      (fd = listen_on(&sa, salen, addr, err)) < 0)
    return -1;
  *fd_out = fd;
  *port_out = httpd_bound_port(fd);
  return 0;
}
